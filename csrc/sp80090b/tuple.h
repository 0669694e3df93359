/* The streaming t-tuple/LRS counter shared by tuple.c and bitsort.c (not part
 * of the cffi interface). */
#ifndef CHAOS_SP80090B_TUPLE_H
#define CHAOS_SP80090B_TUPLE_H
#include "sp80090b.h"

typedef struct {
    int64_t *best;      /* best[ell]: largest interval with LCP value ell */
    uint64_t *diff;     /* difference array of the pair counts */
    int32_t *stack_lcp;
    int64_t *stack_lb;
    int64_t top, stack_cap, i;
    int32_t cap, max_len;
} tuple_counter;

/* A counter for LCP values up to cap. */
int tc_init(tuple_counter *c, int32_t cap);
/* q[0..max_len] and pairs[0..max_len], max_len being the largest value pushed. */
int tc_finish(tuple_counter *c, int64_t *q, uint64_t *pairs);
void tc_free(tuple_counter *c);
/* Doubles the interval stack (tc_push's slow path). */
int tc_grow_stack(tuple_counter *c);

/* The next LCP value in suffix order (lcp[1], lcp[2], ...); SP_ERR_LONG above cap.
 * Inline: it runs once per suffix. */
static inline int tc_push(tuple_counter *c, int64_t cur)
{
    int64_t i = c->i++, lb = i - 1;
    if (cur < 0) return SP_ERR_ARGS;
    if (cur > c->cap) return SP_ERR_LONG;
    if (cur > c->max_len) c->max_len = (int32_t)cur;
    while (cur < c->stack_lcp[c->top]) {
        int32_t ell = c->stack_lcp[c->top];
        int64_t left = c->stack_lb[c->top], size = i - left;
        int64_t parent;
        uint64_t c2 = (uint64_t)size * (uint64_t)(size - 1) / 2;
        c->top--;
        parent = cur > c->stack_lcp[c->top] ? cur : c->stack_lcp[c->top];
        c->diff[parent + 1] += c2;
        c->diff[ell + 1] -= c2;
        if (size > c->best[ell]) c->best[ell] = size;
        lb = left;
    }
    if (cur > c->stack_lcp[c->top]) {
        if (c->top + 1 == c->stack_cap && tc_grow_stack(c) != 0) return SP_ERR_NOMEM;
        c->top++;
        c->stack_lcp[c->top] = (int32_t)cur;
        c->stack_lb[c->top] = lb;
    }
    return 0;
}

#endif
