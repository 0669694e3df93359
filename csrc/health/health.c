#include "health.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

#if defined(__SSE2__)
    size_t stretch = 16; /* samples to test one by one after a chunk that could not be skipped */
#else
    const size_t stretch = (size_t)-1;
#endif
    while (i < n) {
#if defined(__SSE2__)
        /* Sixteen samples at once while nothing can happen in them: no RCT run
         * reaches its cutoff (rct_value is samples[i - 1]; the runs come from a
         * bit mask of the samples equal to the one before), the APT window does
         * not end within them and its count stays below the cutoff.  Otherwise the next `stretch` samples go
         * one by one, from the same state, so the results are the loop's; the
         * stretch doubles (up to 1024) while chunks keep failing (low-entropy
         * data, where they always do). */
        while (i >= 1 && n - i >= 16 && apt_pos + 16 <= apt_window) {
            const __m128i now = _mm_loadu_si128((const __m128i *)(const void *)(samples + i));
            const __m128i before = _mm_loadu_si128((const __m128i *)(const void *)(samples + i - 1));
            /* bit k: sample i + k equals the one before it (the RCT run grows) */
            const uint32_t same = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(now, before));
            uint32_t run_after;
            if (same == 0) {
                run_after = 1;
            } else if (same == 0xFFFF) {
                run_after = rct_run + 16;
                if (run_after >= rct_cutoff) {
                    stretch = stretch < 1024 ? 2 * stretch : 1024;
                    break;
                }
            } else {
                /* the run in progress goes on for `lead` samples; a later run of
                 * k ones in `same` is a run of k + 1 equal samples */
                const uint32_t lead = (uint32_t)__builtin_ctz(~same);
                uint32_t inner = same >> lead, longest = inner;
                for (uint32_t k = 1; k + 1 < rct_cutoff && longest != 0; k++)
                    longest &= inner >> k; /* nonzero: a run of k + 1 ones */
                if (rct_run + lead >= rct_cutoff || (rct_cutoff <= 16 && longest != 0)) {
                    stretch = stretch < 1024 ? 2 * stretch : 1024;
                    break;
                }
                run_after = 1 + (uint32_t)__builtin_clz(~(same << 16) | 0xFFFFu);
            }
            const __m128i value = _mm_set1_epi8((char)apt_value);
            const uint32_t hits =
                (uint32_t)__builtin_popcount((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(now, value)));
            if (apt_count + hits >= apt_cutoff)
                break;
            apt_count += hits;
            apt_pos += 16;
            rct_value = samples[i + 15];
            rct_run = run_after;
            i += 16;
            stretch = 16;
        }
#endif
        const size_t end = n - i > stretch ? i + stretch : n;
        for (; i < end; i++) {
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
    }
    st->rct_value = rct_value;
    st->rct_run = rct_run;
    st->apt_value = apt_value;
    st->apt_count = apt_count;
    st->apt_pos = apt_pos;
    st->samples = base + n;
    return found;
}
