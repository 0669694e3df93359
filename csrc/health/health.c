#include "health.h"

#include <string.h>

void chaos_health_init(chaos_health_state *st, uint32_t rct_cutoff,
                       uint32_t apt_cutoff, uint32_t apt_window)
{
    memset(st, 0, sizeof *st);
    st->rct_cutoff = rct_cutoff;
    st->apt_cutoff = apt_cutoff;
    st->apt_window = apt_window;
}

static inline void record(chaos_health_failure *failures, size_t max_failures,
                          size_t found, uint64_t index, uint32_t test,
                          uint32_t count)
{
    if (found < max_failures) {
        failures[found].index = index;
        failures[found].test = test;
        failures[found].count = count;
    }
}

size_t chaos_health_run(chaos_health_state *st, const uint8_t *samples,
                        size_t n, chaos_health_failure *failures,
                        size_t max_failures)
{
    size_t found = 0;
    size_t i = 0;
    if (n == 0)
        return 0;
    if (!st->started) {
        st->started = 1;
        st->rct_value = samples[0];
        st->rct_run = 1;
        st->apt_value = samples[0];
        st->apt_count = 1;
        st->apt_pos = 1;
        i = 1;
    }
    /* Locals so the compiler keeps the hot state in registers. */
    uint8_t rct_value = st->rct_value, apt_value = st->apt_value;
    uint32_t rct_run = st->rct_run, apt_count = st->apt_count, apt_pos = st->apt_pos;
    const uint32_t rct_cutoff = st->rct_cutoff, apt_cutoff = st->apt_cutoff;
    const uint32_t apt_window = st->apt_window;
    const uint64_t base = st->samples;

    for (; i < n; i++) {
        const uint8_t x = samples[i];
        /* Repetition count test (§4.4.1). */
        if (x == rct_value) {
            if (++rct_run >= rct_cutoff) {
                record(failures, max_failures, found++, base + i, CHAOS_HEALTH_RCT, rct_run);
                st->rct_failures++;
                rct_run = 1;
            }
        } else {
            rct_value = x;
            rct_run = 1;
        }
        /* Adaptive proportion test (§4.4.2). */
        if (apt_pos == apt_window) {
            apt_value = x;
            apt_count = 1;
            apt_pos = 1;
        } else {
            apt_pos++;
            if (x == apt_value && ++apt_count >= apt_cutoff) {
                record(failures, max_failures, found++, base + i, CHAOS_HEALTH_APT, apt_count);
                st->apt_failures++;
                /* start a new window at the next sample */
                apt_pos = apt_window;
            }
        }
    }
    st->rct_value = rct_value;
    st->rct_run = rct_run;
    st->apt_value = apt_value;
    st->apt_count = apt_count;
    st->apt_pos = apt_pos;
    st->samples = base + n;
    return found;
}
