"""Online entropy estimates over a sliding window of a source's samples.

Per window (65,536 samples by default): Shannon entropy, min-entropy by the
most-common-value estimate with its 99% upper confidence bound (SP 800-90B
§6.3.1), and collision (Renyi order 2) entropy.  Only the min-entropy can
ever be credited; the others are reported.  Counts are kept incrementally by
the C kernel (csrc/health/ingest.c), so an update costs O(batch), not
O(window); the engine updates them in the same C call as the health tests
and the absorb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from chaosmagnet._health import ffi as _health_ffi
from chaosmagnet._health import lib as _health_lib

Z_99 = 2.576  # the standard's constant for the 99% upper bound


@dataclass(frozen=True)
class EntropyEstimates:
    """Estimates in bits per sample over the current window."""

    samples: int
    h_shannon: float
    h_min: float
    h_collision: float


def mcv_min_entropy(counts: np.ndarray, n: int) -> float:
    """SP 800-90B §6.3.1: -log2 of the 99% upper bound on the most common value's probability."""
    if n < 2:
        return 0.0
    p_hat = float(counts.max()) / n
    p_u = min(1.0, p_hat + Z_99 * math.sqrt(p_hat * (1.0 - p_hat) / (n - 1)))
    return -math.log2(p_u) if p_u > 0 else 0.0


def shannon_entropy(counts: np.ndarray, n: int) -> float:
    """Plug-in Shannon entropy in bits per sample."""
    if n == 0:
        return 0.0
    p = counts[counts > 0] / n
    return float(-(p * np.log2(p)).sum())


def collision_entropy(counts: np.ndarray, n: int) -> float:
    """Plug-in Renyi entropy of order 2 in bits per sample."""
    if n == 0:
        return 0.0
    p = counts / n
    s = float((p * p).sum())
    return -math.log2(s) if s > 0 else 0.0


class OnlineEstimator:
    """Sliding-window symbol counts (kept by the C kernel) with the three estimates on demand."""

    def __init__(self, bits_per_sample: int, window: int = 65536) -> None:
        if window < 2:
            raise ValueError("window must hold at least 2 samples")
        if window >= 2**32:
            raise ValueError("window must hold fewer than 2**32 samples")
        self.bits_per_sample = bits_per_sample
        self.window = window
        self._ring = _health_ffi.new("uint8_t[]", window)
        self._state = _health_ffi.new("chaos_window_counts *")
        _health_lib.chaos_window_init(self._state, self._ring, window)
        # a view of the C counts: always current, never copied
        self._counts = np.frombuffer(_health_ffi.buffer(self._state.counts), dtype=np.int64)
        self._cache: EntropyEstimates | None = None
        self._h_min: float | None = None

    @property
    def samples(self) -> int:
        """Samples currently in the window."""
        return int(self._state.filled)

    def c_state(self) -> Any:
        """The window's C state, for chaos_ingest (which updates it in the engine's hot path)."""
        return self._state

    def recent(self, n: int) -> np.ndarray:
        """A copy of the last n samples added (at most the window), oldest first."""
        n = max(0, min(int(n), int(self._state.filled)))
        pos = int(self._state.pos)
        ring = np.frombuffer(_health_ffi.buffer(self._ring), dtype=np.uint8)
        if n <= pos:
            return ring[pos - n : pos].copy()
        return np.concatenate((ring[ring.size - (n - pos) :], ring[:pos]))

    def changed(self) -> None:
        """Forget cached estimates: the window was updated through c_state()."""
        self._cache = None
        self._h_min = None

    def update(self, samples: np.ndarray) -> None:
        """Add samples (uint8) to the window, evicting the oldest."""
        data = np.ascontiguousarray(samples, dtype=np.uint8)
        if data.size:
            _health_lib.chaos_window_update(self._state, _health_ffi.from_buffer("uint8_t[]", data), data.size)
        self.changed()

    def h_min(self) -> float:
        """The MCV min-entropy alone (what credit needs), without the other two estimates."""
        if self._h_min is None:
            n = int(self._state.filled)
            if n < 2:
                self._h_min = 0.0
            else:
                p_hat = float(_health_lib.chaos_window_max(self._state)) / n
                p_u = min(1.0, p_hat + Z_99 * math.sqrt(p_hat * (1.0 - p_hat) / (n - 1)))
                self._h_min = -math.log2(p_u) if p_u > 0 else 0.0
        return self._h_min

    def estimates(self) -> EntropyEstimates:
        """Current Shannon, MCV min- and collision entropy (bits per sample)."""
        if self._cache is None:
            n = int(self._state.filled)
            self._cache = EntropyEstimates(
                samples=n,
                h_shannon=shannon_entropy(self._counts, n),
                h_min=mcv_min_entropy(self._counts, n),
                h_collision=collision_entropy(self._counts, n),
            )
        return self._cache
