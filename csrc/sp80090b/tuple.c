/* t-tuple and LRS counts (SP 800-90B §6.3.5, §6.3.6) from an LCP sequence.
 *
 * Equal t-tuples are runs of adjacent suffixes whose LCP is at least t.  Each
 * lcp-interval [lb, rb] with LCP value ell, whose enclosing interval has LCP
 * value ell_p < ell, is one such run, of size rb - lb + 1, for every t in
 * (ell_p, ell].  A bottom-up traversal with a stack visits every interval
 * once (Abouelhoda, Kurtz and Ohlebusch, "Replacing suffix trees with
 * enhanced suffix arrays", 2004), so both statistics for every t come out in
 * O(n + max_len).  The traversal reads the LCP values one at a time, in
 * suffix order (tuple_counter), so a caller that finds them in that order
 * need not store them.
 */
#include "tuple.h"

#include <stdlib.h>
#include <string.h>

int tc_init(tuple_counter *c, int32_t cap)
{
    memset(c, 0, sizeof *c);
    c->cap = cap;
    /* calloc: pages past the longest repeat are never touched, so never resident */
    c->best = calloc((size_t)cap + 2, sizeof(int64_t));
    c->diff = calloc((size_t)cap + 2, sizeof(uint64_t));
    c->stack_cap = 64;
    c->stack_lcp = malloc(sizeof(int32_t) * (size_t)c->stack_cap);
    c->stack_lb = malloc(sizeof(int64_t) * (size_t)c->stack_cap);
    if (c->best == NULL || c->diff == NULL || c->stack_lcp == NULL || c->stack_lb == NULL) {
        tc_free(c);
        return SP_ERR_NOMEM;
    }
    c->stack_lcp[0] = 0;
    c->stack_lb[0] = 0;
    c->i = 1;
    return 0;
}

void tc_free(tuple_counter *c)
{
    free(c->best);
    free(c->diff);
    free(c->stack_lcp);
    free(c->stack_lb);
    c->best = NULL;
    c->diff = NULL;
    c->stack_lcp = NULL;
    c->stack_lb = NULL;
}

int tc_grow_stack(tuple_counter *c)
{
    int64_t cap = c->stack_cap * 2;
    int32_t *sl = realloc(c->stack_lcp, sizeof(int32_t) * (size_t)cap);
    int64_t *sb;
    if (sl == NULL) return SP_ERR_NOMEM;
    c->stack_lcp = sl;
    sb = realloc(c->stack_lb, sizeof(int64_t) * (size_t)cap);
    if (sb == NULL) return SP_ERR_NOMEM;
    c->stack_lb = sb;
    c->stack_cap = cap;
    return 0;
}

int tc_finish(tuple_counter *c, int64_t *q, uint64_t *pairs)
{
    int32_t t, max_len = c->max_len;
    int rc = tc_push(c, 0); /* closes every open interval */
    if (rc != 0) return rc;
    q[0] = 0;
    pairs[0] = 0;
    {
        uint64_t acc = c->diff[0];
        for (t = 1; t <= max_len; t++) {
            acc += c->diff[t];
            pairs[t] = acc;
        }
    }
    {
        int64_t run = 1;
        for (t = max_len; t >= 1; t--) {
            if (c->best[t] > run) run = c->best[t];
            q[t] = run;
        }
    }
    return 0;
}

int sp_tuple_counts(const int32_t *lcp, int64_t n, int32_t max_len, int64_t *q, uint64_t *pairs)
{
    tuple_counter c;
    int rc;

    if (n < 1 || max_len < 0) return SP_ERR_ARGS;
    rc = tc_init(&c, max_len);
    if (rc != 0) return rc;
    for (int64_t i = 1; i < n && rc == 0; i++) {
        rc = tc_push(&c, lcp[i]);
        if (rc == SP_ERR_LONG) rc = SP_ERR_ARGS; /* a value above max_len */
    }
    if (rc == 0) rc = tc_finish(&c, q, pairs);
    if (rc == 0 && c.max_len < max_len) {
        for (int32_t t = c.max_len + 1; t <= max_len; t++) {
            q[t] = 1;
            pairs[t] = 0;
        }
    }
    tc_free(&c);
    return rc;
}
