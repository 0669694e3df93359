/* The four prediction estimators of SP 800-90B: MultiMCW (§6.3.7), lag
 * (§6.3.8), MultiMMC (§6.3.9) and LZ78Y (§6.3.10).
 *
 * Each kernel returns N (predictions made), C (correct predictions) and the
 * longest run of correct predictions; the global and local bounds (§6.3.7
 * steps 5-7) are computed from these in Python.  Conventions follow the
 * standard's pseudocode: ties on the scoreboard go to the predictor checked
 * last (">="), a most-common-in-window tie goes to the most recent value, and
 * a tie between (x, y) counts goes to the larger y.
 *
 * Binary inputs use dense count tables indexed by the context bits; larger
 * alphabets use open-addressing hash tables keyed by the context (up to 16
 * symbols, most recent first).
 */
/* madvise and posix_memalign, for sp_table_alloc */
#define _DEFAULT_SOURCE
#include "sp80090b.h"
#include "tables.h"

#include <stdlib.h>
#include <string.h>

#define MCW_WINDOWS 4
#define LAG_DEPTH 128
#define MMC_DEPTH 16
#define MMC_MAX_ENTRIES 100000
#define LZ_DEPTH 16
#define LZ_MAX_DICTIONARY 65536
#define PREFETCH_STEPS 6
#define LZ_PREFETCH 4
#define LZ_PREFETCH_ORDERS 4

typedef struct {
    int64_t correct, run, longest;
} tally;

static inline void tally_add(tally *t, int hit)
{
    if (hit) {
        t->correct++;
        if (++t->run > t->longest) t->longest = t->run;
    } else {
        t->run = 0;
    }
}

static void tally_store(const tally *t, int64_t predictions, sp_predictor_result *out)
{
    out->predictions = predictions;
    out->correct = t->correct;
    out->longest_run = t->longest;
}

/* Every symbol below the alphabet size (the tables are sized by it). */
static int symbols_fit(const uint8_t *s, int64_t n, int32_t alphabet)
{
    uint8_t top = 0;
    for (int64_t i = 0; i < n; i++) top = s[i] > top ? s[i] : top;
    return n == 0 || top < alphabet;
}

/* ---------------------------------------------------------------- MultiMCW */

/* Binary samples: the windows have odd lengths, so the most common value is
 * the majority, with no ties; a count of ones per window is all it takes. */
static void multi_mcw_binary(const uint8_t *s, int64_t n, sp_predictor_result *out)
{
    static const int64_t W[MCW_WINDOWS] = {63, 255, 1023, 4095};
    int64_t ones[MCW_WINDOWS] = {0};
    int64_t score[MCW_WINDOWS] = {0};
    int64_t top = 0;
    int winner = 0;
    tally t = {0, 0, 0};

    for (int j = 0; j < MCW_WINDOWS; j++)
        for (int64_t i = 0; i < W[j]; i++) ones[j] += s[i] & 1u;
    for (int64_t i = W[0]; i < n; i++) {
        const int64_t x = s[i] & 1u;
        int64_t freq[MCW_WINDOWS];
        for (int j = 0; j < MCW_WINDOWS; j++) freq[j] = 2 * ones[j] > W[j];
        tally_add(&t, freq[winner] == x);
        for (int j = 0; j < MCW_WINDOWS; j++) {
            if (i >= W[j]) {
                int64_t hit = freq[j] == x;
                int64_t sc = score[j] + hit;
                int lead = hit && sc >= top;
                score[j] = sc;
                winner = lead ? j : winner;
                top = lead ? sc : top;
                ones[j] += x - (s[i - W[j]] & 1u);
            }
        }
    }
    tally_store(&t, n - W[0], out);
}

int sp_multi_mcw(const uint8_t *s, int64_t n, int32_t alphabet, sp_predictor_result *out)
{
    static const int64_t W[MCW_WINDOWS] = {63, 255, 1023, 4095};
    int32_t cnt[MCW_WINDOWS][256];
    int64_t last[MCW_WINDOWS][256];
    int32_t maxc[MCW_WINDOWS] = {0};
    uint8_t freq[MCW_WINDOWS] = {0};
    int64_t score[MCW_WINDOWS] = {0};
    int winner = 0;
    tally t = {0, 0, 0};

    if (alphabet < 1 || alphabet > 256 || n <= W[MCW_WINDOWS - 1] || !symbols_fit(s, n, alphabet))
        return SP_ERR_ARGS;
    if (alphabet <= 2) {
        multi_mcw_binary(s, n, out);
        return 0;
    }
    memset(cnt, 0, sizeof cnt);
    memset(last, 0, sizeof last);
    /* Each window starts out holding the first W[j] samples. */
    for (int64_t i = 0; i < W[MCW_WINDOWS - 1]; i++) {
        for (int j = 0; j < MCW_WINDOWS; j++) {
            if (i < W[j]) {
                int32_t c = ++cnt[j][s[i]];
                if (c >= maxc[j]) {
                    maxc[j] = c;
                    freq[j] = s[i];
                }
                last[j][s[i]] = i;
            }
        }
    }
    for (int64_t i = W[0]; i < n; i++) {
        uint8_t x = s[i];
        tally_add(&t, freq[winner] == x);
        for (int j = 0; j < MCW_WINDOWS; j++)
            if (i >= W[j] && freq[j] == x && ++score[j] >= score[winner]) winner = j;
        /* Slide the windows: s[i - W[j]] leaves, s[i] enters. */
        for (int j = 0; j < MCW_WINDOWS; j++) {
            uint8_t old;
            int32_t c;
            if (i < W[j]) continue;
            old = s[i - W[j]];
            cnt[j][old]--;
            c = ++cnt[j][x];
            last[j][x] = i;
            if (old != freq[j]) {
                if (c >= maxc[j]) {
                    maxc[j] = c;
                    freq[j] = x;
                }
            } else {
                /* The mode lost an occurrence: the new mode is the value with the
                 * highest count, ties going to the most recent one. */
                int32_t bc = 0;
                int64_t bp = -1;
                for (int k = 0; k < alphabet; k++) {
                    if (cnt[j][k] > bc || (cnt[j][k] == bc && cnt[j][k] > 0 && last[j][k] > bp)) {
                        bc = cnt[j][k];
                        bp = last[j][k];
                        freq[j] = (uint8_t)k;
                    }
                }
                maxc[j] = bc;
            }
        }
    }
    tally_store(&t, n - W[0], out);
    return 0;
}

/* --------------------------------------------------------------------- Lag */

#define LAG_BLOCK 64

/* The scoreboard leader always holds the highest score, `top`.  After a step
 * the new leader is the largest lag that was correct and now holds the
 * (possibly raised) maximum, which is what updating the scoreboard in lag
 * order with ">=" yields.
 *
 * Steps run in blocks of LAG_BLOCK.  A lag whose score is more than the block
 * length below `top` cannot reach the maximum within the block, so it cannot
 * become the leader there: only the other lags ("candidates") are followed
 * step by step, and the rest get their block's matches added at the end. */
static inline void lag_step(const uint8_t *s, int64_t i, const int32_t *lags, int count,
                            int32_t *score, int32_t *top, int64_t *winner)
{
    const uint8_t x = s[i];
    int32_t mx = -1;
    for (int c = 0; c < count; c++) {
        int32_t d = lags[c];
        if (s[i - d - 1] == x) {
            int32_t sc = ++score[d];
            if (sc > mx) mx = sc;
        }
    }
    if (mx >= *top) {
        *top = mx;
        for (int c = count - 1; c >= 0; c--) {
            int32_t d = lags[c];
            if (s[i - d - 1] == x && score[d] == mx) {
                *winner = d;
                break;
            }
        }
    }
}

/* Loops that count bits with popcount get a second copy compiled for the
 * popcnt instruction (outside the baseline x86-64 target), picked at load
 * time where the processor has it. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#define POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define POPCNT_CLONES
#endif

/* The 64 bits of a packed bitstring (most significant first) from bit q on. */
static inline uint64_t packed_bits_at(const uint64_t *W, int64_t q)
{
    int64_t w = q >> 6;
    unsigned r = (unsigned)(q & 63);
    return r == 0 ? W[w] : (W[w] << r) | (W[w + 1] >> (64 - r));
}

/* Binary lag after the warm-up (steps from i on, i >= LAG_DEPTH): as the
 * blocks of sp_lag, with a block's matches of every lag taken 64 at a time
 * from the packed bits, ~(bits ^ bits d + 1 back); step i + k is bit 63 - k. */
POPCNT_CLONES static int lag_binary(const uint8_t *s, int64_t n, int64_t i, int32_t *score, int32_t *top, int64_t *winner,
                      tally *t)
{
    const int64_t words = (n + 63) / 64 + 2;
    uint64_t *W = calloc((size_t)words, sizeof(uint64_t));
    uint64_t hw[LAG_DEPTH];
    int32_t cand[LAG_DEPTH];
    if (W == NULL) return SP_ERR_NOMEM;
    for (int64_t w = 0; w * 64 < n; w++) {
        const uint8_t *b = s + w * 64;
        const int64_t len = n - w * 64 < 64 ? n - w * 64 : 64;
        uint64_t acc = 0;
        for (int64_t k = 0; k < len; k++) acc |= (uint64_t)(b[k] & 1u) << (63 - k);
        W[w] = acc;
    }
    while (i < n) {
        const int64_t len = n - i < LAG_BLOCK ? n - i : LAG_BLOCK;
        const uint64_t keep = len == 64 ? ~0ULL : ~(~0ULL >> len);
        const uint64_t cur = packed_bits_at(W, i);
        int count = 0;
        for (int d = 0; d < LAG_DEPTH; d++) {
            const uint64_t eq = ~(cur ^ packed_bits_at(W, i - d - 1)) & keep;
            if (score[d] + len >= *top) {
                hw[d] = eq;
                cand[count++] = d;
            } else {
                score[d] += __builtin_popcountll(eq);
            }
        }
        for (int64_t k = 0; k < len; k++) {
            const int bit = 63 - (int)k;
            tally_add(t, (int)((hw[*winner] >> bit) & 1u));
            for (int c = 0; c < count; c++) {
                const int d = cand[c];
                if ((hw[d] >> bit) & 1u) {
                    int32_t sc = ++score[d];
                    if (sc >= *top) {
                        *top = sc;
                        *winner = d;
                    }
                }
            }
        }
        i += len;
    }
    free(W);
    return 0;
}

int sp_lag(const uint8_t *s, int64_t n, int32_t alphabet, sp_predictor_result *out)
{
    int32_t score[LAG_DEPTH] = {0};
    int32_t all[LAG_DEPTH], cand[LAG_DEPTH];
    uint8_t followed[LAG_DEPTH];
    int32_t top = 0;
    int64_t winner = 0, i;
    tally t = {0, 0, 0};

    if (alphabet < 1 || alphabet > 256 || n < 2 || !symbols_fit(s, n, alphabet)) return SP_ERR_ARGS;
    for (int d = 0; d < LAG_DEPTH; d++) all[d] = d;
    /* Warm-up: step i can look back only i samples. */
    for (i = 1; i < n && i < LAG_DEPTH; i++) {
        tally_add(&t, s[i - winner - 1] == s[i]);
        lag_step(s, i, all, (int)i, score, &top, &winner);
    }
    if (alphabet <= 2 && i < n) {
        int rc = lag_binary(s, n, i, score, &top, &winner, &t);
        if (rc != 0) return rc;
        i = n;
    }
    while (i < n) {
        int64_t end = i + LAG_BLOCK < n ? i + LAG_BLOCK : n;
        int32_t len = (int32_t)(end - i);
        int count = 0;
        for (int d = 0; d < LAG_DEPTH; d++) {
            followed[d] = score[d] + len >= top;
            if (followed[d]) cand[count++] = d;
        }
        for (int64_t k = i; k < end; k++) {
            tally_add(&t, s[k - winner - 1] == s[k]);
            lag_step(s, k, cand, count, score, &top, &winner);
        }
        for (int d = 0; d < LAG_DEPTH; d++) {
            if (!followed[d]) {
                const uint8_t *cur = s + i, *back = s + i - d - 1;
                int32_t hits = 0;
                for (int32_t k = 0; k < len; k++) hits += cur[k] == back[k];
                score[d] += hits;
            }
        }
        i = end;
    }
    tally_store(&t, n - 1, out);
    return 0;
}

/* ------------------------------------------------------------ context models */

/* Counts of (node, y) pairs: a 32-bit key (node < 2^24, y) and a 32-bit count
 * packed in one 8-byte slot (0 = empty), linear probing, half load. */
typedef struct {
    uint64_t *slots;
    int64_t cap, size;
} ptab;

static int pt_init(ptab *t, int64_t cap)
{
    t->cap = cap;
    t->size = 0;
    t->slots = sp_table_alloc(sizeof(uint64_t) * (size_t)cap, 1);
    return t->slots == NULL ? SP_ERR_NOMEM : 0;
}

static inline int64_t pt_slot(const ptab *t, uint32_t key)
{
    const uint64_t tag = (uint64_t)key + 1;
    int64_t mask = t->cap - 1;
    int64_t i = (int64_t)(((uint64_t)key * 0x9E3779B97F4A7C15ULL) >> 20 & (uint64_t)mask);
    while (t->slots[i] != 0 && (t->slots[i] >> 32) != tag) i = (i + 1) & mask;
    return i;
}

static int pt_grow(ptab *t)
{
    ptab bigger;
    if (pt_init(&bigger, t->cap * 2) != 0) return SP_ERR_NOMEM;
    for (int64_t i = 0; i < t->cap; i++) {
        if (t->slots[i] != 0) {
            uint32_t key = (uint32_t)((t->slots[i] >> 32) - 1);
            bigger.slots[pt_slot(&bigger, key)] = t->slots[i];
        }
    }
    bigger.size = t->size;
    free(t->slots);
    *t = bigger;
    return 0;
}

/* A context model: contexts (one order) -> node; (node, y) -> count; each
 * node keeps its current prediction, the y with the largest count (ties to
 * the larger y).  A node is one record: its best count and symbol, then, for
 * alphabets of at most DENSE_ALPHABET symbols or orders with few possible
 * contexts, the counts of every symbol, so a lookup touches one or two cache
 * lines.  Otherwise a node that has seen one y only needs no more than its
 * best count (most long contexts are seen once); the counts of a node with
 * two or more live in a pair table.
 *
 * Orders with few possible contexts number them directly.  The others keep
 * each node's context (lo, hi) in its record and index the records with an
 * open-addressing table of 8-byte slots (node + 1, and 32 hash bits to skip
 * most key comparisons), linear probing, at most half full.  A bit filter
 * (4 bits per slot, from other hash bits) answers most lookups of absent
 * contexts without touching the table: long contexts are mostly absent. */
#define DENSE_ALPHABET 16
#define MAX_NODES (1 << 24)

typedef struct {
    int32_t best_count;
    uint16_t best_y;
    uint16_t multi; /* pair-table counts: more than one y seen */
} node_rec;

typedef struct {
    uint64_t lo, hi;
} ctx_key;

typedef struct {
    uint64_t *slots; /* hashed orders: (hash >> 32) << 32 | (node + 1), 0 = empty */
    uint64_t *filter;
    int64_t cap;
    ptab pair;
    int32_t k;
    int dense_counts;
    int direct; /* few possible contexts: the node is the context index */
    uint8_t *recs;
    size_t stride, key_off;
    int64_t nodes, node_cap;
} model;

/* Contexts of an order with at most DENSE_CONTEXTS possible values are
 * numbered directly (sum of sym_t k^t, most recent symbol t = 0). */
#define DENSE_CONTEXTS 65536

static inline node_rec *model_rec(const model *m, int64_t node)
{
    return (node_rec *)(m->recs + (size_t)node * m->stride);
}

static inline int32_t *rec_counts(node_rec *r)
{
    return (int32_t *)(r + 1);
}

static inline ctx_key *rec_key(const model *m, int64_t node)
{
    return (ctx_key *)(m->recs + (size_t)node * m->stride + m->key_off);
}

static inline uint64_t ctx_hash(uint64_t lo, uint64_t hi)
{
    uint64_t h = lo * 0x9E3779B97F4A7C15ULL ^ (hi + 0x632BE59BD9B4E019ULL) * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 31;
    h *= 0xD6E8FEB86659FD93ULL;
    h ^= h >> 32;
    return h;
}

/* filter bit for a hash: 4 * cap bits, from the hash's middle bits */
static inline uint64_t filter_bit(const model *m, uint64_t hash)
{
    return (hash >> 20) & (uint64_t)(4 * m->cap - 1);
}

static int index_init(model *m, int64_t cap)
{
    m->cap = cap;
    m->slots = sp_table_alloc(sizeof(uint64_t) * (size_t)cap, 1);
    m->filter = calloc((size_t)(cap / 16 + 1), sizeof(uint64_t));
    return m->slots == NULL || m->filter == NULL ? SP_ERR_NOMEM : 0;
}

/* Place node (its context hashing to hash) in an empty slot. */
static inline void index_place(model *m, uint64_t hash, int64_t node)
{
    const int64_t mask = m->cap - 1;
    int64_t i = (int64_t)(hash & (uint64_t)mask);
    uint64_t bit = filter_bit(m, hash);
    while (m->slots[i] != 0) i = (i + 1) & mask;
    m->slots[i] = (hash >> 32) << 32 | (uint64_t)(node + 1);
    m->filter[bit >> 6] |= 1ULL << (bit & 63);
}

static int index_grow(model *m)
{
    uint64_t *slots = m->slots, *filter = m->filter;
    int rc = index_init(m, m->cap * 2);
    free(slots);
    free(filter);
    if (rc != 0) return rc;
    for (int64_t node = 0; node < m->nodes; node++) {
        const ctx_key *key = rec_key(m, node);
        index_place(m, ctx_hash(key->lo, key->hi), node);
    }
    return 0;
}

/* expect: the number of nodes a hashed order is sized for up front (it grows past it) */
static int model_init(model *m, int32_t k, int order, int64_t expect)
{
    int64_t contexts = 1, cap = 64;
    memset(m, 0, sizeof *m);
    m->k = k;
    for (int t = 0; t < order && contexts <= DENSE_CONTEXTS; t++) contexts *= k;
    m->direct = contexts <= DENSE_CONTEXTS;
    if (pt_init(&m->pair, 64) != 0) return SP_ERR_NOMEM;
    /* dense counts: small alphabets, or few possible contexts (<= 2^21 cells) */
    m->dense_counts = k <= DENSE_ALPHABET || (m->direct && contexts * k <= (1 << 21));
    m->key_off = sizeof(node_rec) + (m->dense_counts ? sizeof(int32_t) * (size_t)k : 0);
    m->key_off = (m->key_off + 7) & ~(size_t)7;
    m->stride = m->direct ? sizeof(node_rec) + (m->dense_counts ? sizeof(int32_t) * (size_t)k : 0)
                          : m->key_off + sizeof(ctx_key);
    if (m->direct) {
        /* one zeroed record per possible context (best_count 0: unseen), so a
         * lookup is one memory access, not an index and then a record */
        m->node_cap = contexts;
        m->recs = calloc((size_t)contexts, m->stride);
        return m->recs == NULL ? SP_ERR_NOMEM : 0;
    }
    expect = expect < MAX_NODES ? expect : MAX_NODES;
    while (cap < 2 * expect) cap *= 2;
    m->node_cap = expect > 32 ? expect : 32;
    m->recs = malloc(m->stride * (size_t)m->node_cap);
    if (m->recs == NULL) return SP_ERR_NOMEM;
    return index_init(m, cap);
}

static void model_free(model *m)
{
    free(m->slots);
    free(m->filter);
    free(m->pair.slots);
    free(m->recs);
    m->slots = NULL;
    m->filter = NULL;
    m->pair.slots = NULL;
    m->recs = NULL;
}

/* Where a hashed order's lookup of (lo, hi) starts: prefetch it ahead. */
static inline const uint64_t *model_probe_start(const model *m, uint64_t lo, uint64_t hi)
{
    return &m->slots[ctx_hash(lo, hi) & (uint64_t)(m->cap - 1)];
}

static inline int64_t index_find(const model *m, uint64_t lo, uint64_t hi, uint64_t hash)
{
    const int64_t mask = m->cap - 1;
    const uint64_t tag = hash >> 32;
    uint64_t bit = filter_bit(m, hash), slot;
    int64_t i = (int64_t)(hash & (uint64_t)mask);
    if (!((m->filter[bit >> 6] >> (bit & 63)) & 1u)) return -1;
    while ((slot = m->slots[i]) != 0) {
        if ((slot >> 32) == tag) {
            int64_t node = (int64_t)(uint32_t)slot - 1;
            const ctx_key *key = rec_key(m, node);
            if (key->lo == lo && key->hi == hi) return node;
        }
        i = (i + 1) & mask;
    }
    return -1;
}

/* Node of a context (key lo/hi, dense index idx), or -1. */
static inline int64_t model_find(const model *m, uint64_t lo, uint64_t hi, int64_t idx)
{
    if (m->direct) return model_rec(m, idx)->best_count > 0 ? idx : -1;
    return index_find(m, lo, hi, ctx_hash(lo, hi));
}

/* Node for the context, created when missing; negative on error. */
static int64_t model_node(model *m, uint64_t lo, uint64_t hi, int64_t idx)
{
    uint64_t hash;
    int64_t node;
    node_rec *r;
    ctx_key *key;
    if (m->direct) return idx;
    hash = ctx_hash(lo, hi);
    node = index_find(m, lo, hi, hash);
    if (node >= 0) return node;
    if (m->nodes >= MAX_NODES) return SP_ERR_NOMEM;
    if (m->nodes == m->node_cap) {
        int64_t cap = m->node_cap * 2;
        uint8_t *recs = realloc(m->recs, m->stride * (size_t)cap);
        if (recs == NULL) return SP_ERR_NOMEM;
        m->recs = recs;
        m->node_cap = cap;
    }
    if (2 * (m->nodes + 1) > m->cap && index_grow(m) != 0) return SP_ERR_NOMEM;
    node = m->nodes++;
    r = model_rec(m, node);
    memset(r, 0, m->key_off);
    key = rec_key(m, node);
    key->lo = lo;
    key->hi = hi;
    index_place(m, hash, node);
    return node;
}

#define PAIR_ABSENT (-1)
#define PAIR_NOMEM (-2)

/* The pair-table slot of (node, y): a new entry when absent and allow_new
 * (count 0, growing the table first), else PAIR_ABSENT; PAIR_NOMEM. */
static inline int64_t pair_slot(model *m, int64_t node, uint8_t y, int allow_new)
{
    uint32_t key = ((uint32_t)node << 8) | y;
    int64_t slot = pt_slot(&m->pair, key);
    if (m->pair.slots[slot] != 0) return slot;
    if (!allow_new) return PAIR_ABSENT;
    if (2 * (m->pair.size + 1) > m->pair.cap) {
        if (pt_grow(&m->pair) != 0) return PAIR_NOMEM;
        slot = pt_slot(&m->pair, key);
    }
    m->pair.slots[slot] = ((uint64_t)key + 1) << 32;
    m->pair.size++;
    return slot;
}

/* Count y after the node's context.  An unseen (node, y) is created only when
 * allow_new; returns 1 when it was created, 0 when not, negative on error. */
static inline int model_count(model *m, int64_t node, uint8_t y, int allow_new)
{
    node_rec *r = model_rec(m, node);
    int32_t c;
    int created = 0;
    if (m->dense_counts) {
        int32_t *cell = rec_counts(r) + y;
        if (*cell > 0) {
            c = ++*cell;
        } else if (allow_new) {
            c = *cell = 1;
            created = 1;
        } else {
            return 0;
        }
    } else if (!r->multi && (r->best_count == 0 || r->best_y == y)) {
        /* the node's only y (or its first): its count is the best count */
        if (r->best_count == 0 && !allow_new) return 0;
        created = r->best_count == 0;
        c = r->best_count + 1;
    } else {
        int64_t slot;
        if (!r->multi) {
            /* a second y: the first one's count moves to the pair table */
            if (!allow_new) return 0;
            slot = pair_slot(m, node, (uint8_t)r->best_y, 1);
            if (slot == PAIR_NOMEM) return SP_ERR_NOMEM;
            m->pair.slots[slot] += (uint32_t)r->best_count;
            r->multi = 1;
        }
        slot = pair_slot(m, node, y, allow_new);
        if (slot == PAIR_NOMEM) return SP_ERR_NOMEM;
        if (slot == PAIR_ABSENT) return 0;
        created = (m->pair.slots[slot] & 0xFFFFFFFFu) == 0;
        c = (int32_t)(++m->pair.slots[slot] & 0xFFFFFFFFu);
    }
    if (c > r->best_count || (c == r->best_count && y > r->best_y)) {
        r->best_count = c;
        r->best_y = y;
    }
    return created;
}

/* Context of `len` symbols ending at s[end - 1], most recent symbol in the
 * low byte of lo; symbols 9..16 back go to hi. */
static inline void context_key(const uint8_t *s, int64_t end, int len, int32_t alphabet, uint64_t *lo,
                               uint64_t *hi, int64_t *idx)
{
    uint64_t a = 0, b = 0;
    int64_t x = 0, pw = 1;
    for (int k = 0; k < len; k++) {
        uint64_t sym = s[end - 1 - k];
        if (k < 8) a |= sym << (8 * k);
        else b |= sym << (8 * (k - 8));
        if (pw <= DENSE_CONTEXTS) {
            x += (int64_t)sym * pw;
            pw *= alphabet;
        }
    }
    *lo = a;
    *hi = b;
    *idx = x;
}

/* ---------------------------------------------------------------- MultiMMC */

/* One order of binary MultiMMC over steps [i, end): tab[context] holds the
 * counts of 0 (low half) and 1 (high half) after the context; the hit and
 * found bits of step i go to bit i % 64 of H and F[i / 64 - w0]. */
static inline void mmc_order_steps(const uint8_t *s, int64_t i, int64_t end, uint64_t *tab, uint32_t *hist,
                                   uint32_t mask, uint64_t *H, uint64_t *F, int64_t w0, int64_t *entries,
                                   int capped, int all_seen)
{
    uint32_t h = *hist;
    int64_t ent = *entries;
    while (i < end) {
        const int64_t word_end = (i | 63) + 1 < end ? (i | 63) + 1 : end;
        uint64_t hacc = 0, facc = 0;
        for (; i < word_end; i++) {
            const uint32_t y = s[i] & 1u;
            const uint64_t v = tab[h];
            const uint32_t e0 = (uint32_t)v, e1 = (uint32_t)(v >> 32);
            /* all_seen: every context of the order has been seen, so there is a
             * prediction at every step */
            const uint64_t f = all_seen ? 1 : v != 0;
            /* prediction: the more frequent bit, 1 on a tie */
            hacc |= (f & ((uint32_t)(e1 >= e0) == y)) << (i & 63);
            facc |= f << (i & 63);
            if (!capped) {
                tab[h] = v + ((uint64_t)1 << (32 * y));
            } else {
                const uint32_t ey = y ? e1 : e0;
                if (ey != 0 || ent < MMC_MAX_ENTRIES) {
                    tab[h] = v + ((uint64_t)1 << (32 * y));
                    ent += ey == 0;
                }
            }
            h = ((h << 1) | y) & mask;
        }
        H[((word_end - 1) >> 6) - w0] = hacc;
        F[((word_end - 1) >> 6) - w0] = facc;
    }
    *hist = h;
    *entries = ent;
}

/* Binary MultiMMC.  Order m = d + 1 has 2^m contexts with two counts each; a
 * context's bits are its samples, the most recent in bit 0.  Orders 1..15 hold
 * at most 2^16 (x, y) entries, so only order 16 can reach the 100,000-entry
 * cap; below it, an unseen context implies unseen longer ones.  The orders
 * are therefore independent: over a block of steps, each runs in its own pass
 * (one small table, no cross-order dependencies), leaving one bit per step
 * for "made a prediction" and one for "was right".  A last pass replays the
 * scoreboard from those bits, 64 steps at a time: an order whose score is
 * more than the block length below the top cannot lead within the block, so
 * its hits are only counted.  Blocks of 64 x MMC_BLOCK_WORDS steps keep the bits at
 * 64 KB per order whatever the length of the data. */
#define MMC_BLOCK_WORDS 512
/* the orders up to which a block checks whether every context has been seen */
#define MMC_SEEN_CHECK 12
POPCNT_CLONES static int multi_mmc_binary(const uint8_t *s, int64_t n, sp_predictor_result *out)
{
    const int64_t words = (n + 63) / 64;
    uint64_t *hit_bits = malloc(sizeof(uint64_t) * (size_t)(MMC_DEPTH * MMC_BLOCK_WORDS));
    uint64_t *found_bits = malloc(sizeof(uint64_t) * (size_t)(MMC_DEPTH * MMC_BLOCK_WORDS));
    uint64_t *tables = sp_table_alloc(sizeof(uint64_t) * ((size_t)2 << MMC_DEPTH), 1);
    uint64_t *table[MMC_DEPTH];
    uint32_t hist[MMC_DEPTH];
    int64_t entries[MMC_DEPTH];
    int64_t score[MMC_DEPTH] = {0};
    int64_t top = 0;
    int winner = 0;
    uint32_t all_seen = 0;
    tally t = {0, 0, 0};

    if (hit_bits == NULL || found_bits == NULL || tables == NULL) {
        free(hit_bits);
        free(found_bits);
        free(tables);
        return SP_ERR_NOMEM;
    }
    /* order d's table: one count pair per context (2 << d), laid out one after another */
    for (int d = 0, off = 0; d < MMC_DEPTH; off += 2 << d, d++) {
        table[d] = tables + off;
        hist[d] = 0;
        entries[d] = 0;
        if (d + 2 < n) {
            const uint32_t mask = (2u << d) - 1;
            uint32_t h = 0;
            /* The first (x, y): x = s[0..d], y = s[d+1]. */
            for (int k = 0; k <= d; k++) h = (h << 1) | (s[k] & 1u);
            table[d][h & mask] = (uint64_t)1 << (32 * (s[d + 1] & 1u));
            hist[d] = ((h << 1) | (s[d + 1] & 1u)) & mask;
            entries[d] = 1;
        }
    }
    for (int64_t w0 = 0; w0 < words; w0 += MMC_BLOCK_WORDS) {
        const int64_t w1 = w0 + MMC_BLOCK_WORDS < words ? w0 + MMC_BLOCK_WORDS : words;
        const int64_t end = w1 * 64 < n ? w1 * 64 : n;
        memset(hit_bits, 0, sizeof(uint64_t) * (size_t)(MMC_DEPTH * MMC_BLOCK_WORDS));
        memset(found_bits, 0, sizeof(uint64_t) * (size_t)(MMC_DEPTH * MMC_BLOCK_WORDS));
        for (int d = 0; d < MMC_DEPTH && d + 2 < n; d++) {
            uint64_t *H = hit_bits + d * MMC_BLOCK_WORDS, *F = found_bits + d * MMC_BLOCK_WORDS;
            uint32_t h = hist[d];
            int64_t ent = entries[d];
            int64_t i = w0 * 64 > d + 2 ? w0 * 64 : d + 2;
            /* Steps i >= d + 2 predict s[i] from the d + 1 samples before it;
             * only the longest order can reach the entry cap. */
            if (d < MMC_DEPTH - 1)
                if (all_seen & (1u << d))
                    mmc_order_steps(s, i, end, table[d], &h, (2u << d) - 1, H, F, w0, &ent, 0, 1);
                else
                    mmc_order_steps(s, i, end, table[d], &h, (2u << d) - 1, H, F, w0, &ent, 0, 0);
            else
                mmc_order_steps(s, i, end, table[d], &h, (2u << d) - 1, H, F, w0, &ent, 1, 0);
            /* Once an order's (short) table has no unseen context left, it never
             * has again: its steps need not check. */
            if (d <= MMC_SEEN_CHECK && !(all_seen & (1u << d))) {
                int64_t zeros = 0;
                for (uint32_t x = 0; x < (2u << d); x++) zeros += table[d][x] == 0;
                if (zeros == 0) all_seen |= 1u << d;
            }
            hist[d] = h;
            entries[d] = ent;
        }
        for (int64_t w = w0; w < w1; w++) {
            const int64_t lo = w * 64 < 2 ? 2 : w * 64;
            const int64_t hi = w * 64 + 64 < n ? w * 64 + 64 : n;
            const int64_t bw = w - w0;
            uint64_t hw[MMC_DEPTH];
            uint32_t cand = 0;
            if (hi <= lo) continue;
            for (int d = 0; d < MMC_DEPTH; d++) {
                hw[d] = hit_bits[d * MMC_BLOCK_WORDS + bw];
                if (score[d] + (hi - lo) >= top) cand |= 1u << d;
                else score[d] += __builtin_popcountll(hw[d]);
            }
            for (int64_t i = lo; i < hi; i++) {
                const int bit = (int)(i & 63);
                uint32_t c = cand;
                /* The previous leader's prediction is the one that counts; no
                 * prediction (unseen context) leaves the tally alone. */
                if ((found_bits[winner * MMC_BLOCK_WORDS + bw] >> bit) & 1u)
                    tally_add(&t, (int)((hw[winner] >> bit) & 1u));
                while (c) {
                    int d = __builtin_ctz(c);
                    c &= c - 1;
                    if ((hw[d] >> bit) & 1u) {
                        int64_t sc = ++score[d];
                        if (sc >= top) {
                            top = sc;
                            winner = d;
                        }
                    }
                }
            }
        }
    }
    tally_store(&t, n - 2, out);
    free(hit_bits);
    free(found_bits);
    free(tables);
    return 0;
}

static int multi_mmc_symbols(const uint8_t *s, int64_t n, int32_t alphabet, sp_predictor_result *out)
{
    model M[MMC_DEPTH];
    int64_t entries[MMC_DEPTH] = {0};
    int64_t score[MMC_DEPTH] = {0};
    int winner = 0, depth_hint = 1;
    tally t = {0, 0, 0};
    int rc = 0;

    for (int d = 0; d < MMC_DEPTH; d++) {
        if (model_init(&M[d], alphabet, d + 1, n < MMC_MAX_ENTRIES ? n : MMC_MAX_ENTRIES) != 0) {
            for (int k = 0; k <= d; k++) model_free(&M[k]);
            return SP_ERR_NOMEM;
        }
    }
    for (int d = 0; d < MMC_DEPTH && d < n - 2; d++) {
        uint64_t lo, hi;
        int64_t node, idx;
        context_key(s, d + 1, d + 1, alphabet, &lo, &hi, &idx);
        node = model_node(&M[d], lo, hi, idx);
        if (node < 0 || model_count(&M[d], node, s[d + 1], 1) < 0) {
            rc = SP_ERR_NOMEM;
            goto done;
        }
        entries[d] = 1;
    }
    for (int64_t i = 2; i < n; i++) {
        const uint8_t y = s[i];
        const int cur_winner = winner;
        int found = 0, reached = 0;
        uint64_t lo = 0, hi = 0;
        int64_t node = -1, idx = 0, pw = 1;
        if (i + PREFETCH_STEPS < n) {
            /* The lookups ahead are known from the data: start their cache misses now,
             * for as many orders as this step is expected to reach, and for the
             * orders that still take new contexts (a miss there is an insertion). */
            const int64_t p = i + PREFETCH_STEPS;
            uint64_t plo = 0, phi = 0;
            int64_t pidx = 0, ppw = 1;
            int top = depth_hint;
            for (int d = MMC_DEPTH - 1; d > top; d--) {
                if (entries[d] < MMC_MAX_ENTRIES) {
                    top = d;
                    break;
                }
            }
            for (int d = 0; d <= top; d++) {
                uint64_t sym = s[p - d - 1];
                if (d < 8) plo |= sym << (8 * d);
                else phi |= sym << (8 * (d - 8));
                if (ppw <= DENSE_CONTEXTS) {
                    pidx += (int64_t)sym * ppw;
                    ppw *= alphabet;
                }
                if (M[d].direct)
                    __builtin_prefetch(model_rec(&M[d], pidx));
                else
                    __builtin_prefetch(model_probe_start(&M[d], plo, phi));
            }
        }
        for (int d = 0; d < MMC_DEPTH && d <= i - 2; d++) {
            uint64_t sym = s[i - d - 1];
            if (d < 8) lo |= sym << (8 * d);
            else hi |= sym << (8 * (d - 8));
            if (pw <= DENSE_CONTEXTS) {
                idx += (int64_t)sym * pw;
                pw *= alphabet;
            }
            if (d == 0 || found) {
                node = model_find(&M[d], lo, hi, idx);
                found = node >= 0;
                reached = d;
            }
            if (found) {
                int created;
                if (model_rec(&M[d], node)->best_y == y) {
                    if (++score[d] >= score[winner]) winner = d;
                    if (d == cur_winner) tally_add(&t, 1);
                } else if (d == cur_winner) {
                    tally_add(&t, 0);
                }
                created = model_count(&M[d], node, y, entries[d] < MMC_MAX_ENTRIES);
                if (created < 0) {
                    rc = SP_ERR_NOMEM;
                    goto done;
                }
                entries[d] += created;
            } else if (entries[d] < MMC_MAX_ENTRIES) {
                int64_t nd = model_node(&M[d], lo, hi, idx);
                if (nd < 0 || model_count(&M[d], nd, y, 1) < 0) {
                    rc = SP_ERR_NOMEM;
                    goto done;
                }
                entries[d]++;
            }
        }
        depth_hint = reached + 1 < MMC_DEPTH ? reached + 1 : MMC_DEPTH - 1;
    }
    tally_store(&t, n - 2, out);
done:
    for (int d = 0; d < MMC_DEPTH; d++) model_free(&M[d]);
    return rc;
}

int sp_multi_mmc(const uint8_t *s, int64_t n, int32_t alphabet, sp_predictor_result *out)
{
    if (alphabet < 1 || alphabet > 256 || n < 3 || !symbols_fit(s, n, alphabet)) return SP_ERR_ARGS;
    if (alphabet <= 2) return multi_mmc_binary(s, n, out);
    return multi_mmc_symbols(s, n, alphabet, out);
}

/* ------------------------------------------------------------------- LZ78Y */

static int lz78y_binary(const uint8_t *s, int64_t n, sp_predictor_result *out)
{
    uint32_t *table[LZ_DEPTH + 1];
    int64_t dict_size = 0;
    tally t = {0, 0, 0};
    int rc = 0;

    memset(table, 0, sizeof table);
    for (int j = 1; j <= LZ_DEPTH; j++) {
        table[j] = calloc((size_t)2 << j, sizeof(uint32_t));
        if (table[j] == NULL) {
            rc = SP_ERR_NOMEM;
            goto done;
        }
    }
    /* Seed: x = s[16-j..15], y = s[16] for j = 1..16. */
    for (int j = 1; j <= LZ_DEPTH; j++) {
        uint32_t x = 0;
        for (int k = 0; k < j; k++) x |= (uint32_t)(s[LZ_DEPTH - 1 - k] & 1u) << k;
        table[j][2 * x + (s[LZ_DEPTH] & 1u)] = 1;
        dict_size++;
    }
    {
        uint32_t full = 0;
        for (int k = 0; k < LZ_DEPTH; k++) full |= (uint32_t)(s[LZ_DEPTH - k] & 1u) << k;
        /* The context LZ_PREFETCH steps ahead is known from the data: the
         * longest orders' tables (beyond the first-level caches) are fetched
         * that far ahead. */
        uint32_t ahead = full;
        for (int64_t k = LZ_DEPTH + 1; k < LZ_DEPTH + 1 + LZ_PREFETCH && k < n; k++)
            ahead = ((ahead << 1) | (s[k] & 1u)) & 0xFFFFu;
        for (int64_t i = LZ_DEPTH + 1; i < n; i++) {
            const uint32_t y = s[i] & 1u;
            uint32_t max_count = 0, prediction = 2;
            if (i + LZ_PREFETCH < n) {
                for (int j = LZ_DEPTH; j > LZ_DEPTH - LZ_PREFETCH_ORDERS; j--)
                    __builtin_prefetch(table[j] + 2 * (ahead & ((1u << j) - 1)), 1);
                ahead = ((ahead << 1) | (s[i + LZ_PREFETCH] & 1u)) & 0xFFFFu;
            }
            for (int j = LZ_DEPTH; j >= 1; j--) {
                uint32_t *e = table[j] + 2 * (full & ((1u << j) - 1));
                uint32_t e0 = e[0], e1 = e[1];
                if ((e0 | e1) != 0) {
                    uint32_t best = e1 >= e0 ? e1 : e0;
                    uint32_t pred = e1 >= e0;
                    /* a longer context keeps the prediction on equal counts */
                    prediction = best > max_count ? pred : prediction;
                    max_count = best > max_count ? best : max_count;
                    e[y]++;
                } else if (dict_size < LZ_MAX_DICTIONARY) {
                    e[y] = 1;
                    dict_size++;
                }
            }
            tally_add(&t, prediction == y);
            full = ((full << 1) | y) & 0xFFFFu;
        }
    }
    tally_store(&t, n - LZ_DEPTH - 1, out);
done:
    for (int j = 1; j <= LZ_DEPTH; j++) free(table[j]);
    return rc;
}

/* Context of order j (1..16) from the full context of 16 symbols. */
static inline void lz_order_key(uint64_t full_lo, uint64_t full_hi, int j, uint64_t *lo, uint64_t *hi)
{
    *lo = full_lo;
    *hi = full_hi;
    if (j <= 8) {
        *hi = 0;
        if (j < 8) *lo &= (1ULL << (8 * j)) - 1;
    } else if (j < 16) {
        *hi &= (1ULL << (8 * (j - 8))) - 1;
    }
}

/* The step at i's full 16-symbol context key, and each order's index into the
 * dense tables (the orders whose contexts all fit DENSE_CONTEXTS). */
static inline void lz_contexts(const uint8_t *s, int64_t i, int32_t alphabet, uint64_t *full_lo,
                               uint64_t *full_hi, int64_t dense_idx[LZ_DEPTH + 1])
{
    int64_t pw = 1, acc = 0;
    context_key(s, i, LZ_DEPTH, alphabet, full_lo, full_hi, &acc);
    acc = 0;
    for (int j = 1; j <= LZ_DEPTH; j++) {
        if (pw <= DENSE_CONTEXTS) {
            acc += (int64_t)s[i - j] * pw;
            pw *= alphabet;
        }
        dense_idx[j] = acc;
    }
}

/* LZ78Y on wider symbols.  Until the dictionary is full every step adds the
 * contexts it lacks, longest first, so the dictionary is closed under taking
 * suffixes (a context's shorter ones are in it), with one exception: in the
 * step that fills it, the context added last (order j0) may lack its suffix
 * of order j0 - 1, which can then never be added.  After that step nothing
 * is added, and only the contexts in the dictionary matter, so a step looks
 * its orders up from the shortest until one is missing, and looks further
 * only when its context of order j0 is that exception. */
static int lz78y_symbols(const uint8_t *s, int64_t n, int32_t alphabet, sp_predictor_result *out)
{
    model D[LZ_DEPTH + 1];
    int64_t dict_size = 0, i;
    int full_at = 0; /* the order whose addition filled the dictionary */
    uint64_t orphan_lo = 0, orphan_hi = 0;
    tally t = {0, 0, 0};
    int rc = 0;

    for (int j = 0; j <= LZ_DEPTH; j++) {
        if (model_init(&D[j], alphabet, j, 64) != 0) {
            for (int k = 0; k <= j; k++) model_free(&D[k]);
            return SP_ERR_NOMEM;
        }
    }
    for (int j = 1; j <= LZ_DEPTH; j++) {
        uint64_t lo, hi;
        int64_t node, idx;
        context_key(s, LZ_DEPTH, j, alphabet, &lo, &hi, &idx);
        node = model_node(&D[j], lo, hi, idx);
        if (node < 0 || model_count(&D[j], node, s[LZ_DEPTH], 1) < 0) {
            rc = SP_ERR_NOMEM;
            goto done;
        }
        dict_size++;
    }
    for (i = LZ_DEPTH + 1; i < n && full_at == 0; i++) {
        const uint8_t y = s[i];
        uint64_t full_lo, full_hi;
        int64_t max_count = 0, dense_idx[LZ_DEPTH + 1];
        int have = 0;
        uint8_t prediction = 0;
        lz_contexts(s, i, alphabet, &full_lo, &full_hi, dense_idx);
        for (int j = LZ_DEPTH; j >= 1; j--) {
            uint64_t lo, hi;
            int64_t node;
            lz_order_key(full_lo, full_hi, j, &lo, &hi);
            node = model_find(&D[j], lo, hi, dense_idx[j]);
            if (node >= 0) {
                const node_rec *r = model_rec(&D[j], node);
                if (r->best_count > max_count) {
                    max_count = r->best_count;
                    prediction = (uint8_t)r->best_y;
                    have = 1;
                }
                if (model_count(&D[j], node, y, 1) < 0) {
                    rc = SP_ERR_NOMEM;
                    goto done;
                }
            } else if (dict_size < LZ_MAX_DICTIONARY) {
                node = model_node(&D[j], lo, hi, dense_idx[j]);
                if (node < 0 || model_count(&D[j], node, y, 1) < 0) {
                    rc = SP_ERR_NOMEM;
                    goto done;
                }
                if (++dict_size == LZ_MAX_DICTIONARY) {
                    full_at = j;
                    orphan_lo = lo;
                    orphan_hi = hi;
                }
            }
        }
        tally_add(&t, have && prediction == y);
    }
    for (; i < n; i++) {
        const uint8_t y = s[i];
        uint64_t full_lo, full_hi, lo, hi;
        int64_t max_count = 0, node[LZ_DEPTH + 1], dense_idx[LZ_DEPTH + 1];
        int have = 0, top = 0;
        uint8_t prediction = 0;
        lz_contexts(s, i, alphabet, &full_lo, &full_hi, dense_idx);
        for (int j = 1; j <= LZ_DEPTH; j++) {
            node[j] = -1;
        }
        /* orders 1 .. top are in the dictionary, order top + 1 is not */
        while (top < LZ_DEPTH) {
            lz_order_key(full_lo, full_hi, top + 1, &lo, &hi);
            node[top + 1] = model_find(&D[top + 1], lo, hi, dense_idx[top + 1]);
            if (node[top + 1] < 0) break;
            top++;
        }
        /* longer ones only from the context added last on */
        if (full_at > top + 1) {
            lz_order_key(full_lo, full_hi, full_at, &lo, &hi);
            if (lo == orphan_lo && hi == orphan_hi) {
                for (int j = full_at; j <= LZ_DEPTH; j++) {
                    lz_order_key(full_lo, full_hi, j, &lo, &hi);
                    node[j] = model_find(&D[j], lo, hi, dense_idx[j]);
                    if (node[j] < 0) break;
                }
            }
        }
        for (int j = LZ_DEPTH; j >= 1; j--) {
            const node_rec *r;
            if (node[j] < 0) continue;
            r = model_rec(&D[j], node[j]);
            if (r->best_count > max_count) {
                max_count = r->best_count;
                prediction = (uint8_t)r->best_y;
                have = 1;
            }
            if (model_count(&D[j], node[j], y, 1) < 0) {
                rc = SP_ERR_NOMEM;
                goto done;
            }
        }
        tally_add(&t, have && prediction == y);
    }
    tally_store(&t, n - LZ_DEPTH - 1, out);
done:
    for (int j = 0; j <= LZ_DEPTH; j++) model_free(&D[j]);
    return rc;
}

int sp_lz78y(const uint8_t *s, int64_t n, int32_t alphabet, sp_predictor_result *out)
{
    if (alphabet < 1 || alphabet > 256 || n < LZ_DEPTH + 2 || !symbols_fit(s, n, alphabet))
        return SP_ERR_ARGS;
    if (alphabet <= 2) return lz78y_binary(s, n, out);
    return lz78y_symbols(s, n, alphabet, out);
}
