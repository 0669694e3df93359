/* The length bzip2 would give, worked out without compressing (bzlen.c).
 * Internal to this module: the run (run.c) keeps one context per worker. */
#ifndef CHAOS_SP80090B_IID_BZLEN_H
#define CHAOS_SP80090B_IID_BZLEN_H
#include <stddef.h>
#include <stdint.h>

typedef struct bzlen bzlen;

#define BZLEN_NO_MEMORY (-1)
#define BZLEN_UNSUPPORTED (-3) /* a level outside 1-9 */
#define BZLEN_STOPPED (-4)     /* `stop` said the result is no longer wanted */

bzlen *bzlen_new(void);
void bzlen_free(bzlen *ctx);

/* The byte length of BZ2_bzBuffToBuffCompress (level 1-9, any work
 * factor) of the decimal text of raw[0..n) (iid_decimal_text), or one of
 * the negative codes above.  `stop(arg)` is asked between blocks; it may
 * be NULL. */
long long bzlen_samples(bzlen *ctx, const uint8_t *raw, size_t n, int level,
                        int (*stop)(void *), void *arg);

#endif
