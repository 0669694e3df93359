/* Loops of the entropic-statistic estimators on bitstrings: the collision
 * estimate (SP 800-90B §6.3.2) and the compression estimate (§6.3.4). */
#include "sp80090b.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define COMP_BLOCK_BITS 6
#define COMP_DICT_BLOCKS 1000
#define TINY 1e-290

int sp_collision_times(const uint8_t *bits, int64_t n, sp_collision_stats *out)
{
    int64_t i = 0, v = 0, sq = 0;
    /* A collision takes 2 bits when two adjacent bits agree, else 3 (among any
     * three bits two agree); a trailing incomplete pair is dropped. */
    while (i < n - 1) {
        int64_t t;
        if (bits[i] == bits[i + 1]) t = 2;
        else if (i < n - 2) t = 3;
        else break;
        v++;
        sq += t * t;
        i += t;
    }
    out->v = v;
    out->sum = i;
    out->sum_squares = sq;
    return 0;
}

int sp_markov_counts(const uint8_t *bits, int64_t n, int64_t *counts)
{
    int64_t c[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i + 1 < n; i++) {
        if (bits[i] > 1 || bits[i + 1] > 1) return SP_ERR_ARGS;
        c[2 * bits[i] + bits[i + 1]]++;
    }
    if (n > 0 && bits[n - 1] > 1) return SP_ERR_ARGS;
    for (int k = 0; k < 4; k++) counts[k] = c[k];
    return 0;
}

int sp_unpack_bits(const uint8_t *samples, int64_t n, int32_t bits, uint8_t *out)
{
    if (n < 0 || bits < 1 || bits > 8) return SP_ERR_ARGS;
    if (bits == 8) {
        /* the eight bits of a byte as eight bytes at once: the byte copied into
         * every byte of a word, byte k keeping bit 7 - k, each turned into 0/1 */
        for (int64_t i = 0; i < n; i++) {
            const uint64_t picked = (samples[i] * 0x0101010101010101ULL) & 0x0102040810204080ULL;
            const uint64_t word = ((picked + 0x7F7F7F7F7F7F7F7FULL) >> 7) & 0x0101010101010101ULL;
            uint8_t *o = out + 8 * i;
            for (int k = 0; k < 8; k++) o[k] = (uint8_t)(word >> (8 * k));
        }
        return 0;
    }
    for (int64_t i = 0; i < n; i++)
        for (int32_t k = 0; k < bits; k++) out[i * bits + k] = (samples[i] >> (bits - 1 - k)) & 1u;
    return 0;
}

int sp_byte_counts(const uint8_t *data, int64_t n, int64_t *counts)
{
    /* four tables, so that runs of one value do not wait on one counter */
    int64_t c[4][256];
    int64_t i = 0;
    memset(c, 0, sizeof c);
    for (; i + 4 <= n; i += 4) {
        c[0][data[i]]++;
        c[1][data[i + 1]]++;
        c[2][data[i + 2]]++;
        c[3][data[i + 3]]++;
    }
    for (; i < n; i++) c[0][data[i]]++;
    for (int v = 0; v < 256; v++) counts[v] = c[0][v] + c[1][v] + c[2][v] + c[3][v];
    return 0;
}

void sp_prefer_mmap(void)
{
#ifdef __GLIBC__
    /* A fixed threshold turns off glibc's sliding one, which after the first
     * large free serves every later buffer up to that size from the heap,
     * where freed pages stay resident. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

static inline void kahan(double *sum, double *comp, double x)
{
    double y = x - *comp;
    double t = *sum + y;
    *comp = (t - *sum) - y;
    *sum = t;
}

int sp_compression_stats(const uint8_t *bits, int64_t n, double *sum, double *sum_squares,
                         int64_t *num_blocks)
{
    int64_t last[1 << COMP_BLOCK_BITS] = {0};
    int64_t blocks = n / COMP_BLOCK_BITS;
    double s = 0.0, sc = 0.0, q = 0.0, qc = 0.0;

    *num_blocks = blocks;
    if (blocks <= COMP_DICT_BLOCKS) return SP_ERR_ARGS;
    for (int64_t i = 0; i < blocks; i++) {
        const uint8_t *b = bits + i * COMP_BLOCK_BITS;
        unsigned block = 0;
        for (int j = 0; j < COMP_BLOCK_BITS; j++) block = (block << 1) | (b[j] & 1u);
        if (i >= COMP_DICT_BLOCKS) {
            /* distance to the previous occurrence, or i + 1 when there is none */
            double lg = log2((double)(i + 1 - last[block]));
            kahan(&s, &sc, lg);
            kahan(&q, &qc, lg * lg);
        }
        last[block] = i + 1;
    }
    *sum = s;
    *sum_squares = q;
    return 0;
}

/* G(z) of §6.3.4 step 7 for d dictionary blocks and L blocks in all:
 *   G(z) = 1/v sum_{t=d+1}^{L} sum_{u=1}^{t} log2(u) F(z, t, u)
 * with F = z^2 (1-z)^(u-1) for u < t and z (1-z)^(t-1) for u = t.  Writing
 * a_u = log2(u) (1-z)^(u-1) and A(k) = a_1 + ... + a_k, the double sum is
 *   z^2 [ (L-d) A(d) + sum_{u=d+1}^{L-1} (L-u) a_u ] + z [ A(L) - A(d) ],
 * one pass over u.  lg[u] = log2(u).  The sum stops once (1-z)^(u-1) drops
 * below 1e-290: later terms cannot change a double result, and running on
 * into subnormal numbers costs more than the whole useful part. */
static double compression_g(double z, int64_t d, int64_t L, const double *lg)
{
    double A = 0.0, Ac = 0.0, tail = 0.0, tc = 0.0, Ad;
    double decay = 1.0 - z, pw = decay; /* (1-z)^(u-1) for u = 2 */
    int64_t u;

    for (u = 2; u <= d && pw > TINY; u++) {
        kahan(&A, &Ac, lg[u] * pw);
        pw *= decay;
    }
    Ad = A;
    for (u = d + 1; u <= L && pw > TINY; u++) {
        double a = lg[u] * pw;
        kahan(&A, &Ac, a);
        if (u < L) kahan(&tail, &tc, (double)(L - u) * a);
        pw *= decay;
    }
    kahan(&tail, &tc, (double)(L - d) * Ad);
    return z * (z * tail + (A - Ad)) / (double)(L - d);
}

static double expectation(double p, int64_t num_blocks, const double *lg)
{
    const double symbols = (double)(1 << COMP_BLOCK_BITS);
    double q = (1.0 - p) / (symbols - 1.0);
    return compression_g(p, COMP_DICT_BLOCKS, num_blocks, lg) +
           (symbols - 1.0) * compression_g(q, COMP_DICT_BLOCKS, num_blocks, lg);
}

static double *log2_table(int64_t num_blocks)
{
    double *lg = malloc(sizeof(double) * (size_t)(num_blocks + 1));
    if (lg == NULL) return NULL;
    lg[0] = 0.0;
    for (int64_t u = 1; u <= num_blocks; u++) lg[u] = log2((double)u);
    return lg;
}

double sp_compression_expectation(double p, int64_t num_blocks)
{
    double *lg, e;
    if (num_blocks <= COMP_DICT_BLOCKS) return NAN;
    lg = log2_table(num_blocks);
    if (lg == NULL) return NAN;
    e = expectation(p, num_blocks, lg);
    free(lg);
    return e;
}

int sp_compression_solve(double target, int64_t num_blocks, double *p_out)
{
    const double floor_p = 1.0 / (double)(1 << COMP_BLOCK_BITS);
    double lo = floor_p, hi = 1.0, *lg;

    if (num_blocks <= COMP_DICT_BLOCKS) return SP_ERR_ARGS;
    lg = log2_table(num_blocks);
    if (lg == NULL) return SP_ERR_NOMEM;
    if (!(expectation(floor_p, num_blocks, lg) > target)) {
        *p_out = floor_p;
        free(lg);
        return 0;
    }
    /* The expectation falls as p rises: bisect down to adjacent doubles. */
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (lo + hi), e;
        if (mid <= lo || mid >= hi) break;
        e = expectation(mid, num_blocks, lg);
        if (e == target) {
            lo = hi = mid;
            break;
        }
        if (e > target) lo = mid;
        else hi = mid;
    }
    *p_out = 0.5 * (lo + hi);
    free(lg);
    return 0;
}
