/* t-tuple and LRS counts (SP 800-90B §6.3.5, §6.3.6) from an LCP array.
 *
 * Equal t-tuples are runs of adjacent suffixes whose LCP is at least t.  Each
 * lcp-interval [lb, rb] with LCP value ell, whose enclosing interval has LCP
 * value ell_p < ell, is one such run, of size rb - lb + 1, for every t in
 * (ell_p, ell].  A bottom-up traversal with a stack visits every interval
 * once (Abouelhoda, Kurtz and Ohlebusch, "Replacing suffix trees with
 * enhanced suffix arrays", 2004), so both statistics for every t come out in
 * O(n + max_len).
 */
#include "sp80090b.h"

#include <stdlib.h>

int sp_tuple_counts(const int32_t *lcp, int64_t n, int32_t max_len, int64_t *q, uint64_t *pairs)
{
    int64_t *best, *stack_lb;
    int32_t *stack_lcp;
    uint64_t *diff;
    int64_t top = 0, t;
    /* LCP values on the stack strictly increase, so its depth is <= max_len + 1;
     * it starts small and grows as needed. */
    int64_t stack_cap = max_len + 2 < 4096 ? max_len + 2 : 4096;

    if (n < 1 || max_len < 0) return SP_ERR_ARGS;
    best = calloc((size_t)max_len + 2, sizeof(int64_t));
    diff = calloc((size_t)max_len + 2, sizeof(uint64_t));
    stack_lcp = malloc(sizeof(int32_t) * (size_t)stack_cap);
    stack_lb = malloc(sizeof(int64_t) * (size_t)stack_cap);
    if (best == NULL || diff == NULL || stack_lcp == NULL || stack_lb == NULL) {
        free(best);
        free(diff);
        free(stack_lcp);
        free(stack_lb);
        return SP_ERR_NOMEM;
    }
    stack_lcp[0] = 0;
    stack_lb[0] = 0;
    for (int64_t i = 1; i <= n; i++) {
        int32_t cur = i < n ? lcp[i] : 0;
        int64_t lb = i - 1;
        if (cur < 0 || cur > max_len) {
            free(best);
            free(diff);
            free(stack_lcp);
            free(stack_lb);
            return SP_ERR_ARGS;
        }
        while (cur < stack_lcp[top]) {
            int32_t ell = stack_lcp[top];
            int64_t left = stack_lb[top], size = i - left;
            int32_t parent;
            uint64_t c2 = (uint64_t)size * (uint64_t)(size - 1) / 2;
            top--;
            parent = cur > stack_lcp[top] ? cur : stack_lcp[top];
            diff[parent + 1] += c2;
            diff[ell + 1] -= c2;
            if (size > best[ell]) best[ell] = size;
            lb = left;
        }
        if (cur > stack_lcp[top]) {
            if (top + 1 == stack_cap) {
                int64_t cap = stack_cap * 2;
                int32_t *sl = realloc(stack_lcp, sizeof(int32_t) * (size_t)cap);
                int64_t *sb;
                if (sl != NULL) stack_lcp = sl;
                sb = sl != NULL ? realloc(stack_lb, sizeof(int64_t) * (size_t)cap) : NULL;
                if (sb != NULL) stack_lb = sb;
                if (sl == NULL || sb == NULL) {
                    free(best);
                    free(diff);
                    free(stack_lcp);
                    free(stack_lb);
                    return SP_ERR_NOMEM;
                }
                stack_cap = cap;
            }
            top++;
            stack_lcp[top] = cur;
            stack_lb[top] = lb;
        }
    }
    q[0] = 0;
    pairs[0] = 0;
    {
        uint64_t acc = diff[0];
        for (t = 1; t <= max_len; t++) {
            acc += diff[t];
            pairs[t] = acc;
        }
    }
    {
        int64_t run = 1;
        for (t = max_len; t >= 1; t--) {
            if (best[t] > run) run = best[t];
            q[t] = run;
        }
    }
    free(best);
    free(diff);
    free(stack_lcp);
    free(stack_lb);
    return 0;
}
