"""Full SP 800-90B assessments of live sources, off the engine's hot path.

The engine hands every batch to ``BackgroundAssessor.feed``; for each source
the assessor copies samples into a preallocated buffer until it holds
``samples_needed`` (1,000,000 by default, the standard's minimum), then runs
the non-IID assessment in a child process (waited for from a worker thread),
one assessment at a time, and reports H_assessed back through a callback.  After ``reassess_seconds`` it
collects a fresh buffer and assesses again, so a source that degrades loses
its credit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ResultCallback = Callable[[str, float], None]
Assess = Callable[[np.ndarray, int], float]


def _noniid_h_assessed(samples: np.ndarray, bits: int) -> float:
    """H_assessed of the samples, computed in a child process (see worker.py)."""
    result = subprocess.run(
        [sys.executable, "-m", "chaosmagnet.assessment.worker", str(bits)],
        input=samples.tobytes(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        last = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"assessment worker exited {result.returncode}: {last[0]}")
    return float(json.loads(result.stdout)["h_assessed"])


@dataclass
class _Collector:
    bits: int
    buffer: np.ndarray
    filled: int = 0
    next_due: float = 0.0  # monotonic time before which nothing is collected
    assessments: int = 0
    running: bool = False


class BackgroundAssessor:
    """Collects samples per source and assesses them in a thread."""

    def __init__(
        self,
        on_result: ResultCallback,
        *,
        samples_needed: int = 1_000_000,
        reassess_seconds: float = 3600.0,
        assess: Assess = _noniid_h_assessed,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.on_result = on_result
        self.samples_needed = samples_needed
        self.reassess_seconds = reassess_seconds
        self._assess = assess
        self._clock = clock
        self._collectors: dict[str, _Collector] = {}
        self._lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.errors: dict[str, str] = {}

    def progress(self, name: str) -> float:
        """Fraction of the next assessment's samples collected (0..1)."""
        c = self._collectors.get(name)
        return c.filled / self.samples_needed if c else 0.0

    def feed(self, name: str, samples: np.ndarray, bits: int) -> None:
        """Copy samples towards the source's next assessment (cheap; no work when idle)."""
        c = self._collectors.get(name)
        if c is None:
            c = self._collectors[name] = _Collector(bits, np.empty(self.samples_needed, dtype=np.uint8))
        if c.running or self._clock() < c.next_due:
            return
        take = min(self.samples_needed - c.filled, samples.size)
        c.buffer[c.filled : c.filled + take] = samples[:take]
        c.filled += take
        if c.filled == self.samples_needed:
            c.running = True
            task = asyncio.get_running_loop().create_task(self._run(name, c), name=f"assess:{name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, name: str, c: _Collector) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        try:
            async with self._lock:  # one assessment at a time: a core stays free
                h = await asyncio.to_thread(self._assess, c.buffer, c.bits)  # not refilled while running
            c.assessments += 1
            self.errors.pop(name, None)
            self.on_result(name, h)
        except Exception as exc:  # an assessment bug must not take the engine down
            self.errors[name] = f"{type(exc).__name__}: {exc}"
        finally:
            c.filled = 0
            c.running = False
            c.next_due = self._clock() + self.reassess_seconds

    async def stop(self) -> None:
        """Cancel pending assessments (a thread already running finishes on its own)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
