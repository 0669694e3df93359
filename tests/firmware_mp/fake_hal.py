"""A deterministic HAL for the firmware tests (runs under MicroPython and CPython).

Samples come from a fixed linear congruential sequence and the clock is set by
the test, so a scenario produces the same byte stream on every interpreter.
"""

TICKS_PERIOD = 1 << 30


class FakeHal:
    """Deterministic samples and a test-driven ticks_ms clock with MicroPython's wrap."""

    def __init__(self, start_ms=0, stuck=False, boots=7):
        self.now = start_ms
        self.boots = boots
        self.x = 12345
        self.stuck = stuck
        self.nonces = 0

    def _next(self):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return self.x >> 16

    def fill_adc(self, buf, n):
        for i in range(n):
            v = 2048 if self.stuck else 2000 + (self._next() & 63)
            buf[2 * i] = v & 0xFF
            buf[2 * i + 1] = v >> 8

    def fill_rng(self, buf, n):
        for i in range(n):
            buf[i] = self._next() & 0xFF

    def fill_jitter(self, buf, n):
        for i in range(n):
            buf[i] = 40 + self._next() % 7

    def ticks_ms(self):
        return self.now % TICKS_PERIOD

    def ticks_diff(self, a, b):
        half = TICKS_PERIOD // 2
        return ((a - b + half) % TICKS_PERIOD) - half

    def boot_nonce(self):
        self.nonces += 1
        return bytes([0xB0 + self.nonces] * 8)

    def boot_counter(self):
        return self.boots
