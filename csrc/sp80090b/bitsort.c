/* LCP array of a bitstring's sorted suffixes, by radix sorting 40-bit
 * prefixes (SP 800-90B §6.3.5-6.3.6 on the bitstring).
 *
 * The t-tuple and LRS estimators need only the LCP values between neighbours
 * in suffix order.  For a bitstring, the first 40 bits of every suffix are one
 * machine word away in a packed copy of the text, so five passes of an 8-bit
 * LSD radix sort put the suffixes in order of their first 40 bits.  Suffixes
 * that still tie (a repeat of 40 bits or more) are sorted by comparing 64 bits
 * at a time from bit 40 on.  When such ties are common (long repeats) that
 * second stage could grow without bound, so it works within a budget and
 * reports SP_ERR_BUDGET when it runs out; the caller then uses SA-IS.
 *
 * A suffix that runs out of bits sorts before its extensions: the radix sort
 * is stable and starts from the positions in descending order (shorter
 * suffixes first), and the comparison treats the end of the text as smaller
 * than any bit.
 */
/* madvise and posix_memalign, for sp_table_alloc */
#define _DEFAULT_SOURCE
#include "sp80090b.h"
#include "tables.h"

#include <stdlib.h>
#include <string.h>

#define PREFIX_BITS 40
#define DIGIT_BITS 8
#define DIGITS (1 << DIGIT_BITS)
#define PASSES (PREFIX_BITS / DIGIT_BITS)

typedef struct {
    const uint64_t *W; /* packed bits, most significant first, zero padded */
    int64_t n;
    int64_t work, budget;
} bittext;

/* The 64 bits starting at bit q (zeros past the end). */
static inline uint64_t bits_at(const uint64_t *W, int64_t q)
{
    int64_t w = q >> 6;
    unsigned r = (unsigned)(q & 63);
    return r == 0 ? W[w] : (W[w] << r) | (W[w + 1] >> (64 - r));
}

static inline int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Order of the suffixes at a != b, both known to agree on their first `off`
 * bits: negative when suffix a sorts first (0 once the budget is spent). */
static inline int suffix_cmp(bittext *t, int64_t a, int64_t b, int64_t off)
{
    for (;;) {
        int64_t la = t->n - a - off, lb = t->n - b - off, m;
        uint64_t ka, kb, diff;
        if (la <= 0 || lb <= 0) return la < lb ? -1 : 1;
        ka = bits_at(t->W, a + off);
        kb = bits_at(t->W, b + off);
        m = min64(min64(la, lb), 64);
        diff = ka ^ kb;
        if (m < 64) diff &= ~0ULL << (64 - m);
        if (++t->work > t->budget) return 0; /* out of budget: the caller gives up */
        if (diff) return ka < kb ? -1 : 1;
        if (m < 64) return la < lb ? -1 : 1;
        off += 64;
    }
}

/* Length of the common prefix of the suffixes at a and b, given that they
 * agree on their first `off` bits. */
static inline int64_t suffix_lcp(bittext *t, int64_t a, int64_t b, int64_t off)
{
    for (;;) {
        int64_t la = t->n - a - off, lb = t->n - b - off, m;
        uint64_t diff;
        if (la <= 0 || lb <= 0) return off;
        m = min64(min64(la, lb), 64);
        diff = bits_at(t->W, a + off) ^ bits_at(t->W, b + off);
        if (++t->work > t->budget) return off; /* out of budget: the caller gives up */
        if (diff) {
            int64_t c = __builtin_clzll(diff);
            return off + (c < m ? c : m);
        }
        if (m < 64) return off + m;
        off += 64;
    }
}

static void insertion_sort(bittext *t, uint32_t *p, int64_t len, int64_t off)
{
    for (int64_t i = 1; i < len; i++) {
        uint32_t x = p[i];
        int64_t j = i;
        while (j > 0 && suffix_cmp(t, x, p[j - 1], off) < 0) {
            p[j] = p[j - 1];
            j--;
        }
        p[j] = x;
    }
}

/* Quicksort of suffix positions (all distinct, so no two compare equal). */
static int sort_group(bittext *t, uint32_t *p, int64_t len, int64_t off)
{
    while (len > 16) {
        int64_t mid = len / 2, last = len - 1, m, store = 0;
        uint32_t pivot, tmp;
        if (t->work > t->budget) return SP_ERR_BUDGET;
        /* median of three, moved to the end */
        if (suffix_cmp(t, p[0], p[mid], off) < 0) {
            m = suffix_cmp(t, p[mid], p[last], off) < 0 ? mid
                : (suffix_cmp(t, p[0], p[last], off) < 0 ? last : 0);
        } else {
            m = suffix_cmp(t, p[0], p[last], off) < 0 ? 0
                : (suffix_cmp(t, p[mid], p[last], off) < 0 ? last : mid);
        }
        pivot = p[m];
        p[m] = p[last];
        p[last] = pivot;
        for (int64_t i = 0; i < last; i++) {
            if (suffix_cmp(t, p[i], pivot, off) < 0) {
                tmp = p[i];
                p[i] = p[store];
                p[store++] = tmp;
            }
        }
        p[last] = p[store];
        p[store] = pivot;
        /* recurse on the smaller side, loop on the larger */
        if (store < len - 1 - store) {
            int rc = sort_group(t, p, store, off);
            if (rc != 0) return rc;
            p += store + 1;
            len -= store + 1;
        } else {
            int rc = sort_group(t, p + store + 1, len - store - 1, off);
            if (rc != 0) return rc;
            len = store;
        }
    }
    insertion_sort(t, p, len, off);
    return t->work > t->budget ? SP_ERR_BUDGET : 0;
}

int sp_bit_lcp_array(const uint8_t *bits, int64_t n, int32_t *lcp, int64_t budget)
{
    bittext t;
    uint64_t *W;
    uint32_t *P, *Q, *own;
    int64_t *hist, nw;
    int rc = 0;

    if (n < 0 || n >= INT32_MAX) return SP_ERR_ARGS;
    if (n == 0) return 0;
    nw = (n + 127) / 64 + 1;
    W = calloc((size_t)nw, sizeof(uint64_t));
    /* The radix sort's second buffer is the caller's lcp array (the same size,
     * written only once the order is final): one n-entry array fewer at the peak. */
    own = P = malloc(sizeof(uint32_t) * (size_t)n);
    Q = (uint32_t *)lcp;
    hist = calloc((size_t)PASSES * DIGITS, sizeof(int64_t));
    if (W == NULL || P == NULL || hist == NULL) {
        rc = SP_ERR_NOMEM;
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        if (bits[i] > 1) {
            rc = SP_ERR_ARGS;
            goto done;
        }
        W[i >> 6] |= (uint64_t)bits[i] << (63 - (i & 63));
    }
    t.W = W;
    t.n = n;
    t.work = 0;
    t.budget = budget;

    /* Stable LSD radix sort on the first 40 bits, from descending positions. */
    for (int64_t i = 0; i < n; i++) {
        uint64_t prefix = bits_at(W, i) >> (64 - PREFIX_BITS);
        for (int p = 0; p < PASSES; p++) hist[p * DIGITS + ((prefix >> (p * DIGIT_BITS)) & (DIGITS - 1))]++;
    }
    for (int p = 0; p < PASSES; p++) {
        int64_t sum = 0, *h = hist + p * DIGITS;
        for (int d = 0; d < DIGITS; d++) {
            int64_t c = h[d];
            h[d] = sum;
            sum += c;
        }
    }
    for (int64_t i = 0; i < n; i++) P[i] = (uint32_t)(n - 1 - i);
    for (int p = 0; p < PASSES; p++) {
        int64_t *h = hist + p * DIGITS;
        for (int64_t i = 0; i < n; i++) {
            uint32_t pos = P[i];
            uint64_t prefix = bits_at(W, pos) >> (64 - PREFIX_BITS);
            Q[h[(prefix >> (p * DIGIT_BITS)) & (DIGITS - 1)]++] = pos;
        }
        {
            uint32_t *swap = P;
            P = Q;
            Q = swap;
        }
    }
    if (P != own) { /* the order ended in the lcp array: move it out */
        memcpy(own, P, sizeof(uint32_t) * (size_t)n);
        P = own;
    }
    Q = NULL;

    /* Neighbours that differ within 40 bits (or where one suffix is shorter
     * than 40 bits) are final; runs that share 40 bits are sorted further. */
    lcp[0] = 0;
    for (int64_t i = 1; i < n;) {
        int64_t a = P[i - 1], b = P[i];
        uint64_t diff = bits_at(W, a) ^ bits_at(W, b);
        int64_t la = n - a, lb = n - b;
        if ((diff >> (64 - PREFIX_BITS)) != 0 || la < PREFIX_BITS || lb < PREFIX_BITS) {
            int64_t c = diff ? __builtin_clzll(diff) : 64;
            lcp[i] = (int32_t)min64(c, min64(la, lb));
            i++;
            continue;
        }
        /* a run P[s..e] sharing its first 40 bits, all at least 40 bits long */
        {
            int64_t s = i - 1, e = i;
            while (e + 1 < n) {
                int64_t c = P[e + 1];
                if (n - c < PREFIX_BITS || ((bits_at(W, a) ^ bits_at(W, c)) >> (64 - PREFIX_BITS)) != 0) break;
                e++;
            }
            rc = sort_group(&t, P + s, e - s + 1, PREFIX_BITS);
            if (rc != 0) goto done;
            for (int64_t k = s + 1; k <= e; k++) {
                int64_t l = suffix_lcp(&t, P[k - 1], P[k], PREFIX_BITS);
                if (l >= INT32_MAX) {
                    rc = SP_ERR_ARGS;
                    goto done;
                }
                lcp[k] = (int32_t)l;
            }
            if (t.work > t.budget) {
                rc = SP_ERR_BUDGET;
                goto done;
            }
            i = e + 1;
        }
    }
done:
    free(W);
    free(own);
    free(hist);
    return rc;
}

/* ------------------------------------------------------------------------
 * Tuple counts of a bitstring without its suffix or LCP array.
 *
 * The suffixes are visited bucket by bucket, a bucket being every suffix with
 * one 16-bit prefix, in ascending order of that prefix.  A few scans of the
 * text collect the positions of a chunk of consecutive buckets (about n/4
 * positions), each bucket's positions in descending order; a bucket is then
 * sorted by its next 24 bits (a composite key with the position, so equal
 * prefixes keep the shorter suffix first), its runs sharing 40 bits by
 * comparison as above, and the LCP of each pair of neighbours goes straight
 * into the tuple counter.  Memory: the packed text, one chunk of positions
 * and the largest bucket's keys, instead of 8 bytes per bit. */

#include "tuple.h"

#define BUCKET_BITS 16
#define BUCKETS (1 << BUCKET_BITS)

static inline uint32_t bucket_of(const uint64_t *W, int64_t i)
{
    return (uint32_t)(bits_at(W, i) >> (64 - BUCKET_BITS));
}

/* LCP of neighbours a, b (a sorting first) from different buckets. */
static inline int64_t neighbour_lcp(bittext *t, int64_t a, int64_t b)
{
    uint64_t diff = bits_at(t->W, a) ^ bits_at(t->W, b);
    int64_t c = diff ? __builtin_clzll(diff) : 64;
    return min64(c, min64(t->n - a, t->n - b));
}

#define KEY_DIGITS(k) ((uint32_t)((k) >> 32))

/* Sort one bucket (positions P[0..len-1], descending) into suffix order and
 * push the LCP of each neighbour pair (prev: the last suffix of the buckets
 * before, or -1).  key and tmp hold len entries each. */
static int bucket_lcps(bittext *t, tuple_counter *tc, uint32_t *P, int64_t len, uint64_t *key, uint64_t *tmp,
                       int64_t prev)
{
    const uint64_t *W = t->W;
    const int64_t n = t->n;
    int rc, sorted_by_top = 0;
    /* key: the 24 bits after the bucket's 16 (zero padded), then the position
     * reversed, so that equal bits put the shorter suffix first */
    for (int64_t k = 0; k < len; k++) {
        uint64_t digits = (bits_at(W, P[k]) >> (64 - PREFIX_BITS)) & ((1ULL << (PREFIX_BITS - BUCKET_BITS)) - 1);
        key[k] = digits << 32 | (uint64_t)(0xFFFFFFFFu - P[k]);
    }
    if (len > 32) {
        /* one counting pass on the top 8 of the 24 bits: when that leaves
         * groups of at most 32 (a bucket of a few hundred nearly random
         * suffixes), an insertion sort finishes, moving keys within their group
         * only; otherwise (skewed data) three LSD passes */
        uint32_t h[DIGITS] = {0}, largest = 0, sum = 0;
        for (int64_t k = 0; k < len; k++) {
            uint32_t c = ++h[(key[k] >> 48) & (DIGITS - 1)];
            largest = c > largest ? c : largest;
        }
        if (largest <= 32) {
            for (int d = 0; d < DIGITS; d++) {
                uint32_t c = h[d];
                h[d] = sum;
                sum += c;
            }
            for (int64_t k = 0; k < len; k++) tmp[h[(key[k] >> 48) & (DIGITS - 1)]++] = key[k];
            {
                uint64_t *swap = key;
                key = tmp;
                tmp = swap;
            }
        }
        sorted_by_top = largest <= 32;
    }
    if (len <= 32 || sorted_by_top) {
        for (int64_t i = 1; i < len; i++) {
            uint64_t x = key[i];
            int64_t j = i;
            while (j > 0 && key[j - 1] > x) {
                key[j] = key[j - 1];
                j--;
            }
            key[j] = x;
        }
    } else {
        /* stable LSD passes on the 24 key bits; the start order (descending
         * positions) settles equal bits */
        for (int pass = 0; pass < (PREFIX_BITS - BUCKET_BITS) / DIGIT_BITS; pass++) {
            int64_t h[DIGITS] = {0}, sum = 0;
            int shift = 32 + pass * DIGIT_BITS;
            for (int64_t k = 0; k < len; k++) h[(key[k] >> shift) & (DIGITS - 1)]++;
            for (int d = 0; d < DIGITS; d++) {
                int64_t c = h[d];
                h[d] = sum;
                sum += c;
            }
            for (int64_t k = 0; k < len; k++) tmp[h[(key[k] >> shift) & (DIGITS - 1)]++] = key[k];
            {
                uint64_t *swap = key;
                key = tmp;
                tmp = swap;
            }
        }
    }
    for (int64_t k = 0; k < len; k++) P[k] = 0xFFFFFFFFu - (uint32_t)key[k];
    /* runs with equal 40-bit prefixes, all at least 40 bits long, go on by comparison */
    for (int64_t i = 0; i < len;) {
        int64_t e = i + 1;
        if (n - (int64_t)P[i] >= PREFIX_BITS) {
            while (e < len && KEY_DIGITS(key[e]) == KEY_DIGITS(key[i]) && n - (int64_t)P[e] >= PREFIX_BITS) e++;
            if (e - i > 1) {
                rc = sort_group(t, P + i, e - i, PREFIX_BITS);
                if (rc != 0) return rc;
            }
        }
        i = e;
    }
    if (prev >= 0) {
        rc = tc_push(tc, neighbour_lcp(t, prev, P[0]));
        if (rc != 0) return rc;
    }
    for (int64_t k = 1; k < len; k++) {
        const int64_t a = P[k - 1], b = P[k], la = n - a, lb = n - b;
        const uint32_t da = KEY_DIGITS(key[k - 1]), db = KEY_DIGITS(key[k]);
        int64_t l;
        if (da != db) /* the digits are the low 24 bits of a 32-bit word */
            l = min64(BUCKET_BITS + __builtin_clz(da ^ db) - 8, min64(la, lb));
        else if (la < PREFIX_BITS || lb < PREFIX_BITS)
            l = min64(la, lb);
        else
            l = suffix_lcp(t, a, b, PREFIX_BITS);
        rc = tc_push(tc, l);
        if (rc != 0) return rc;
    }
    return 0;
}

int sp_bit_tuple_counts(const uint8_t *bits, int64_t n, int64_t budget, int32_t cap, int64_t *q,
                        uint64_t *pairs, int32_t *max_len)
{
    bittext t;
    tuple_counter tc;
    uint64_t *W = NULL, *key = NULL, *tmp = NULL;
    uint32_t *chunk = NULL, *count = NULL, *fill = NULL;
    int64_t nw, largest = 0, chunk_cap, prev = -1;
    int rc = 0, have_tc = 0;

    if (n < 1 || n >= INT32_MAX || cap < 1) return SP_ERR_ARGS;
    nw = (n + 127) / 64 + 1;
    W = calloc((size_t)nw, sizeof(uint64_t));
    count = calloc(BUCKETS, sizeof(uint32_t));
    fill = malloc(sizeof(uint32_t) * (BUCKETS + 1));
    if (W == NULL || count == NULL || fill == NULL) {
        rc = SP_ERR_NOMEM;
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        if (bits[i] > 1) {
            rc = SP_ERR_ARGS;
            goto done;
        }
        W[i >> 6] |= (uint64_t)bits[i] << (63 - (i & 63));
    }
    t.W = W;
    t.n = n;
    t.work = 0;
    t.budget = budget;
    for (int64_t i = 0; i < n; i++) count[bucket_of(W, i)]++;
    for (int b = 0; b < BUCKETS; b++) largest = count[b] > largest ? count[b] : largest;
    /* one scan of the text up to 2^22 positions (16 MB), two up to 2^24 (a
     * second scan costs about as much as sorting the positions), else four,
     * each collecting a quarter of the positions */
    chunk_cap = n <= (1 << 22) ? n : n <= (1 << 24) ? n / 2 : n / 4;
    chunk_cap = chunk_cap > largest ? chunk_cap : largest;
    chunk = sp_table_alloc(sizeof(uint32_t) * (size_t)(chunk_cap + 1), 0);
    key = malloc(sizeof(uint64_t) * (size_t)largest);
    tmp = malloc(sizeof(uint64_t) * (size_t)largest);
    if (chunk == NULL || key == NULL || tmp == NULL) {
        rc = SP_ERR_NOMEM;
        goto done;
    }
    rc = tc_init(&tc, cap);
    if (rc != 0) goto done;
    have_tc = 1;

    for (int lo = 0; lo < BUCKETS;) {
        int hi = lo;
        uint32_t filled = 0;
        while (hi < BUCKETS && (int64_t)filled + count[hi] <= chunk_cap) {
            fill[hi] = filled;
            filled += count[hi++];
        }
        /* collect the chunk's positions, descending within each bucket (fill[b]
         * ends at the bucket's end) */
        {
            /* without a branch on whether i is in the chunk (a coin toss): the
             * others are written to a spare entry past the chunk's end */
            uint32_t spare = (uint32_t)chunk_cap;
            for (int64_t i = n - 1; i >= 0; i--) {
                const uint32_t b = bucket_of(W, i);
                const int in = b - (uint32_t)lo < (uint32_t)(hi - lo);
                uint32_t *f = in ? &fill[b] : &spare;
                chunk[*f] = (uint32_t)i;
                *f += (uint32_t)in;
            }
        }
        for (int b = lo; b < hi; b++) {
            int64_t len = count[b];
            uint32_t *P = chunk + (fill[b] - len);
            if (len == 0) continue;
            rc = bucket_lcps(&t, &tc, P, len, key, tmp, prev);
            if (rc != 0) goto done;
            if (t.work > t.budget) {
                rc = SP_ERR_BUDGET;
                goto done;
            }
            prev = P[len - 1];
        }
        lo = hi;
    }
    *max_len = tc.max_len;
    rc = tc_finish(&tc, q, pairs);
done:
    if (have_tc) tc_free(&tc);
    free(W);
    free(count);
    free(fill);
    free(chunk);
    free(key);
    free(tmp);
    return rc;
}
