/* SP 800-90B §5.1 permutation testing: hot loops.
 *
 * The IID track shuffles the samples up to 10,000 times and ranks eighteen
 * cheap test statistics and the bzip2 compression statistic of every
 * shuffle against the original.  This file holds the parts that run once
 * per shuffle: a seeded Fisher-Yates shuffle driven by xoshiro256**, the
 * test statistics of §5.1.1-§5.1.10 (with the binary conversions of §5.1
 * when the data has two symbols), the compression statistic (§5.1.11: bzip2
 * of the decimal text), and the whole run (iid_run_*).  Everything is re-entrant: callers pass their own buffers and
 * generator state, so two threads can work at once (cffi releases the GIL).
 */
#ifndef CHAOS_SP80090B_IID_H
#define CHAOS_SP80090B_IID_H
#include <stdint.h>
#include <stddef.h>

/* CDEF-BEGIN */
/* Indices of the statistics in the out[] array of iid_statistics. */
#define IID_EXCURSION 0
#define IID_NUM_DIRECTIONAL_RUNS 1
#define IID_LEN_DIRECTIONAL_RUNS 2
#define IID_NUM_INCREASES_DECREASES 3
#define IID_NUM_RUNS_MEDIAN 4
#define IID_LEN_RUNS_MEDIAN 5
#define IID_AVG_COLLISION 6
#define IID_MAX_COLLISION 7
#define IID_PERIODICITY_1 8
#define IID_PERIODICITY_2 9
#define IID_PERIODICITY_8 10
#define IID_PERIODICITY_16 11
#define IID_PERIODICITY_32 12
#define IID_COVARIANCE_1 13
#define IID_COVARIANCE_2 14
#define IID_COVARIANCE_8 15
#define IID_COVARIANCE_16 16
#define IID_COVARIANCE_32 17
#define IID_COMPRESSION 18
#define IID_N_STATISTICS 19

/* xoshiro256** state. */
typedef struct {
    uint64_t s[4];
} iid_rng;

/* What the statistics need to know about the data set as a whole. */
typedef struct {
    int binary;              /* 1: two distinct symbols, use Conversions I and II */
    int64_t total;           /* sum of the raw sample values (excursion) */
    unsigned median_threshold; /* a raw value v is at or above the median iff v >= this
                                  (binary data: the larger of the two values, as the
                                  median is 0.5) */
    uint8_t bit[256];        /* binary data: raw value -> 0 or 1 (the lower symbol is 0) */
} iid_params;

/* Seed the generator from (seed, stream) through splitmix64, so that every
 * shuffle index gets its own independent, reproducible stream. */
void iid_rng_seed(iid_rng *rng, uint64_t seed, uint64_t stream);

/* Next 64-bit output (exposed for tests). */
uint64_t iid_rng_next(iid_rng *rng);

/* Uniform integer in [0, bound) without modulo bias (bound >= 1). */
uint64_t iid_rng_below(iid_rng *rng, uint64_t bound);

/* In-place Fisher-Yates shuffle of data[0..n). */
void iid_shuffle(uint8_t *data, size_t n, iid_rng *rng);

/* Copy src into dst, then shuffle dst with a fresh generator seeded from
 * (seed, stream): the permutation depends only on (seed, stream, n). */
void iid_shuffle_copy(const uint8_t *src, uint8_t *dst, size_t n,
                      uint64_t seed, uint64_t stream);

/* Compute the statistics 0..17 whose active[i] is non-zero into out[i]
 * (others are left untouched; index 18, compression, is never touched).
 * raw holds the n sample values as read.  Returns 0, -1 when n < 2, or -2
 * when the binary conversions cannot get memory. */
int iid_statistics(const uint8_t *raw, size_t n, const iid_params *params,
                   const uint8_t *active, double *out);

/* iid_statistics with caller-provided scratch space for the binary
 * conversions (2 * ceil(n/8) bytes), so a run allocates nothing per
 * shuffle; scratch may be NULL (then it allocates its own). */
int iid_statistics_into(const uint8_t *raw, size_t n, const iid_params *params,
                        const uint8_t *active, double *out, uint8_t *scratch);

/* Write the samples as decimal numbers separated by single spaces (no
 * trailing space) into out, which must hold at least 4*n bytes; returns the
 * text length.  This is the string §5.1.11 compresses. */
size_t iid_decimal_text(const uint8_t *raw, size_t n, char *out);

/* §5.2.1 step 3: put cells, in `order`, into bins of expected count at
 * least 5 (a bin is closed once its sum reaches 5; a last bin short of 5
 * joins the one before).  bin_of[cell] gets each cell's bin, bin_expected
 * each bin's sum (room for `cells` bins); returns the number of bins.
 * The sums are made in the order given, as a loop over the cells would. */
int64_t iid_allocate_bins(const double *expected, const int64_t *order, size_t cells,
                          int64_t *bin_of, double *bin_expected);

/* §5.1.11: the length BZ2_bzBuffToBuffCompress gives the decimal text of
 * raw[0..n) at block size `level` x 100 kB (level 1-9; bzip2's work factor
 * only changes its speed), worked out without compressing (bzlen.c).
 * Returns the length, -1 when memory fails, -3 for a level outside 1-9. */
long long iid_compressed_length(const uint8_t *raw, size_t n, int level);

/* A whole §5.1 permutation run: shuffle j (j = 0, 1, ...) is the data
 * shuffled by generator stream j of the seed, its statistics (only those
 * still undecided) are ranked against the original's strictly in the order
 * of j, and each statistic stops once its outcome is certain (NIST's
 * early stopping: pass once more than RANK_LIMIT shuffles lie on each side
 * of or tie the original, fail once too few shuffles remain for that).  The
 * counts therefore depend only on the seed, never on the number of threads.
 * Any number of threads may call iid_run_work on one run at once; each
 * returns when the run is over. */
typedef struct iid_run iid_run;

/* A new run over raw[0..n) (copied); original[19] are the statistics of
 * the unshuffled data; a NaN compression statistic is made by the run
 * itself, by the first worker while the others start shuffling.  With
 * stop_on_failure the run ends once any statistic has certainly failed.
 * NULL when memory fails, n < 2 or the level is outside 1-9. */
iid_run *iid_run_new(const uint8_t *raw, size_t n, const iid_params *params,
                     const double *original, uint64_t permutations, uint64_t seed,
                     int stop_on_failure, int bzip2_level, int rank_limit);

/* Shuffle and count until the run is over; 0, or -1 when memory failed
 * (the run is then over for every thread). */
int iid_run_work(iid_run *run);

/* Ask every worker to stop after its current shuffle. */
void iid_run_stop(iid_run *run);

/* Shuffles counted so far (for progress reports). */
uint64_t iid_run_committed(iid_run *run);

/* The counts C[i][0..2] (larger, equal, smaller than the original) into
 * counts[19*3], each statistic's verdict into decided[19] (1 passed,
 * 0 failed, -1 undecided), the number of shuffles counted, and the
 * original's statistics (with the compression statistic the run made)
 * into original[19]. */
void iid_run_result(iid_run *run, int64_t *counts, int8_t *decided, uint64_t *committed,
                    double *original);

void iid_run_free(iid_run *run);
/* CDEF-END */

#endif
