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

/* Suffix array of text[0..n-1] (symbols < alphabet, alphabet <= 256) by
 * SA-IS.  sa receives the start positions of the suffixes in lexicographic
 * order (a shorter suffix sorts before its extensions). */
int sp_suffix_array(const uint8_t *text, int64_t n, int32_t alphabet, int32_t *sa);

/* LCP array by the Phi algorithm: lcp[0] = 0 and, for i >= 1, lcp[i] is the
 * length of the longest common prefix of the suffixes sa[i-1] and sa[i]. */
int sp_lcp_array(const uint8_t *text, int64_t n, const int32_t *sa, int32_t *lcp);

/* Tuple statistics from an LCP array, for every length t = 1..max_len:
 * q[t] = the largest number of (overlapping) occurrences of any t-tuple,
 * pairs[t] = sum over distinct t-tuples of C(count, 2).  q and pairs must
 * hold max_len + 1 entries (index 0 is unused and set to 0).  max_len is the
 * largest LCP value (sp_lcp_max); lengths beyond it repeat nothing. */
int sp_tuple_counts(const int32_t *lcp, int64_t n, int32_t max_len, int64_t *q, uint64_t *pairs);

/* Largest value in lcp[0..n-1]: the length of the longest repeated substring. */
int32_t sp_lcp_max(const int32_t *lcp, int64_t n);

/* CDEF-END */

#endif
