"""Scripted sources and sample batches for tests that drive the Engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
from chaosmagnet.sources.base import Source, SourceInfo


class ScriptedSource(Source):
    """Yields the given batches, then idles until stopped."""

    def __init__(
        self, name: str, batches: list[np.ndarray], declared_h: float = 2.0, conditioned: bool = False
    ) -> None:
        self.info = SourceInfo(
            name=name, kind="test", bits_per_sample=8, declared_h=declared_h, conditioned=conditioned
        )
        self._batches = batches
        self.stopped = False

    async def batches(self) -> AsyncIterator[np.ndarray]:
        for batch in self._batches:
            yield batch
            await asyncio.sleep(0)
        while True:
            await asyncio.sleep(3600)

    async def stop(self) -> None:
        self.stopped = True


def uniform(n: int, seed: int = 0) -> np.ndarray:
    """n uniformly random bytes (a healthy source's batch)."""
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)
