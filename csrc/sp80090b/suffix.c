/* Suffix array (SA-IS) and LCP array (Phi algorithm) for the t-tuple and LRS
 * estimators (SP 800-90B §6.3.5, §6.3.6) and the IID LRS test (§5.2.5).
 *
 * SA-IS: Nong, Zhang and Chan, "Two Efficient Algorithms for Linear Time
 * Suffix Array Construction" (2011).  The text is treated as if it ended in a
 * unique sentinel smaller than every symbol, so a suffix sorts before its
 * extensions.  The reduced problem is solved recursively in the upper part
 * of the output array.
 * Phi/PLCP: Kärkkäinen, Manzini and Puglisi, "Permuted Longest-Common-Prefix
 * Array" (CPM 2009).
 */
#include "sp80090b.h"

#include <stdlib.h>
#include <string.h>

#define TYPE_L 0
#define TYPE_S 1

static inline int is_lms(const uint8_t *t, int64_t i)
{
    return i > 0 && t[i] == TYPE_S && t[i - 1] == TYPE_L;
}

/* One SA-IS level, generated for 8-bit and 32-bit texts. */
#define DEFINE_SAIS(NAME, CHAR_T)                                                          \
    static void NAME##_buckets(const CHAR_T *T, int64_t n, int32_t K, int32_t *bkt,       \
                               int end)                                                    \
    {                                                                                      \
        int64_t sum = 0;                                                                   \
        memset(bkt, 0, sizeof(int32_t) * (size_t)K);                                       \
        for (int64_t i = 0; i < n; i++) bkt[T[i]]++;                                       \
        for (int32_t c = 0; c < K; c++) {                                                  \
            sum += bkt[c];                                                                 \
            bkt[c] = (int32_t)(end ? sum : sum - bkt[c]);                                  \
        }                                                                                  \
    }                                                                                      \
                                                                                           \
    static void NAME##_induce(const CHAR_T *T, int32_t *SA, int64_t n, int32_t K,         \
                              const uint8_t *t, int32_t *bkt)                              \
    {                                                                                      \
        /* L-type suffixes, left to right; the sentinel's predecessor first. */            \
        NAME##_buckets(T, n, K, bkt, 0);                                                   \
        SA[bkt[T[n - 1]]++] = (int32_t)(n - 1);                                            \
        for (int64_t i = 0; i < n; i++) {                                                  \
            int32_t j = SA[i] - 1;                                                         \
            if (SA[i] > 0 && t[j] == TYPE_L) SA[bkt[T[j]]++] = j;                          \
        }                                                                                  \
        /* S-type suffixes, right to left. */                                              \
        NAME##_buckets(T, n, K, bkt, 1);                                                   \
        for (int64_t i = n - 1; i >= 0; i--) {                                             \
            int32_t j = SA[i] - 1;                                                         \
            if (SA[i] > 0 && t[j] == TYPE_S) SA[--bkt[T[j]]] = j;                          \
        }                                                                                  \
    }                                                                                      \
                                                                                           \
    static int NAME(const CHAR_T *T, int32_t *SA, int64_t n, int32_t K)                   \
    {                                                                                      \
        uint8_t *t;                                                                        \
        int32_t *bkt;                                                                      \
        int64_t m = 0, i;                                                                  \
        int32_t names = 0;                                                                 \
        int rc = 0;                                                                        \
                                                                                           \
        if (n == 1) {                                                                      \
            SA[0] = 0;                                                                     \
            return 0;                                                                      \
        }                                                                                  \
        t = malloc((size_t)n);                                                             \
        bkt = malloc(sizeof(int32_t) * (size_t)K);                                         \
        if (t == NULL || bkt == NULL) {                                                    \
            free(t);                                                                       \
            free(bkt);                                                                     \
            return SP_ERR_NOMEM;                                                           \
        }                                                                                  \
        /* Classify: the last symbol is L-type (the sentinel is smaller). */               \
        t[n - 1] = TYPE_L;                                                                 \
        for (i = n - 2; i >= 0; i--)                                                       \
            t[i] = (T[i] < T[i + 1] || (T[i] == T[i + 1] && t[i + 1] == TYPE_S)) ? TYPE_S  \
                                                                                 : TYPE_L; \
                                                                                           \
        /* Stage 1: sort the LMS substrings by one induced pass. */                        \
        NAME##_buckets(T, n, K, bkt, 1);                                                   \
        for (i = 0; i < n; i++) SA[i] = -1;                                                \
        for (i = 1; i < n; i++)                                                            \
            if (is_lms(t, i)) SA[--bkt[T[i]]] = (int32_t)i;                                \
        NAME##_induce(T, SA, n, K, t, bkt);                                                \
                                                                                           \
        /* Compact the sorted LMS positions into SA[0..m-1]. */                            \
        for (i = 0; i < n; i++)                                                            \
            if (is_lms(t, SA[i])) SA[m++] = SA[i];                                         \
        for (i = m; i < n; i++) SA[i] = -1;                                                \
                                                                                           \
        /* Name the LMS substrings; equal substrings share a name. */                      \
        {                                                                                  \
            int64_t prev = -1;                                                             \
            for (i = 0; i < m; i++) {                                                      \
                int64_t pos = SA[i], d;                                                    \
                int diff = 0;                                                              \
                if (prev < 0) {                                                            \
                    diff = 1;                                                              \
                } else {                                                                   \
                    for (d = 0;; d++) {                                                    \
                        if (pos + d == n || prev + d == n || T[pos + d] != T[prev + d] ||  \
                            t[pos + d] != t[prev + d]) {                                   \
                            diff = 1;                                                      \
                            break;                                                         \
                        }                                                                  \
                        if (d > 0 && is_lms(t, pos + d)) break;                            \
                    }                                                                      \
                }                                                                          \
                if (diff) {                                                                \
                    names++;                                                               \
                    prev = pos;                                                            \
                }                                                                          \
                SA[m + (pos >> 1)] = names - 1;                                            \
            }                                                                              \
        }                                                                                  \
        /* Gather the names in text order at the top of SA: the reduced string. */         \
        {                                                                                  \
            int64_t j = n - 1;                                                             \
            for (i = n - 1; i >= m; i--)                                                   \
                if (SA[i] >= 0) SA[j--] = SA[i];                                           \
        }                                                                                  \
                                                                                           \
        /* Stage 2: sort the LMS suffixes (recursively when names repeat). */              \
        {                                                                                  \
            int32_t *s1 = SA + n - m;                                                      \
            if (names < m) {                                                               \
                rc = sais_i32(s1, SA, m, names);                                           \
                if (rc != 0) goto done;                                                    \
            } else {                                                                       \
                for (i = 0; i < m; i++) SA[s1[i]] = (int32_t)i;                            \
            }                                                                              \
            /* Map reduced indexes back to text positions. */                              \
            {                                                                              \
                int64_t j = 0;                                                             \
                for (i = 1; i < n; i++)                                                    \
                    if (is_lms(t, i)) s1[j++] = (int32_t)i;                                \
            }                                                                              \
            for (i = 0; i < m; i++) SA[i] = s1[SA[i]];                                     \
            for (i = m; i < n; i++) SA[i] = -1;                                            \
        }                                                                                  \
                                                                                           \
        /* Stage 3: place the sorted LMS suffixes and induce the rest. */                  \
        NAME##_buckets(T, n, K, bkt, 1);                                                   \
        for (i = m - 1; i >= 0; i--) {                                                     \
            int32_t j = SA[i];                                                             \
            SA[i] = -1;                                                                    \
            SA[--bkt[T[j]]] = j;                                                           \
        }                                                                                  \
        NAME##_induce(T, SA, n, K, t, bkt);                                                \
    done:                                                                                  \
        free(t);                                                                           \
        free(bkt);                                                                         \
        return rc;                                                                         \
    }

static int sais_i32(const int32_t *T, int32_t *SA, int64_t n, int32_t K);
DEFINE_SAIS(sais_i32, int32_t)
DEFINE_SAIS(sais_u8, uint8_t)

int sp_suffix_array(const uint8_t *text, int64_t n, int32_t alphabet, int32_t *sa)
{
    if (n < 0 || n >= INT32_MAX || alphabet < 1 || alphabet > 256) return SP_ERR_ARGS;
    if (n == 0) return 0;
    for (int64_t i = 0; i < n; i++)
        if (text[i] >= alphabet) return SP_ERR_ARGS;
    return sais_u8(text, sa, n, alphabet);
}

int sp_lcp_array(const uint8_t *text, int64_t n, const int32_t *sa, int32_t *lcp)
{
    int32_t *phi;
    int64_t h = 0;

    if (n < 0 || n >= INT32_MAX) return SP_ERR_ARGS;
    if (n == 0) return 0;
    phi = malloc(sizeof(int32_t) * (size_t)n);
    if (phi == NULL) return SP_ERR_NOMEM;
    /* phi[i] = the suffix just before suffix i in sorted order (-1 for the first). */
    phi[sa[0]] = -1;
    for (int64_t i = 1; i < n; i++) phi[sa[i]] = sa[i - 1];
    /* Permuted LCP in text order, in place: plcp[i] >= plcp[i-1] - 1. */
    for (int64_t i = 0; i < n; i++) {
        int64_t j = phi[i];
        if (j < 0) {
            phi[i] = 0;
            h = 0;
            continue;
        }
        while (i + h < n && j + h < n && text[i + h] == text[j + h]) h++;
        phi[i] = (int32_t)h;
        if (h > 0) h--;
    }
    for (int64_t i = 0; i < n; i++) lcp[i] = phi[sa[i]];
    lcp[0] = 0;
    free(phi);
    return 0;
}

int32_t sp_lcp_max(const int32_t *lcp, int64_t n)
{
    int32_t v = 0;
    for (int64_t i = 0; i < n; i++)
        if (lcp[i] > v) v = lcp[i];
    return v;
}
