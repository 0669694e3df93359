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

/* Symbol counts over a sliding window of the last `window` samples (the
 * online estimates of chaosmagnet.estimates); ring holds `window` bytes and
 * belongs to the caller. */
typedef struct {
    uint8_t *ring;
    uint32_t window;
    uint32_t pos;          /* next write position */
    uint32_t filled;       /* samples in the window */
    int64_t counts[256];
} chaos_window_counts;

void chaos_window_init(chaos_window_counts *w, uint8_t *ring, uint32_t window);

/* Add n samples to the window, evicting the oldest. */
void chaos_window_update(chaos_window_counts *w, const uint8_t *samples, size_t n);

/* The largest symbol count in the window. */
int64_t chaos_window_max(const chaos_window_counts *w);

/* A sponge's absorb function and its state, from another cffi module
 * (chaosmagnet._keccak's chaos_keccak_absorb). */
typedef int (*chaos_absorb_fn)(void *state, const uint8_t *data, size_t len);

/* One batch of the engine's ingest in one call: mask each sample to its
 * width, run RCT and APT (as chaos_health_run), add the samples to the
 * window counts, and absorb header then the masked samples into the sponge
 * (the same byte stream as absorbing them in two calls).  Returns the
 * number of health failures found (records as chaos_health_run), or
 * (size_t)-1 when the absorb failed. */
size_t chaos_ingest(chaos_health_state *health, chaos_health_failure *failures,
                    size_t max_failures, chaos_window_counts *window,
                    chaos_absorb_fn absorb, void *sponge,
                    const uint8_t *header, size_t header_len,
                    const uint8_t *samples, size_t n, uint8_t mask);
/* CDEF-END */

#endif
