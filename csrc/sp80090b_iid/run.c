/* SP 800-90B §5.1 permutation testing: the whole run of shuffles in C.
 * See iid.h for the contract.  Workers claim shuffle indices in order,
 * compute the statistics still undecided, and park the results in a ring;
 * whoever finishes the next index in line counts every result whose turn
 * has come, so the counts are those of a single thread counting shuffles
 * 0, 1, 2, ... in order.
 *
 * The compression statistic is nearly all of the time.  It is computed with
 * bzip2's streaming interface, the decimal text made a chunk at a time, so
 * a compression whose result can no longer count (the statistic was decided
 * by an earlier shuffle, or the run ended) is abandoned between chunks, and
 * bzip2's working memory is recycled from one compression to the next
 * instead of being allocated and faulted in again.  LIBRARIES: bz2 pthread */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include "iid.h"

#include <bzlib.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING 64 /* results waiting to be counted; a worker further ahead waits */
#define TEXT_CHUNK (256 * 1024) /* decimal text made and fed to bzip2 at a time */
#define DEFAULT_WORK_FACTOR 30  /* bzip2's own default */
#define CANCELLED (-2)

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
    int work_factor;      /* fixed, or IID_CALIBRATE */
    uint64_t compressions; /* shuffle compressions started (calibration numbers them) */
    double calibration[2]; /* CPU seconds of the first two: work factor 30, then 1 (-1: unknown) */
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

/* ------------------------------------------------------------------ */
/* bzip2 with recycled memory, fed a chunk of text at a time.          */
/* ------------------------------------------------------------------ */

#define ARENA_SLOTS 6

/* bzip2 allocates the same four blocks for every compression at one level;
 * keeping them between compressions saves the allocation and, above all,
 * faulting several megabytes of fresh pages in every time. */
typedef struct {
    void *block[ARENA_SLOTS];
    size_t size[ARENA_SLOTS];
    uint8_t used[ARENA_SLOTS];
} bz_arena;

static void *arena_alloc(void *opaque, int items, int size) {
    bz_arena *arena = opaque;
    size_t want = (size_t)items * (size_t)size;
    for (int i = 0; i < ARENA_SLOTS; i++) {
        if (!arena->used[i] && arena->block[i] != NULL && arena->size[i] == want) {
            arena->used[i] = 1;
            return arena->block[i];
        }
    }
    for (int i = 0; i < ARENA_SLOTS; i++) {
        if (!arena->used[i]) {
            void *block = malloc(want);
            if (block == NULL) {
                return NULL;
            }
            free(arena->block[i]);
            arena->block[i] = block;
            arena->size[i] = want;
            arena->used[i] = 1;
            return block;
        }
    }
    return malloc(want);
}

static void arena_free(void *opaque, void *block) {
    bz_arena *arena = opaque;
    for (int i = 0; i < ARENA_SLOTS; i++) {
        if (arena->block[i] == block) {
            arena->used[i] = 0;
            return;
        }
    }
    free(block);
}

static void arena_release(bz_arena *arena) {
    for (int i = 0; i < ARENA_SLOTS; i++) {
        free(arena->block[i]);
        arena->block[i] = NULL;
    }
}

/* Decimal text of raw[*next..n) into chunk (at most `capacity` bytes), each
 * value followed by a space except the very last; advances *next. */
static size_t text_chunk(const uint8_t *raw, size_t n, size_t *next, char *chunk, size_t capacity) {
    char *p = chunk;
    size_t i = *next;
    while (i < n && (size_t)(p - chunk) + 4 <= capacity) {
        unsigned v = raw[i];
        if (v >= 100) {
            *p++ = (char)('0' + v / 100);
            *p++ = (char)('0' + (v / 10) % 10);
            *p++ = (char)('0' + v % 10);
        } else if (v >= 10) {
            *p++ = (char)('0' + v / 10);
            *p++ = (char)('0' + v % 10);
        } else {
            *p++ = (char)('0' + v);
        }
        i++;
        if (i < n) {
            *p++ = ' ';
        }
    }
    *next = i;
    return (size_t)(p - chunk);
}

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

/* The bzip2-compressed length of the decimal text of raw[0..n); -1 when
 * memory or bzip2 fails, CANCELLED when `run` says the result is no longer
 * needed.  The output is counted and thrown away. */
static long long stream_length(const uint8_t *raw, size_t n, int level, int work_factor,
                               bz_arena *arena, char *chunk, iid_run *run, int needed_for_result) {
    bz_stream strm;
    char sink[16384];
    memset(&strm, 0, sizeof strm);
    strm.bzalloc = arena_alloc;
    strm.bzfree = arena_free;
    strm.opaque = arena;
    if (BZ2_bzCompressInit(&strm, level, 0, work_factor) != BZ_OK) {
        return -1;
    }
    long long result = -1;
    size_t next = 0;
    for (;;) {
        size_t length = text_chunk(raw, n, &next, chunk, TEXT_CHUNK);
        int action = next < n ? BZ_RUN : BZ_FINISH;
        strm.next_in = chunk;
        strm.avail_in = (unsigned int)length;
        for (;;) {
            strm.next_out = sink;
            strm.avail_out = sizeof sink;
            int rc = BZ2_bzCompress(&strm, action);
            if (action == BZ_RUN) {
                if (rc != BZ_RUN_OK) {
                    goto done;
                }
                if (strm.avail_in == 0) {
                    break;
                }
            } else if (rc == BZ_STREAM_END) {
                result = ((long long)strm.total_out_hi32 << 32) | (long long)strm.total_out_lo32;
                goto done;
            } else if (rc != BZ_FINISH_OK) {
                goto done;
            }
        }
        if (no_longer_needed(run, needed_for_result)) {
            result = CANCELLED;
            goto done;
        }
    }
done:
    BZ2_bzCompressEnd(&strm);
    return result;
}

long long iid_compressed_length(const uint8_t *raw, size_t n, int level, int work_factor) {
    bz_arena arena;
    memset(&arena, 0, sizeof arena);
    char *chunk = malloc(TEXT_CHUNK);
    long long result = -1;
    if (chunk != NULL) {
        result = stream_length(raw, n, level, work_factor, &arena, chunk, NULL, 1);
    }
    free(chunk);
    arena_release(&arena);
    return result;
}

static double thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* The run.                                                            */
/* ------------------------------------------------------------------ */

iid_run *iid_run_new(const uint8_t *raw, size_t n, const iid_params *params,
                     const double *original, uint64_t permutations, uint64_t seed,
                     int stop_on_failure, int bzip2_level, int work_factor, int rank_limit) {
    if (n < 2 || work_factor < IID_CALIBRATE || work_factor > 250) {
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
    run->work_factor = work_factor;
    run->calibration[0] = run->calibration[1] = -1.0;
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

/* The work factor for the next shuffle compression (lock held): with
 * calibration, the first is made with bzip2's default and the second with 1
 * (sort by the fallback at once), and later ones with whichever took less
 * CPU time.  The work factor changes bzip2's speed, never its output. */
static int next_work_factor(iid_run *run, int *calibration_slot) {
    *calibration_slot = -1;
    if (run->work_factor != IID_CALIBRATE) {
        return run->work_factor;
    }
    uint64_t k = run->compressions++;
    if (k < 2) {
        *calibration_slot = (int)k;
        return k == 0 ? DEFAULT_WORK_FACTOR : 1;
    }
    if (run->calibration[0] >= 0.0 && run->calibration[1] >= 0.0 &&
        run->calibration[1] < run->calibration[0]) {
        return 1;
    }
    return DEFAULT_WORK_FACTOR;
}

int iid_run_work(iid_run *run) {
    size_t n = run->n;
    uint8_t *shuffled = malloc(n);
    uint8_t *scratch = malloc(2 * ((n + 7) / 8));
    char *chunk = malloc(TEXT_CHUNK);
    bz_arena arena;
    uint8_t active[IID_N_STATISTICS];
    double out[IID_N_STATISTICS];
    int status = 0;
    memset(&arena, 0, sizeof arena);
    if (shuffled == NULL || scratch == NULL || chunk == NULL) {
        status = -1;
    }
    pthread_mutex_lock(&run->lock);
    while (status == 0) {
        if (run->original_pending == 1 && !run->finished) {
            /* The original's own compression statistic, made by the first
             * worker while the others shuffle; counting waits for it. */
            run->original_pending = 2;
            int work_factor =
                run->work_factor == IID_CALIBRATE ? DEFAULT_WORK_FACTOR : run->work_factor;
            pthread_mutex_unlock(&run->lock);
            long long length = stream_length(run->raw, n, run->bzip2_level, work_factor, &arena,
                                              chunk, run, 1);
            pthread_mutex_lock(&run->lock);
            if (length == CANCELLED) {
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
        int calibration_slot = -1;
        int work_factor = active[IID_COMPRESSION] ? next_work_factor(run, &calibration_slot) : 0;
        pthread_mutex_unlock(&run->lock);

        iid_shuffle_copy(run->raw, shuffled, n, run->seed, index);
        if (iid_statistics_into(shuffled, n, &run->params, active, out, scratch) != 0) {
            status = -1;
        } else if (active[IID_COMPRESSION]) {
            double started = thread_seconds();
            long long length = stream_length(shuffled, n, run->bzip2_level, work_factor, &arena,
                                              chunk, run, 0);
            double seconds = thread_seconds() - started;
            if (length == CANCELLED) {
                out[IID_COMPRESSION] = NAN; /* decided already: the value is never counted */
            } else if (length < 0) {
                status = -1;
            } else {
                out[IID_COMPRESSION] = (double)length;
                if (calibration_slot >= 0) {
                    pthread_mutex_lock(&run->lock);
                    run->calibration[calibration_slot] = seconds;
                    pthread_mutex_unlock(&run->lock);
                }
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
    free(chunk);
    arena_release(&arena);
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
