/* SP 800-90B non-IID estimator kernels (§6.3): suffix structures, tuple
 * counts, the four predictors and the compression/collision loops.
 *
 * Every function is pure: it reads the arrays it is given and writes only
 * its output arguments.  Lengths are int64_t; suffix-array indexes are
 * int32_t, so texts must be shorter than 2^31 - 1 symbols.  Functions that
 * allocate return a negative value when memory runs out.
 */
#ifndef CHAOS_SP80090B_H
#define CHAOS_SP80090B_H
#include <stdint.h>
#include <stddef.h>

/* CDEF-BEGIN */
/* Error codes returned by the kernels (0 means success). */
#define SP_ERR_NOMEM -1
#define SP_ERR_ARGS -2
#define SP_ERR_BUDGET -3
#define SP_ERR_LONG -4

/* Suffix array of text[0..n-1] (symbols < alphabet, alphabet <= 256) by
 * SA-IS.  sa receives the start positions of the suffixes in lexicographic
 * order (a shorter suffix sorts before its extensions). */
int sp_suffix_array(const uint8_t *text, int64_t n, int32_t alphabet, int32_t *sa);

/* LCP array by the Phi algorithm: lcp[0] = 0 and, for i >= 1, lcp[i] is the
 * length of the longest common prefix of the suffixes sa[i-1] and sa[i]. */
int sp_lcp_array(const uint8_t *text, int64_t n, const int32_t *sa, int32_t *lcp);

/* LCP array (in suffix order, lcp[0] = 0) of a text of bits 0/1, by radix
 * sorting 40-bit prefixes and comparing longer ties 64 bits at a time.
 * Returns SP_ERR_BUDGET when the ties need more than `budget` 64-bit steps
 * (long repeats): use sp_suffix_array and sp_lcp_array instead. */
int sp_bit_lcp_array(const uint8_t *bits, int64_t n, int32_t *lcp, int64_t budget);

/* Tuple statistics from an LCP array, for every length t = 1..max_len:
 * q[t] = the largest number of (overlapping) occurrences of any t-tuple,
 * pairs[t] = sum over distinct t-tuples of C(count, 2).  q and pairs must
 * hold max_len + 1 entries (index 0 is unused and set to 0).  max_len is the
 * largest LCP value (sp_lcp_max); lengths beyond it repeat nothing. */
int sp_tuple_counts(const int32_t *lcp, int64_t n, int32_t max_len, int64_t *q, uint64_t *pairs);

/* The tuple statistics of sp_tuple_counts for a text of bits 0/1, straight from
 * its sorted suffixes (no suffix or LCP array: a fraction of the memory).  q
 * and pairs hold cap + 1 entries; *max_len receives the longest repeat.
 * Returns SP_ERR_BUDGET when the ties need more than `budget` 64-bit steps and
 * SP_ERR_LONG when a repeat is longer than cap: use the suffix-array route. */
int sp_bit_tuple_counts(const uint8_t *bits, int64_t n, int64_t budget, int32_t cap, int64_t *q,
                        uint64_t *pairs, int32_t *max_len);

/* Largest value in lcp[0..n-1]: the length of the longest repeated substring. */
int32_t sp_lcp_max(const int32_t *lcp, int64_t n);

/* Result of one predictor run (§6.3.7-6.3.10): C correct predictions out of
 * N, and the longest run of correct predictions. */
typedef struct {
    int64_t predictions;   /* N */
    int64_t correct;       /* C */
    int64_t longest_run;   /* longest run of consecutive correct predictions */
} sp_predictor_result;

/* §6.3.7 MultiMCW: windows 63, 255, 1023, 4095 (needs n > 4095). */
int sp_multi_mcw(const uint8_t *s, int64_t n, int32_t alphabet, sp_predictor_result *out);
/* §6.3.8 lag predictor, lags 1..128. */
int sp_lag(const uint8_t *s, int64_t n, int32_t alphabet, sp_predictor_result *out);
/* §6.3.9 MultiMMC, orders 1..16, at most 100,000 (x, y) entries per order. */
int sp_multi_mmc(const uint8_t *s, int64_t n, int32_t alphabet, sp_predictor_result *out);
/* §6.3.10 LZ78Y, contexts 1..16, dictionary of at most 65,536 contexts. */
int sp_lz78y(const uint8_t *s, int64_t n, int32_t alphabet, sp_predictor_result *out);

/* §6.3.2 collision estimate, steps 1-5 on a bitstring: number of collision
 * times v, their sum and sum of squares. */
typedef struct {
    int64_t v;
    int64_t sum;
    int64_t sum_squares;
} sp_collision_stats;
int sp_collision_times(const uint8_t *bits, int64_t n, sp_collision_stats *out);

/* §6.3.3 Markov estimate: counts[2a + b] = the number of i < n - 1 with
 * bits[i] = a and bits[i + 1] = b. */
int sp_markov_counts(const uint8_t *bits, int64_t n, int64_t *counts);

/* The bitstring of n samples: the low `bits` bits of each (1..8), most
 * significant first, one bit per byte of out (n * bits bytes). */
int sp_unpack_bits(const uint8_t *samples, int64_t n, int32_t bits, uint8_t *out);

/* counts[v] = the number of bytes equal to v in data[0..n-1] (256 entries). */
int sp_byte_counts(const uint8_t *data, int64_t n, int64_t *counts);

/* Large buffers from mmap, returned to the system when freed (glibc: a fixed
 * M_MMAP_THRESHOLD of 128 KiB).  Process-wide: called by the assessment's
 * entry points, whose memory peak is the estimators' buffers. */
void sp_prefer_mmap(void);

/* §6.3.4 compression estimate, steps 1-5: the mean and the sum of squares of
 * log2 of the Maurer distances over blocks of b = 6 bits, d = 1000 blocks of
 * dictionary (needs n / 6 > 1000).  Sums are compensated (Kahan). */
int sp_compression_stats(const uint8_t *bits, int64_t n, double *sum, double *sum_squares,
                         int64_t *num_blocks);

/* §6.3.4 step 7: the expected value G(p) + (2^b - 1) G(q) of the statistic
 * for the near-uniform family with most likely block probability p, for
 * d = 1000 dictionary blocks and num_blocks blocks in all. */
double sp_compression_expectation(double p, int64_t num_blocks);

/* §6.3.4 steps 7-8: the p in [2^-6, 1] whose expectation equals target
 * (bisection to adjacent doubles); 2^-6 when even that expectation is not
 * above target. */
int sp_compression_solve(double target, int64_t num_blocks, double *p_out);
/* CDEF-END */

#endif
