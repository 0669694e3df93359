"""Bulk RCT and APT over sample buffers, run by the C kernel (csrc/health).

A HealthMonitor keeps the tests' state across buffers, so a stream cut into
batches is tested exactly as one long buffer would be.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np

from chaosmagnet._health import ffi, lib
from chaosmagnet.health.cutoffs import DEFAULT_ALPHA, apt_cutoff, apt_window, rct_cutoff


class HealthTest(enum.Enum):
    """Which continuous health test failed."""

    RCT = "rct"
    APT = "apt"


_TEST_BY_CODE = {lib.CHAOS_HEALTH_RCT: HealthTest.RCT, lib.CHAOS_HEALTH_APT: HealthTest.APT}


@dataclass(frozen=True)
class HealthFailure:
    """One failure: which test, at which sample (counted since the monitor began)."""

    test: HealthTest
    sample_index: int
    cutoff: int
    count: int


class HealthMonitor:
    """RCT + APT state for one source, with cutoffs from its credited rate."""

    MAX_REPORTED = 64  # failures returned per call; the counters stay exact

    def __init__(self, h: float, bits_per_sample: int, alpha: float = DEFAULT_ALPHA) -> None:
        if not 1 <= bits_per_sample <= 8:
            raise ValueError("bits_per_sample must be 1..8")
        self.h = h
        self.bits_per_sample = bits_per_sample
        self.rct_cutoff = rct_cutoff(h, alpha)
        self.apt_window = apt_window(bits_per_sample)
        self.apt_cutoff = apt_cutoff(h, self.apt_window, alpha)
        self._state = ffi.new("chaos_health_state *")
        self._failures = ffi.new("chaos_health_failure[]", self.MAX_REPORTED)
        lib.chaos_health_init(self._state, self.rct_cutoff, self.apt_cutoff, self.apt_window)

    @property
    def samples(self) -> int:
        """Samples tested so far."""
        return int(self._state.samples)

    @property
    def rct_failures(self) -> int:
        return int(self._state.rct_failures)

    @property
    def apt_failures(self) -> int:
        return int(self._state.apt_failures)

    def c_state(self) -> tuple[Any, Any, int]:
        """(state, failure records, their capacity): for chaos_ingest in the engine's hot path."""
        return self._state, self._failures, self.MAX_REPORTED

    def failures_found(self, found: int) -> list[HealthFailure]:
        """The failure records the last C call wrote, as HealthFailure (``found`` as it returned)."""
        if found == 0:
            return []
        return self._records(found)

    def run(self, samples: np.ndarray | bytes) -> list[HealthFailure]:
        """Test a buffer of samples; return the failures it contained (at most MAX_REPORTED)."""
        buf = np.ascontiguousarray(samples, dtype=np.uint8)
        if buf.ndim != 1:
            raise ValueError("samples must be one-dimensional")
        if buf.size == 0:
            return []
        found = lib.chaos_health_run(
            self._state, ffi.from_buffer("uint8_t[]", buf), buf.size, self._failures, self.MAX_REPORTED
        )
        return self._records(found)

    def _records(self, found: int) -> list[HealthFailure]:
        out = []
        for i in range(min(found, self.MAX_REPORTED)):
            rec = self._failures[i]
            test = _TEST_BY_CODE[rec.test]
            cutoff = self.rct_cutoff if test is HealthTest.RCT else self.apt_cutoff
            out.append(HealthFailure(test, int(rec.index), cutoff, int(rec.count)))
        return out
