/* SP 800-90B §5.1 permutation testing: shuffles and test statistics.
 * See iid.h for the contract of each function. */
#include "iid.h"

#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Generator: xoshiro256** seeded through splitmix64.                  */
/* ------------------------------------------------------------------ */

static inline uint64_t rotl64(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void iid_rng_seed(iid_rng *rng, uint64_t seed, uint64_t stream) {
    uint64_t x = seed;
    /* Fold the stream number in through one splitmix round of its own, so
     * that (seed, stream) pairs that differ in either give unrelated states. */
    uint64_t y = stream ^ 0xA0761D6478BD642FULL;
    x ^= splitmix64(&y);
    for (int k = 0; k < 4; k++) {
        rng->s[k] = splitmix64(&x);
    }
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0) {
        rng->s[0] = 1; /* the all-zero state is the one fixed point */
    }
}

/* The generator's step, inlined where it is hot (the exported function
 * cannot be: a shared library's own calls to it go through the PLT). */
static inline uint64_t rng_next(iid_rng *rng) {
    uint64_t *s = rng->s;
    const uint64_t result = rotl64(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

uint64_t iid_rng_next(iid_rng *rng) {
    return rng_next(rng);
}

/* Lemire's multiply-and-reject method: unbiased, and almost never divides. */
uint64_t iid_rng_below(iid_rng *rng, uint64_t bound) {
    __extension__ typedef unsigned __int128 u128;
    uint64_t x = rng_next(rng);
    u128 m = (u128)x * (u128)bound;
    uint64_t low = (uint64_t)m;
    if (low < bound) {
        uint64_t threshold = (0 - bound) % bound;
        while (low < threshold) {
            x = rng_next(rng);
            m = (u128)x * (u128)bound;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* An index below bound (< 2^32) from a 32-bit draw, by the same
 * multiply-and-reject method; a rejected draw (probability below
 * bound / 2^32) is replaced by the low half of a fresh output. */
static inline uint32_t below32(iid_rng *rng, uint32_t draw, uint32_t bound) {
    uint64_t m = (uint64_t)draw * bound;
    if ((uint32_t)m < bound) {
        uint32_t threshold = (0u - bound) % bound;
        while ((uint32_t)m < threshold) {
            m = (uint64_t)(uint32_t)rng_next(rng) * bound;
        }
    }
    return (uint32_t)(m >> 32);
}

/* Fisher-Yates.  Below 2^32 elements each 64-bit output gives the draws
 * of two steps (its low half, then its high half). */
void iid_shuffle(uint8_t *data, size_t n, iid_rng *rng) {
    size_t i = n;
    for (; i > 1 && (uint64_t)i > UINT32_MAX; i--) {
        size_t j = (size_t)iid_rng_below(rng, (uint64_t)i);
        uint8_t tmp = data[i - 1];
        data[i - 1] = data[j];
        data[j] = tmp;
    }
    while (i > 2) {
        uint64_t x = rng_next(rng);
        uint32_t j = below32(rng, (uint32_t)x, (uint32_t)i);
        uint8_t tmp = data[i - 1];
        data[i - 1] = data[j];
        data[j] = tmp;
        j = below32(rng, (uint32_t)(x >> 32), (uint32_t)(i - 1));
        tmp = data[i - 2];
        data[i - 2] = data[j];
        data[j] = tmp;
        i -= 2;
    }
    if (i == 2) {
        uint32_t j = below32(rng, (uint32_t)rng_next(rng), 2);
        uint8_t tmp = data[1];
        data[1] = data[j];
        data[j] = tmp;
    }
}

void iid_shuffle_copy(const uint8_t *src, uint8_t *dst, size_t n,
                      uint64_t seed, uint64_t stream) {
    iid_rng rng;
    memcpy(dst, src, n);
    iid_rng_seed(&rng, seed, stream);
    iid_shuffle(dst, n, &rng);
}

/* ------------------------------------------------------------------ */
/* Statistics.                                                         */
/* ------------------------------------------------------------------ */

static const unsigned LAGS[5] = {1, 2, 8, 16, 32};

/* §5.1.1: largest distance of a running sum from its expectation,
 * max |S_i - i mean| = max |n S_i - i T| / n with T the total (the same for
 * every shuffle, so the caller's): exact in integers, one table lookup and
 * one addition per sample (n x - T for each value x), and four maxima and
 * minima kept apart so the comparisons stay off the chain of additions. */
static double excursion(const uint8_t *x, size_t n, int64_t total) {
    int64_t step[256];
    for (int v = 0; v < 256; v++) {
        step[v] = (int64_t)n * v - total;
    }
    int64_t d = 0, high[4] = {0, 0, 0, 0}, low[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (size_t k = 0; k < 4; k++) {
            d += step[x[i + k]];
            high[k] = d > high[k] ? d : high[k];
            low[k] = d < low[k] ? d : low[k];
        }
    }
    for (; i < n; i++) {
        d += step[x[i]];
        high[0] = d > high[0] ? d : high[0];
        low[0] = d < low[0] ? d : low[0];
    }
    int64_t top = 0;
    for (int k = 0; k < 4; k++) {
        top = high[k] > top ? high[k] : top;
        top = -low[k] > top ? -low[k] : top;
    }
    return (double)top / (double)n;
}

/* The longest run of ones in a stream of 64-bit words (bit k of word w is
 * position 64 w + k; bits past the end are zero): within a word by
 * shifting it onto itself until nothing is left, across words by carrying
 * the run at the top of one word into the bottom of the next. */
typedef struct {
    uint64_t best, carry;
} ones_run;

static inline void ones_run_add(ones_run *r, uint64_t word) {
    if (word == ~(uint64_t)0) {
        r->carry += 64;
        return;
    }
    uint64_t bottom = (uint64_t)__builtin_ctzll(~word);
    if (r->carry + bottom > r->best) {
        r->best = r->carry + bottom;
    }
    uint64_t inside = 0;
    for (uint64_t y = word; y != 0; y &= y >> 1) {
        inside++;
    }
    if (inside > r->best) {
        r->best = inside;
    }
    r->carry = (uint64_t)__builtin_clzll(~word);
}

static inline uint64_t ones_run_end(const ones_run *r) {
    return r->carry > r->best ? r->carry : r->best;
}

/* The longest run of equal flags, flag(i) = bit i of the stream made by
 * next_word(ctx, w) for w = 0, 1, ... over `count` flags. */
static uint64_t longest_equal_run(uint64_t (*next_word)(const void *, size_t), const void *ctx,
                                  size_t count) {
    ones_run ones = {0, 0}, zeros = {0, 0};
    size_t words = (count + 63) / 64;
    for (size_t w = 0; w < words; w++) {
        uint64_t valid = w + 1 < words || count % 64 == 0 ? ~(uint64_t)0
                                                           : (((uint64_t)1 << (count % 64)) - 1);
        uint64_t bits = next_word(ctx, w);
        ones_run_add(&ones, bits & valid);
        ones_run_add(&zeros, ~bits & valid);
    }
    uint64_t a = ones_run_end(&ones), b = ones_run_end(&zeros);
    return a > b ? a : b;
}

typedef struct {
    const uint8_t *s;
    size_t count;
    unsigned threshold;
} flag_source;

/* Bits of s[i] <= s[i+1] for i in 64 w .. 64 w + 63 (below count). */
static uint64_t rising_word(const void *arg, size_t w) {
    const flag_source *f = arg;
    size_t base = 64 * w;
    uint64_t bits = 0;
#if defined(__SSE2__)
    if (base + 65 <= f->count + 1) { /* s[base .. base + 64] exist */
        for (int q = 0; q < 4; q++) {
            __m128i a = _mm_loadu_si128((const __m128i *)(f->s + base + 16 * q));
            __m128i b = _mm_loadu_si128((const __m128i *)(f->s + base + 16 * q + 1));
            uint64_t m = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(a, b), b));
            bits |= m << (16 * q);
        }
        return bits;
    }
#endif
    for (size_t k = 0; k < 64 && base + k < f->count; k++) {
        bits |= (uint64_t)(f->s[base + k] <= f->s[base + k + 1]) << k;
    }
    return bits;
}

/* Bits of s[i] >= threshold for i in 64 w .. 64 w + 63 (below count). */
static uint64_t above_word(const void *arg, size_t w) {
    const flag_source *f = arg;
    size_t base = 64 * w;
    uint64_t bits = 0;
#if defined(__SSE2__)
    if (base + 64 <= f->count && f->threshold <= 255) {
        __m128i t = _mm_set1_epi8((char)f->threshold);
        for (int q = 0; q < 4; q++) {
            __m128i a = _mm_loadu_si128((const __m128i *)(f->s + base + 16 * q));
            uint64_t m = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(a, t), a));
            bits |= m << (16 * q);
        }
        return bits;
    }
#endif
    for (size_t k = 0; k < 64 && base + k < f->count; k++) {
        bits |= (uint64_t)(f->s[base + k] >= f->threshold) << k;
    }
    return bits;
}

/* Number of positions i in 1..count-1 where flag(i) != flag(i-1), and the
 * number of i in 0..count-1 with flag(i) set, for flag(i) = s[i] <= s[i+1].
 * Written without a loop-carried dependency so the compiler vectorises it. */
static void directional_counts(const uint8_t *s, size_t count, uint64_t *changes,
                               uint64_t *plus) {
    uint64_t c = 0, p = (uint64_t)(s[0] <= s[1]);
    for (size_t i = 1; i < count; i++) {
        unsigned up = s[i] <= s[i + 1];
        unsigned before = s[i - 1] <= s[i];
        p += up;
        c += up ^ before;
    }
    *changes = c;
    *plus = p;
}

/* §5.1.2-§5.1.4 on s[0..m): the sequence of +1 (s[i] <= s[i+1]) and
 * -1 (s[i] > s[i+1]); its number of runs, longest run, and the larger of
 * the number of +1s and -1s.  The longest run is only computed when asked. */
static void directional(const uint8_t *s, size_t m, int want_longest, double *runs,
                        double *longest, double *inc_dec) {
    if (m < 2) {
        *runs = 0.0;
        *longest = 0.0;
        *inc_dec = 0.0;
        return;
    }
    size_t count = m - 1; /* length of the +1/-1 sequence */
    uint64_t changes, plus;
    directional_counts(s, count, &changes, &plus);
    uint64_t minus = (uint64_t)count - plus;
    *runs = (double)(changes + 1);
    *inc_dec = (double)(plus > minus ? plus : minus);
    *longest = 0.0;
    if (want_longest) {
        flag_source f = {s, count, 0};
        *longest = (double)longest_equal_run(rising_word, &f, count);
    }
}

/* §5.1.5-§5.1.6: runs of samples at or above the median (s[i] >= threshold)
 * and below it.  The longest run is only computed when asked. */
static void median_runs(const uint8_t *s, size_t m, unsigned threshold, int want_longest,
                        double *runs, double *longest) {
    if (m < 1) {
        *runs = 0.0;
        *longest = 0.0;
        return;
    }
    uint64_t changes = 0;
    for (size_t i = 1; i < m; i++) {
        changes += (unsigned)(s[i] >= threshold) ^ (unsigned)(s[i - 1] >= threshold);
    }
    *runs = (double)(changes + 1);
    *longest = 0.0;
    if (want_longest) {
        flag_source f = {s, m, threshold};
        *longest = (double)longest_equal_run(above_word, &f, m);
    }
}

/* §5.1.7-§5.1.8: walk s, starting a window after each collision; a window
 * ends at the first value already seen in it, and its length counts that
 * value.  Reports the mean and the largest window length. */
static void collisions(const uint8_t *s, size_t m, double *average, double *maximum) {
    uint32_t seen[256];
    uint32_t window = 0;
    uint64_t total = 0, count = 0, best = 0;
    memset(seen, 0, sizeof seen);
    size_t i = 0;
    while (i < m) {
        window++;
        size_t j = i;
        int hit = 0;
        while (j < m) {
            if (seen[s[j]] == window) {
                hit = 1;
                break;
            }
            seen[s[j]] = window;
            j++;
        }
        if (!hit) {
            break;
        }
        uint64_t len = (uint64_t)(j - i + 1);
        total += len;
        count++;
        if (len > best) {
            best = len;
        }
        i = j + 1;
    }
    *average = count ? (double)total / (double)count : 0.0;
    *maximum = (double)best;
}

/* §5.1.9: number of i with s[i] == s[i+p]. */
static double periodicity(const uint8_t *s, size_t m, size_t p) {
    uint64_t t = 0;
    if (m <= p) {
        return 0.0;
    }
    for (size_t i = 0; i < m - p; i++) {
        t += (uint64_t)(s[i] == s[i + p]);
    }
    return (double)t;
}

/* §5.1.10: sum of s[i] * s[i+p]. */
static double covariance(const uint8_t *s, size_t m, size_t p) {
    uint64_t t = 0;
    if (m <= p) {
        return 0.0;
    }
    for (size_t i = 0; i < m - p; i++) {
        t += (uint32_t)s[i] * (uint32_t)s[i + p];
    }
    return (double)t;
}

static int any_active(const uint8_t *active, int from, int to) {
    for (int i = from; i <= to; i++) {
        if (active[i]) {
            return 1;
        }
    }
    return 0;
}

int iid_statistics(const uint8_t *raw, size_t n, const iid_params *params,
                   const uint8_t *active, double *out) {
    return iid_statistics_into(raw, n, params, active, out, NULL);
}

int iid_statistics_into(const uint8_t *raw, size_t n, const iid_params *params,
                        const uint8_t *active, double *out, uint8_t *scratch) {
    if (n < 2) {
        return -1;
    }
    const uint8_t *seq = raw;   /* directional, periodicity, covariance */
    const uint8_t *coll = raw;  /* collisions */
    size_t m = n, mc = n;
    uint8_t *conv1 = NULL, *conv2 = NULL, *owned = NULL;

    if (params->binary) {
        /* §5.1 Conversion I (ones per 8-bit block) and Conversion II (the
         * block read as a big-endian byte); a short last block is padded
         * with zeros. */
        size_t blocks = (n + 7) / 8;
        if (scratch == NULL) {
            scratch = owned = malloc(2 * blocks);
            if (owned == NULL) {
                return -2;
            }
        }
        conv1 = scratch;
        conv2 = scratch + blocks;
        for (size_t b = 0; b < blocks; b++) {
            unsigned ones = 0, value = 0;
            for (size_t k = 0; k < 8; k++) {
                size_t i = b * 8 + k;
                unsigned bit = i < n ? params->bit[raw[i]] : 0;
                ones += bit;
                value = (value << 1) | bit;
            }
            conv1[b] = (uint8_t)ones;
            conv2[b] = (uint8_t)value;
        }
        seq = conv1;
        coll = conv2;
        m = blocks;
        mc = blocks;
    }

    if (active[IID_EXCURSION]) {
        out[IID_EXCURSION] = excursion(raw, n, params->total);
    }
    if (any_active(active, IID_NUM_DIRECTIONAL_RUNS, IID_NUM_INCREASES_DECREASES)) {
        double runs, longest, inc_dec;
        directional(seq, m, active[IID_LEN_DIRECTIONAL_RUNS], &runs, &longest, &inc_dec);
        if (active[IID_NUM_DIRECTIONAL_RUNS]) {
            out[IID_NUM_DIRECTIONAL_RUNS] = runs;
        }
        if (active[IID_LEN_DIRECTIONAL_RUNS]) {
            out[IID_LEN_DIRECTIONAL_RUNS] = longest;
        }
        if (active[IID_NUM_INCREASES_DECREASES]) {
            out[IID_NUM_INCREASES_DECREASES] = inc_dec;
        }
    }
    if (any_active(active, IID_NUM_RUNS_MEDIAN, IID_LEN_RUNS_MEDIAN)) {
        double runs, longest;
        median_runs(raw, n, params->median_threshold, active[IID_LEN_RUNS_MEDIAN], &runs,
                    &longest);
        if (active[IID_NUM_RUNS_MEDIAN]) {
            out[IID_NUM_RUNS_MEDIAN] = runs;
        }
        if (active[IID_LEN_RUNS_MEDIAN]) {
            out[IID_LEN_RUNS_MEDIAN] = longest;
        }
    }
    if (any_active(active, IID_AVG_COLLISION, IID_MAX_COLLISION)) {
        double average, maximum;
        collisions(coll, mc, &average, &maximum);
        if (active[IID_AVG_COLLISION]) {
            out[IID_AVG_COLLISION] = average;
        }
        if (active[IID_MAX_COLLISION]) {
            out[IID_MAX_COLLISION] = maximum;
        }
    }
    for (int k = 0; k < 5; k++) {
        if (active[IID_PERIODICITY_1 + k]) {
            out[IID_PERIODICITY_1 + k] = periodicity(seq, m, LAGS[k]);
        }
        if (active[IID_COVARIANCE_1 + k]) {
            out[IID_COVARIANCE_1 + k] = covariance(seq, m, LAGS[k]);
        }
    }
    free(owned);
    return 0;
}

/* ------------------------------------------------------------------ */
/* §5.1.11 input text.                                                 */
/* ------------------------------------------------------------------ */

size_t iid_decimal_text(const uint8_t *raw, size_t n, char *out) {
    char *p = out;
    for (size_t i = 0; i < n; i++) {
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
        *p++ = ' ';
    }
    if (p > out) {
        p--; /* no trailing space */
    }
    return (size_t)(p - out);
}

int64_t iid_allocate_bins(const double *expected, const int64_t *order, size_t cells,
                          int64_t *bin_of, double *bin_expected) {
    int64_t bins = 0;
    double current = 0.0;
    for (size_t k = 0; k < cells; k++) {
        if (current >= 5.0) {
            bin_expected[bins++] = current;
            current = 0.0;
        }
        bin_of[order[k]] = bins;
        current += expected[order[k]];
    }
    if (bins > 0 && current < 5.0) {
        for (size_t c = 0; c < cells; c++) {
            if (bin_of[c] == bins) {
                bin_of[c] = bins - 1;
            }
        }
        bin_expected[bins - 1] += current;
    } else {
        bin_expected[bins++] = current;
    }
    return bins;
}
