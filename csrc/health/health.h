/* SP 800-90B §4.4 health tests (RCT and APT) over sample buffers.
 *
 * The state persists across calls, so a stream cut into buffers is tested
 * exactly as if it were one buffer.  After a failure the failing test starts
 * over from the failing sample, so a stuck source keeps failing every cutoff
 * samples rather than once.
 */
#ifndef CHAOS_HEALTH_H
#define CHAOS_HEALTH_H
#include <stdint.h>
#include <stddef.h>

/* CDEF-BEGIN */
typedef struct {
    uint32_t rct_cutoff;   /* C: fail when a value repeats C times in a row */
    uint32_t apt_cutoff;   /* C: fail when the window's first value occurs C times */
    uint32_t apt_window;   /* W: 512, or 1024 for binary sources */
    uint8_t  rct_value;
    uint8_t  apt_value;
    uint8_t  started;
    uint32_t rct_run;      /* length of the current run of rct_value */
    uint32_t apt_count;    /* occurrences of apt_value in the current window */
    uint32_t apt_pos;      /* samples seen in the current window */
    uint64_t samples;      /* samples tested since init */
    uint64_t rct_failures;
    uint64_t apt_failures;
} chaos_health_state;

/* failure kinds reported in chaos_health_failure.test */
#define CHAOS_HEALTH_RCT 1
#define CHAOS_HEALTH_APT 2

typedef struct {
    uint64_t index;        /* index of the failing sample since init */
    uint32_t test;         /* CHAOS_HEALTH_RCT or CHAOS_HEALTH_APT */
    uint32_t count;        /* the count that reached the cutoff */
} chaos_health_failure;

void chaos_health_init(chaos_health_state *st, uint32_t rct_cutoff,
                       uint32_t apt_cutoff, uint32_t apt_window);

/* Test n samples; writes at most max_failures records to failures and
 * returns the total number of failures found in this buffer (which may be
 * larger than max_failures: the counters in st are always exact). */
size_t chaos_health_run(chaos_health_state *st, const uint8_t *samples,
                        size_t n, chaos_health_failure *failures,
                        size_t max_failures);
/* CDEF-END */

#endif
