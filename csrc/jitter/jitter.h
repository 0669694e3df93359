/* CPU execution-time jitter, in the spirit of jitterentropy.
 *
 * Each sample is the duration, read from the finest clock available (the TSC
 * on x86-64, CLOCK_MONOTONIC_RAW elsewhere), of a short pseudo-random walk over
 * a buffer larger than the L1 cache.  Cache, TLB and pipeline state make that
 * duration vary; the low 8 bits of each duration are returned raw, never
 * whitened, so health tests and estimators see what the hardware gives.
 */
#ifndef CHAOS_JITTER_H
#define CHAOS_JITTER_H
#include <stdint.h>
#include <stddef.h>

/* CDEF-BEGIN */
typedef struct chaos_jitter chaos_jitter;

/* buffer_bytes: size of the walked buffer (>= 64 KiB recommended, larger than
 * L1); steps: memory accesses per sample.  Returns NULL on allocation failure. */
chaos_jitter *chaos_jitter_new(size_t buffer_bytes, uint32_t steps);
void chaos_jitter_free(chaos_jitter *j);

/* Fill out[0..n) with the low 8 bits of n timing measurements. */
void chaos_jitter_sample(chaos_jitter *j, uint8_t *out, size_t n);

/* Fill out[0..n) with full-width timing deltas (clock ticks), for analysis. */
void chaos_jitter_deltas(chaos_jitter *j, uint64_t *out, size_t n);

/* Name of the clock used: "tsc" or "clock_monotonic_raw". */
const char *chaos_jitter_clock(void);
/* CDEF-END */

#endif
