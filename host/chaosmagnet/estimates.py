"""Online entropy estimates over a sliding window of a source's samples.

Per window (65,536 samples by default): Shannon entropy, min-entropy by the
most-common-value estimate with its 99% upper confidence bound (SP 800-90B
§6.3.1), and collision (Renyi order 2) entropy.  Only the min-entropy can
ever be credited; the others are reported.  Counts are kept incrementally, so
an update costs O(batch), not O(window).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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
    """Sliding-window symbol counts with the three estimates on demand."""

    def __init__(self, bits_per_sample: int, window: int = 65536) -> None:
        if window < 2:
            raise ValueError("window must hold at least 2 samples")
        self.bits_per_sample = bits_per_sample
        self.window = window
        self._ring = np.zeros(window, dtype=np.uint8)
        self._pos = 0  # next write position
        self._filled = 0
        self._counts = np.zeros(256, dtype=np.int64)
        self._cache: EntropyEstimates | None = None

    @property
    def samples(self) -> int:
        """Samples currently in the window."""
        return self._filled

    def update(self, samples: np.ndarray) -> None:
        """Add samples (uint8) to the window, evicting the oldest."""
        data = np.asarray(samples, dtype=np.uint8)
        if data.size >= self.window:
            data = data[-self.window :]
            self._ring[:] = data
            self._counts[:] = np.bincount(data, minlength=256)
            self._pos, self._filled = 0, self.window
            self._cache = None
            return
        n = data.size
        end = self._pos + n
        evict = max(0, self._filled + n - self.window)
        if evict:
            # the oldest samples, which the write below overwrites
            oldest = (self._pos - self._filled) % self.window
            stop = oldest + evict
            self._counts -= np.bincount(self._ring[oldest : min(stop, self.window)], minlength=256)
            if stop > self.window:
                self._counts -= np.bincount(self._ring[: stop - self.window], minlength=256)
        if end <= self.window:
            self._ring[self._pos : end] = data
        else:
            split = self.window - self._pos
            self._ring[self._pos :] = data[:split]
            self._ring[: n - split] = data[split:]
        self._counts += np.bincount(data, minlength=256)
        self._pos = end % self.window
        self._filled = min(self.window, self._filled + n)
        self._cache = None

    def estimates(self) -> EntropyEstimates:
        """Current Shannon, MCV min- and collision entropy (bits per sample)."""
        if self._cache is None:
            n = self._filled
            self._cache = EntropyEstimates(
                samples=n,
                h_shannon=shannon_entropy(self._counts, n),
                h_min=mcv_min_entropy(self._counts, n),
                h_collision=collision_entropy(self._counts, n),
            )
        return self._cache
