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
/* The next LCP value in suffix order (lcp[1], lcp[2], ...); SP_ERR_LONG above cap. */
int tc_push(tuple_counter *c, int64_t lcp);
/* q[0..max_len] and pairs[0..max_len], max_len being the largest value pushed. */
int tc_finish(tuple_counter *c, int64_t *q, uint64_t *pairs);
void tc_free(tuple_counter *c);

#endif
