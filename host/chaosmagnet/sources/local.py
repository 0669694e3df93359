"""The three local sources every machine has: os-rng, cpu-jitter and system."""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from chaosmagnet._jitter import ffi as jitter_ffi
from chaosmagnet._jitter import lib as jitter_lib
from chaosmagnet.errors import SourceUnavailable
from chaosmagnet.sources.base import AVAILABLE, Availability, PolledSource, SourceInfo
from chaosmagnet.sources.registry import SourceOptions, register


class OsRngSource(PolledSource):
    """Bytes from the OS CSPRNG (getrandom).  Conditioned: mixed, credited 0 by default."""

    info = SourceInfo(
        name="os-rng",
        kind="local",
        bits_per_sample=8,
        declared_h=8.0,
        conditioned=True,
        description="OS CSPRNG bytes (os.urandom); conditioned, so credited 0 unless configured",
    )
    DEFAULT_RATE = 4096.0

    def read(self, n: int) -> np.ndarray:
        return np.frombuffer(os.urandom(n), dtype=np.uint8)


class CpuJitterSource(PolledSource):
    """Low 8 bits of the duration of a memory walk, timed in C (csrc/jitter)."""

    info = SourceInfo(
        name="cpu-jitter",
        kind="local",
        bits_per_sample=8,
        declared_h=0.5,
        description="low 8 bits of timing deltas of a memory-access loop over a 4 MiB buffer (C)",
    )
    DEFAULT_RATE = 20000.0
    BUFFER_BYTES = 4 << 20  # far larger than L1 (and L2): cache and TLB misses vary the timing
    STEPS = 128  # memory accesses per measurement

    def __init__(self, rate: float = DEFAULT_RATE) -> None:
        super().__init__(rate)
        self._handle = None
        self._lock = threading.Lock()

    async def start(self) -> None:
        handle = jitter_lib.chaos_jitter_new(self.BUFFER_BYTES, self.STEPS)
        if handle == jitter_ffi.NULL:
            raise SourceUnavailable("cpu-jitter: cannot allocate the walk buffer")
        self._handle = jitter_ffi.gc(handle, jitter_lib.chaos_jitter_free)
        await super().start()

    async def stop(self) -> None:
        await super().stop()

    def read(self, n: int) -> np.ndarray:
        if self._handle is None:
            raise SourceUnavailable("cpu-jitter: not started")
        out = np.empty(n, dtype=np.uint8)
        with self._lock:
            jitter_lib.chaos_jitter_sample(self._handle, jitter_ffi.from_buffer("uint8_t[]", out), n)
        return out

    def details(self) -> dict[str, object]:
        return {"clock": jitter_ffi.string(jitter_lib.chaos_jitter_clock()).decode()}


class SystemSource(PolledSource):
    """Low 8 bits of the changes of psutil counters between polls.

    Counters: per-CPU times (in clock ticks), context switches, interrupts,
    soft interrupts, syscalls, memory (in pages), disk and network I/O.  A
    counter that did not change gives no sample: an idle counter is not noise.
    """

    info = SourceInfo(
        name="system",
        kind="local",
        bits_per_sample=8,
        declared_h=0.5,
        description="low 8 bits of deltas of CPU, context-switch, memory, disk and network counters",
    )
    DEFAULT_RATE = 400.0  # an estimate of samples per second; polls happen every POLL_SECONDS
    POLL_SECONDS = 0.05

    def __init__(self, rate: float = DEFAULT_RATE) -> None:
        super().__init__(rate, batch_seconds=0.25)
        self._previous: np.ndarray | None = None
        self._psutil = None

    def availability(self) -> Availability:
        try:
            import psutil  # noqa: F401
        except ImportError:
            return Availability(False, "psutil is not installed")
        return AVAILABLE

    async def start(self) -> None:
        try:
            import psutil
        except ImportError as exc:
            raise SourceUnavailable("system: psutil is not installed") from exc
        self._psutil = psutil
        self._previous = self._counters()
        await super().start()

    def _counters(self) -> np.ndarray:
        ps = self._psutil
        values: list[int] = []
        for cpu in ps.cpu_times(percpu=True):
            values.extend(round(v * 100) for v in cpu)  # USER_HZ ticks
        stats = ps.cpu_stats()
        values.extend((stats.ctx_switches, stats.interrupts, stats.soft_interrupts, stats.syscalls))
        mem = ps.virtual_memory()
        values.extend(v // 4096 for v in mem[:])  # bytes -> pages, so low bits move
        disk = ps.disk_io_counters()
        if disk is not None:
            values.extend(disk[:])
        net = ps.net_io_counters()
        if net is not None:
            values.extend(net[:])
        return np.array([int(v) for v in values], dtype=np.int64)

    def read(self, n: int) -> np.ndarray:
        """Poll until n samples (or the batch time) are gathered."""
        chunks = []
        got = 0
        deadline = time.monotonic() + self.batch_seconds
        while got < n and time.monotonic() < deadline:
            time.sleep(self.POLL_SECONDS)
            current = self._counters()
            previous = self._previous
            self._previous = current
            if previous is None or previous.shape != current.shape:
                continue
            delta = current - previous
            changed = delta[delta != 0]
            if changed.size:
                chunks.append((changed & 0xFF).astype(np.uint8))
                got += changed.size
        if not chunks:
            return np.empty(0, dtype=np.uint8)
        return np.concatenate(chunks)[:n]


def _rate(options: SourceOptions, name: str, default: float) -> float:
    return float(options.rates.get(name, default))


register("os-rng", lambda o: OsRngSource(_rate(o, "os-rng", OsRngSource.DEFAULT_RATE)), default_on=True)
register(
    "cpu-jitter",
    lambda o: CpuJitterSource(_rate(o, "cpu-jitter", CpuJitterSource.DEFAULT_RATE)),
    default_on=True,
)
register("system", lambda o: SystemSource(_rate(o, "system", SystemSource.DEFAULT_RATE)), default_on=True)
