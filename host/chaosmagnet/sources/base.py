"""The one interface every entropy source implements.

A source delivers *raw* samples (never whitened) as numpy uint8 arrays, one
sample per element, the low ``bits_per_sample`` bits meaningful.  The engine
health-tests, estimates, credits and pools them; a source only samples.

Two ways to write one:

* ``PolledSource``: a blocking ``read(n)`` (a C call, a device read); the base
  class runs it in a worker thread at the configured rate.
* Subclass ``Source`` and implement ``batches()`` as an async generator, for
  push-style sources (a serial link, a capture callback).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SourceInfo:
    """What a source is, as declared by its author.

    declared_h is the conservative min-entropy per sample the author claims;
    it sets the health-test cutoffs and caps the credit.  A conditioned source
    (the OS RNG, a vendor-whitened hardware RNG) is mixed with zero credit
    unless the configuration says otherwise.  steady_rate is False for a source
    whose sample rate follows outside activity (counters that change, input
    events): the anomaly detector then does not watch its rate.
    """

    name: str
    kind: str  # "local", "node", ...
    bits_per_sample: int
    declared_h: float
    conditioned: bool = False
    description: str = ""
    steady_rate: bool = True


@dataclass(frozen=True)
class Availability:
    """Whether a source can run here, and if not, why (shown to the user)."""

    available: bool
    reason: str = ""


AVAILABLE = Availability(True)


class Source(ABC):
    """A source of raw samples.  Subclasses set ``info``."""

    info: SourceInfo

    @property
    def name(self) -> str:
        return self.info.name

    def availability(self) -> Availability:
        """Say whether this source can run on this machine; cheap, no side effects."""
        return AVAILABLE

    def waiting_reason(self) -> str | None:
        """Why a started source cannot deliver now (its device link is down), or None.

        While it is not None the engine shows the source as ``waiting`` and
        credits nothing from it (a node that is not linked).
        """
        return None

    async def start(self) -> None:  # noqa: B027 - a hook: most sources need nothing here
        """Acquire the device or library; raise SourceUnavailable when it cannot."""

    async def stop(self) -> None:  # noqa: B027 - a hook: most sources need nothing here
        """Release everything start() acquired; safe to call twice."""

    @abstractmethod
    def batches(self) -> AsyncIterator[np.ndarray]:
        """Yield uint8 arrays of raw samples until stopped."""

    def details(self) -> dict[str, object]:
        """Source-specific facts for the live view (device name, frame rate...)."""
        return {}


class PolledSource(Source):
    """A source with a blocking ``read(n)``, paced to ``rate`` samples per second."""

    def __init__(self, rate: float, batch_seconds: float = 0.1) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.batch_seconds = batch_seconds
        self._running = False

    @abstractmethod
    def read(self, n: int) -> np.ndarray:
        """Block until up to n raw samples are available and return them."""

    async def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        self._running = False

    async def batches(self) -> AsyncIterator[np.ndarray]:
        next_at = time.monotonic()
        while self._running:
            per_batch = max(1, int(self.rate * self.batch_seconds))  # the rate may be reloaded
            samples = await asyncio.to_thread(self.read, per_batch)
            if len(samples):
                yield samples
            next_at += len(samples) / self.rate if len(samples) else self.batch_seconds
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                next_at = time.monotonic()  # fell behind: don't try to catch up in a burst
