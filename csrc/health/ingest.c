/* The engine's per-batch work in one call: mask, health tests, window
 * counts, absorb.  See health.h. */
#include "health.h"

#include <string.h>

#define CHUNK 4096 /* masked samples are staged in a stack buffer of this size */

void chaos_window_init(chaos_window_counts *w, uint8_t *ring, uint32_t window)
{
    memset(w, 0, sizeof *w);
    w->ring = ring;
    w->window = window;
}

void chaos_window_update(chaos_window_counts *w, const uint8_t *samples, size_t n)
{
    const uint32_t window = w->window;
    if (n >= window) { /* only the last `window` samples stay */
        samples += n - window;
        n = window;
        memset(w->counts, 0, sizeof w->counts);
        memcpy(w->ring, samples, window);
        for (size_t i = 0; i < n; i++)
            w->counts[samples[i]]++;
        w->pos = 0;
        w->filled = window;
        return;
    }
    uint8_t *ring = w->ring;
    uint32_t pos = w->pos, filled = w->filled;
    size_t i = 0;
    /* while the window is not yet full: add only */
    for (; i < n && filled < window; i++) {
        ring[pos] = samples[i];
        w->counts[samples[i]]++;
        pos = pos + 1 == window ? 0 : pos + 1;
        filled++;
    }
    /* full: each new sample replaces the oldest, which sits at pos */
    while (i < n) {
        size_t run = window - pos;
        if (run > n - i)
            run = n - i;
        uint8_t *slot = ring + pos;
        const uint8_t *in = samples + i;
        for (size_t k = 0; k < run; k++) {
            w->counts[slot[k]]--;
            w->counts[in[k]]++;
        }
        memcpy(slot, in, run);
        i += run;
        pos += (uint32_t)run;
        if (pos == window)
            pos = 0;
    }
    w->pos = pos;
    w->filled = filled;
}

int64_t chaos_window_max(const chaos_window_counts *w)
{
    int64_t best = 0;
    for (int v = 0; v < 256; v++)
        best = w->counts[v] > best ? w->counts[v] : best;
    return best;
}

size_t chaos_ingest(chaos_health_state *health, chaos_health_failure *failures,
                    size_t max_failures, chaos_window_counts *window,
                    chaos_absorb_fn absorb, void *sponge,
                    const uint8_t *header, size_t header_len,
                    const uint8_t *samples, size_t n, uint8_t mask)
{
    size_t found = 0;
    if (absorb(sponge, header, header_len) != 0)
        return (size_t)-1;
    if (mask == 0xFF) {
        found = chaos_health_run(health, samples, n, failures, max_failures);
        chaos_window_update(window, samples, n);
        if (absorb(sponge, samples, n) != 0)
            return (size_t)-1;
        return found;
    }
    uint8_t staged[CHUNK];
    for (size_t start = 0; start < n; start += CHUNK) {
        size_t len = n - start < CHUNK ? n - start : CHUNK;
        for (size_t k = 0; k < len; k++)
            staged[k] = samples[start + k] & mask;
        size_t room = found < max_failures ? max_failures - found : 0;
        found += chaos_health_run(health, staged, len, failures + (max_failures - room), room);
        chaos_window_update(window, staged, len);
        if (absorb(sponge, staged, len) != 0)
            return (size_t)-1;
    }
    return found;
}
