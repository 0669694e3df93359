"""Measuring the conditioned side: entropy estimates of pool output.

``OutputProbe`` seeds one OutputGenerator (the construction behind
`chaos-host random`) from the pool, once, and never reseeds it; each tick it
generates a few KB and feeds them to the same online estimator the raw
sources use (MCV min-entropy, Shannon, collision over a sliding window).

What this shows honestly: that the conditioner's output looks uniform
(close to 8 bits per byte, a little below because of the 99% confidence
bound on a finite sample).  A sound conditioner looks like this whatever
goes in, so it is never evidence of entropy: credit comes only from the raw
estimates.  The probe costs one 256-bit draw from the pool; the bytes it
measures are discarded and never served.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chaosmagnet.errors import PoolError
from chaosmagnet.estimates import OnlineEstimator
from chaosmagnet.output import SEED_BITS, OutputGenerator
from chaosmagnet.pool import EntropyPool


class OutputProbe:
    """Entropy estimates over output of a generator seeded once from the pool."""

    def __init__(
        self, pool: EntropyPool, *, bytes_per_tick: int = 4096, window: int = 65536
    ) -> None:
        self.pool = pool
        self.bytes_per_tick = bytes_per_tick
        self._generator = OutputGenerator(pool, reseed_bytes=1 << 62, reseed_seconds=math.inf)
        self._estimator = OnlineEstimator(8, window)
        self.bytes_measured = 0

    def __repr__(self) -> str:
        return f"<OutputProbe seeded={self.seeded} measured={self.bytes_measured}>"

    @property
    def seeded(self) -> bool:
        """Whether the probe has drawn its seed from the pool yet."""
        return self._generator.seeded

    def tick(self) -> None:
        """Seed once the pool holds 256 credited bits; then measure ``bytes_per_tick`` bytes."""
        if not self._generator.seeded:
            if self.pool.credited_bits < SEED_BITS:
                return
            try:
                self._generator.seed()
            except PoolError:
                return  # credit was drawn meanwhile; try on the next tick
        block = self._generator.generate(self.bytes_per_tick)
        self._estimator.update(np.frombuffer(block, dtype=np.uint8))
        self.bytes_measured += len(block)

    def estimates(self) -> dict[str, Any]:
        """Bits per output byte over the window (None before the seed), with the sample size."""
        if not self.seeded or self._estimator.samples == 0:
            return {
                "seeded": self.seeded,
                "samples": 0,
                "h_min": None,
                "h_shannon": None,
                "h_collision": None,
            }
        est = self._estimator.estimates()
        return {
            "seeded": True,
            "samples": est.samples,
            "h_min": est.h_min,
            "h_shannon": est.h_shannon,
            "h_collision": est.h_collision,
        }
