/* SP 800-90B §5.1 permutation testing: the whole run of shuffles in C.
 * See iid.h for the contract.  Workers claim shuffle indices in order,
 * compute the statistics still undecided, and park the results in a ring;
 * whoever finishes the next index in line counts every result whose turn
 * has come, so the counts are those of a single thread counting shuffles
 * 0, 1, 2, ... in order.  LIBRARIES: bz2 pthread */
#include "iid.h"

#include <bzlib.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RING 64 /* results waiting to be counted; a worker further ahead waits */

struct iid_run {
    pthread_mutex_t lock;
    pthread_cond_t moved; /* `committed` advanced or the run finished */
    uint8_t *raw;
    size_t n;
    iid_params params;
    double original[IID_N_STATISTICS];
    uint64_t permutations;
    uint64_t seed;
    int stop_on_failure;
    int bzip2_level;
    int work_factor;
    int64_t rank_limit;
    int64_t counts[IID_N_STATISTICS][3];
    int8_t decided[IID_N_STATISTICS]; /* -1 undecided, 0 failed, 1 passed */
    uint64_t next;                    /* next shuffle index to hand out */
    uint64_t committed;               /* shuffles counted */
    int finished;
    int error;
    double pending[RING][IID_N_STATISTICS];
    uint8_t ready[RING];
};

long long iid_compressed_length(const uint8_t *raw, size_t n, int level, int work_factor,
                                char *text, char *dest, size_t dest_capacity) {
    char *own_text = NULL, *own_dest = NULL;
    long long result = -1;
    if (text == NULL) {
        text = own_text = malloc(4 * n + 1);
    }
    if (dest == NULL) {
        dest_capacity = 4 * n + (4 * n) / 100 + 601;
        dest = own_dest = malloc(dest_capacity);
    }
    if (text != NULL && dest != NULL) {
        size_t length = iid_decimal_text(raw, n, text);
        unsigned int out_len = (unsigned int)dest_capacity;
        int rc = BZ2_bzBuffToBuffCompress(dest, &out_len, text, (unsigned int)length, level, 0,
                                          work_factor);
        if (rc == BZ_OK) {
            result = (long long)out_len;
        }
    }
    free(own_text);
    free(own_dest);
    return result;
}

iid_run *iid_run_new(const uint8_t *raw, size_t n, const iid_params *params,
                     const double *original, uint64_t permutations, uint64_t seed,
                     int stop_on_failure, int bzip2_level, int work_factor, int rank_limit) {
    if (n < 2) {
        return NULL;
    }
    iid_run *run = calloc(1, sizeof *run);
    if (run == NULL) {
        return NULL;
    }
    run->raw = malloc(n);
    if (run->raw == NULL) {
        free(run);
        return NULL;
    }
    memcpy(run->raw, raw, n);
    run->n = n;
    run->params = *params;
    memcpy(run->original, original, sizeof run->original);
    run->permutations = permutations;
    run->seed = seed;
    run->stop_on_failure = stop_on_failure;
    run->bzip2_level = bzip2_level;
    run->work_factor = work_factor;
    run->rank_limit = rank_limit;
    for (int i = 0; i < IID_N_STATISTICS; i++) {
        run->decided[i] = -1;
    }
    pthread_mutex_init(&run->lock, NULL);
    pthread_cond_init(&run->moved, NULL);
    return run;
}

void iid_run_free(iid_run *run) {
    if (run == NULL) {
        return;
    }
    pthread_mutex_destroy(&run->lock);
    pthread_cond_destroy(&run->moved);
    free(run->raw);
    free(run);
}

/* Count every parked result whose turn has come; called with the lock held. */
static void commit(iid_run *run) {
    while (!run->finished && run->ready[run->committed % RING]) {
        size_t slot = run->committed % RING;
        const double *result = run->pending[slot];
        run->ready[slot] = 0;
        run->committed++;
        int64_t remaining = (int64_t)(run->permutations - run->committed);
        int settled = 1, failed = 0;
        for (int i = 0; i < IID_N_STATISTICS; i++) {
            if (run->decided[i] < 0) {
                double value = result[i];
                double original = run->original[i];
                int column = value > original ? 0 : value == original ? 1 : 2;
                int64_t *c = run->counts[i];
                c[column]++;
                if (c[0] + c[1] > run->rank_limit && c[1] + c[2] > run->rank_limit) {
                    run->decided[i] = 1;
                } else if (c[0] + c[1] + remaining <= run->rank_limit ||
                           c[1] + c[2] + remaining <= run->rank_limit) {
                    run->decided[i] = 0;
                }
            }
            settled &= run->decided[i] >= 0;
            failed |= run->decided[i] == 0;
        }
        if (settled || (run->stop_on_failure && failed) || run->committed >= run->permutations) {
            run->finished = 1;
        }
    }
    pthread_cond_broadcast(&run->moved);
}

int iid_run_work(iid_run *run) {
    size_t n = run->n;
    size_t dest_capacity = 4 * n + (4 * n) / 100 + 601;
    uint8_t *shuffled = malloc(n);
    char *text = NULL, *dest = NULL;
    uint8_t active[IID_N_STATISTICS];
    double out[IID_N_STATISTICS];
    int status = 0;
    if (shuffled == NULL) {
        status = -1;
    }
    pthread_mutex_lock(&run->lock);
    while (status == 0) {
        while (!run->finished && run->next < run->permutations &&
               run->next >= run->committed + RING) {
            pthread_cond_wait(&run->moved, &run->lock);
        }
        if (run->finished || run->next >= run->permutations) {
            break;
        }
        uint64_t index = run->next++;
        for (int i = 0; i < IID_N_STATISTICS; i++) {
            active[i] = run->decided[i] < 0;
            out[i] = NAN;
        }
        pthread_mutex_unlock(&run->lock);

        iid_shuffle_copy(run->raw, shuffled, n, run->seed, index);
        if (iid_statistics(shuffled, n, &run->params, active, out) != 0) {
            status = -1;
        } else if (active[IID_COMPRESSION]) {
            if (text == NULL) {
                text = malloc(4 * n + 1);
                dest = malloc(dest_capacity);
            }
            long long length = text != NULL && dest != NULL
                                   ? iid_compressed_length(shuffled, n, run->bzip2_level,
                                                           run->work_factor, text, dest,
                                                           dest_capacity)
                                   : -1;
            if (length < 0) {
                status = -1;
            }
            out[IID_COMPRESSION] = (double)length;
        }

        pthread_mutex_lock(&run->lock);
        if (status == 0) {
            size_t slot = index % RING;
            memcpy(run->pending[slot], out, sizeof out);
            run->ready[slot] = 1;
            commit(run);
        }
    }
    if (status != 0) {
        run->error = 1;
        run->finished = 1;
        pthread_cond_broadcast(&run->moved);
    }
    pthread_mutex_unlock(&run->lock);
    free(shuffled);
    free(text);
    free(dest);
    return status;
}

void iid_run_stop(iid_run *run) {
    pthread_mutex_lock(&run->lock);
    run->finished = 1;
    pthread_cond_broadcast(&run->moved);
    pthread_mutex_unlock(&run->lock);
}

uint64_t iid_run_committed(iid_run *run) {
    pthread_mutex_lock(&run->lock);
    uint64_t committed = run->committed;
    pthread_mutex_unlock(&run->lock);
    return committed;
}

void iid_run_result(iid_run *run, int64_t *counts, int8_t *decided, uint64_t *committed) {
    pthread_mutex_lock(&run->lock);
    memcpy(counts, run->counts, sizeof run->counts);
    memcpy(decided, run->decided, sizeof run->decided);
    *committed = run->committed;
    pthread_mutex_unlock(&run->lock);
}
