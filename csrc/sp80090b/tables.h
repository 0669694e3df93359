/* Memory for the kernels' large tables (not part of the cffi interface). */
#ifndef CHAOS_SP80090B_TABLES_H
#define CHAOS_SP80090B_TABLES_H
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#define SP_HUGE_PAGE ((size_t)2 << 20)

/* A table of `bytes` (zeroed when `zero`) that is probed or filled at random:
 * from 2 MiB on, it is aligned to 2 MiB and its whole 2 MiB pieces are asked
 * to come as huge pages (Linux, transparent huge pages in "always" or
 * "madvise" mode), so one page fault and one TLB entry cover 2 MiB instead
 * of 4 KiB.  The sources that
 * call it define _DEFAULT_SOURCE (madvise, posix_memalign); elsewhere it is
 * calloc or malloc.  Freed with free(). */
static inline void *sp_table_alloc(size_t bytes, int zero)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= SP_HUGE_PAGE) {
        void *p = NULL;
        if (posix_memalign(&p, SP_HUGE_PAGE, bytes) != 0) return NULL;
        /* whole huge pages only: a tail would cost a whole one */
        madvise(p, bytes & ~(SP_HUGE_PAGE - 1), MADV_HUGEPAGE);
        if (zero) memset(p, 0, bytes);
        return p;
    }
#endif
    return zero ? calloc(1, bytes) : malloc(bytes);
}

#endif
