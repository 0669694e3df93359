/* SP 800-90B §5.1 permutation testing: the whole run of shuffles in C.
 * See iid.h for the contract.  Workers claim shuffle indices in order,
 * compute the statistics still undecided, and park the results in a ring;
 * whoever finishes the next index in line counts every result whose turn
 * has come, so the counts are those of a single thread counting shuffles
 * 0, 1, 2, ... in order.
 *
 * The compression statistic was nearly all of the time with libbz2; its
 * length is now worked out without compressing (bzlen.c), a block at a
 * time, so a compression whose result can no longer count (the statistic
 * was decided by an earlier shuffle, or the run ended) is abandoned between
 * blocks, and each worker keeps its working memory from one compression to
 * the next.  LIBRARIES: pthread */
#include "iid.h"

#include "bzlen.h"

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
    int original_pending; /* 1: the original's compression is still to be made, 2: being made */
    uint64_t permutations;
    uint64_t seed;
    int stop_on_failure;
    int bzip2_level;
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

/* Should this compression be abandoned?  (Read without the lock: the flags
 * only ever move one way, and are written with atomic stores.) */
static int no_longer_needed(iid_run *run, int needed_for_result) {
    if (run == NULL) {
        return 0;
    }
    if (__atomic_load_n(&run->finished, __ATOMIC_ACQUIRE)) {
        return 1;
    }
    return !needed_for_result &&
           __atomic_load_n(&run->decided[IID_COMPRESSION], __ATOMIC_ACQUIRE) >= 0;
}

/* bzlen's question between blocks: is the compression being made for
 * this run still wanted? */
typedef struct {
    iid_run *run;
    int needed_for_result;
} wanted;

static int unwanted(void *arg) {
    const wanted *w = arg;
    return no_longer_needed(w->run, w->needed_for_result);
}

/* ------------------------------------------------------------------ */
/* The run.                                                            */
/* ------------------------------------------------------------------ */

iid_run *iid_run_new(const uint8_t *raw, size_t n, const iid_params *params,
                     const double *original, uint64_t permutations, uint64_t seed,
                     int stop_on_failure, int bzip2_level, int rank_limit) {
    if (n < 2 || bzip2_level < 1 || bzip2_level > 9) {
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
    run->original_pending = isnan(original[IID_COMPRESSION]) ? 1 : 0;
    run->permutations = permutations;
    run->seed = seed;
    run->stop_on_failure = stop_on_failure;
    run->bzip2_level = bzip2_level;
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

static void finish(iid_run *run) {
    __atomic_store_n(&run->finished, 1, __ATOMIC_RELEASE);
}

/* Count every parked result whose turn has come; called with the lock held.
 * Nothing is counted before the original's compression statistic is known. */
static void commit(iid_run *run) {
    while (!run->finished && !run->original_pending && run->ready[run->committed % RING]) {
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
                    __atomic_store_n(&run->decided[i], 1, __ATOMIC_RELEASE);
                } else if (c[0] + c[1] + remaining <= run->rank_limit ||
                           c[1] + c[2] + remaining <= run->rank_limit) {
                    __atomic_store_n(&run->decided[i], 0, __ATOMIC_RELEASE);
                }
            }
            settled &= run->decided[i] >= 0;
            failed |= run->decided[i] == 0;
        }
        if (settled || (run->stop_on_failure && failed) || run->committed >= run->permutations) {
            finish(run);
        }
    }
    pthread_cond_broadcast(&run->moved);
}

int iid_run_work(iid_run *run) {
    size_t n = run->n;
    uint8_t *shuffled = malloc(n);
    uint8_t *scratch = malloc(2 * ((n + 7) / 8));
    bzlen *compressor = bzlen_new();
    uint8_t active[IID_N_STATISTICS];
    double out[IID_N_STATISTICS];
    int status = 0;
    if (shuffled == NULL || scratch == NULL || compressor == NULL) {
        status = -1;
    }
    pthread_mutex_lock(&run->lock);
    while (status == 0) {
        if (run->original_pending == 1 && !run->finished) {
            /* The original's own compression statistic, made by the first
             * worker while the others shuffle; counting waits for it. */
            run->original_pending = 2;
            pthread_mutex_unlock(&run->lock);
            wanted w = {run, 1};
            long long length = bzlen_samples(compressor, run->raw, n, run->bzip2_level, unwanted, &w);
            pthread_mutex_lock(&run->lock);
            if (length == BZLEN_STOPPED) {
                break;
            }
            if (length < 0) {
                status = -1;
                break;
            }
            run->original[IID_COMPRESSION] = (double)length;
            run->original_pending = 0;
            commit(run);
            continue;
        }
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
        if (iid_statistics_into(shuffled, n, &run->params, active, out, scratch) != 0) {
            status = -1;
        } else if (active[IID_COMPRESSION]) {
            wanted w = {run, 0};
            long long length = bzlen_samples(compressor, shuffled, n, run->bzip2_level, unwanted, &w);
            if (length == BZLEN_STOPPED) {
                out[IID_COMPRESSION] = NAN; /* decided already: the value is never counted */
            } else if (length < 0) {
                status = -1;
            } else {
                out[IID_COMPRESSION] = (double)length;
            }
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
        finish(run);
        pthread_cond_broadcast(&run->moved);
    }
    pthread_mutex_unlock(&run->lock);
    free(shuffled);
    free(scratch);
    bzlen_free(compressor);
    return status;
}

void iid_run_stop(iid_run *run) {
    pthread_mutex_lock(&run->lock);
    finish(run);
    pthread_cond_broadcast(&run->moved);
    pthread_mutex_unlock(&run->lock);
}

uint64_t iid_run_committed(iid_run *run) {
    pthread_mutex_lock(&run->lock);
    uint64_t committed = run->committed;
    pthread_mutex_unlock(&run->lock);
    return committed;
}

void iid_run_result(iid_run *run, int64_t *counts, int8_t *decided, uint64_t *committed,
                    double *original) {
    pthread_mutex_lock(&run->lock);
    memcpy(counts, run->counts, sizeof run->counts);
    memcpy(decided, run->decided, sizeof run->decided);
    memcpy(original, run->original, sizeof run->original);
    *committed = run->committed;
    pthread_mutex_unlock(&run->lock);
}
