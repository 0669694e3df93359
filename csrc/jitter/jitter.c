#define _GNU_SOURCE
#include "jitter.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t now_ticks(void) { return __rdtsc(); }
const char *chaos_jitter_clock(void) { return "tsc"; }
#else
static inline uint64_t now_ticks(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
const char *chaos_jitter_clock(void) { return "clock_monotonic_raw"; }
#endif

struct chaos_jitter {
    volatile uint8_t *buffer;
    size_t mask;          /* buffer size - 1 (size is a power of two) */
    uint32_t steps;
    uint64_t walk;        /* xorshift state choosing the next address */
};

chaos_jitter *chaos_jitter_new(size_t buffer_bytes, uint32_t steps)
{
    size_t size = 4096;
    while (size < buffer_bytes)
        size <<= 1;
    chaos_jitter *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->buffer = calloc(size, 1);
    if (!j->buffer) {
        free(j);
        return NULL;
    }
    j->mask = size - 1;
    j->steps = steps ? steps : 1;
    j->walk = now_ticks() | 1u;
    return j;
}

void chaos_jitter_free(chaos_jitter *j)
{
    if (!j)
        return;
    free((void *)j->buffer);
    free(j);
}

/* One measured unit of work: `steps` read-modify-writes at pseudo-random
 * cache lines.  The walk is deterministic; only its duration is the noise. */
static inline uint64_t measure(chaos_jitter *j)
{
    uint64_t w = j->walk;
    const uint64_t t0 = now_ticks();
    for (uint32_t s = 0; s < j->steps; s++) {
        w ^= w << 13;
        w ^= w >> 7;
        w ^= w << 17;
        j->buffer[(w * 64) & j->mask] += 1;
    }
    const uint64_t t1 = now_ticks();
    j->walk = w;
    return t1 - t0;
}

void chaos_jitter_sample(chaos_jitter *j, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)measure(j);
}

void chaos_jitter_deltas(chaos_jitter *j, uint64_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = measure(j);
}
