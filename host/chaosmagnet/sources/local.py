"""The three local sources every machine has: os-rng, cpu-jitter and system."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class TimerProfile:
    """What the start-up measurement found out about the jitter timer.

    ``step`` is the tick the timer really advances by (2 on virtual machines
    whose time-stamp counter moves in steps of 2): deltas are divided by it,
    so no emitted bit is constant by construction.  ``stuck_share`` is the
    share of measurements that jitterentropy's stuck test rejects (a zero
    first, second or third difference of the deltas).  ``problem`` is empty
    when the timer can carry jitter, else the reason it cannot.
    """

    step: int
    stuck_share: float
    backwards: int
    distinct: int
    measurements: int
    problem: str = ""


STEP_SHARE = 0.9  # a step must divide this share of the deltas (jitterentropy's 90 % rule)
MAX_STEP = 4096
MAX_STUCK_SHARE = 0.9  # jitterentropy refuses a timer whose measurements are stuck more often


def timer_step(deltas: np.ndarray) -> int:
    """The timer's step: the largest g <= 4096 dividing at least 90 % of the deltas.

    On a clean timer this is the exact greatest common divisor; a virtual
    machine that now and then returns an odd tick of a 2-tick counter still
    gets 2, where the exact GCD would be 1 and bit 0 would be 97 % constant.
    """
    d = deltas[deltas > 0].astype(np.uint64)
    if d.size == 0:
        return 1
    exact = int(np.gcd.reduce(d))
    if exact > 1:
        return min(exact, MAX_STEP)
    need = STEP_SHARE * d.size
    for g in range(MAX_STEP, 1, -1):
        if np.count_nonzero(d % np.uint64(g) == 0) >= need:
            return g
    return 1


def to_steps(deltas: np.ndarray, step: int) -> np.ndarray:
    """Deltas in units of the timer's step, rounded to the nearest (a tick off is rounding, not jitter)."""
    if step == 1:
        return deltas
    return (deltas + np.uint64(step // 2)) // np.uint64(step)


def stuck_mask(scaled: np.ndarray, previous: tuple[int, int] | None = None) -> np.ndarray:
    """jitterentropy's stuck test per measurement: a zero first, second or third difference.

    ``previous`` carries the last two deltas of the preceding batch, so the
    test runs across batch boundaries; without it the first two measurements
    are judged on the differences that exist.
    """
    values = scaled.astype(np.int64)
    if previous is not None:
        values = np.concatenate((np.array(previous, dtype=np.int64), values))
    d2 = np.diff(values)
    d3 = np.diff(d2)
    stuck = values == 0
    stuck[1:] |= d2 == 0
    stuck[2:] |= d3 == 0
    return stuck[2:] if previous is not None else stuck


def characterise_timer(deltas: np.ndarray) -> TimerProfile:
    """Measure the timer the way jitterentropy's start-up test does, on raw deltas in ticks."""
    raw = np.asarray(deltas, dtype=np.uint64)
    backwards = int(np.count_nonzero(raw >= np.uint64(1 << 63)))  # t1 < t0 wraps to a huge delta
    sane = raw[raw < np.uint64(1 << 63)]
    step = timer_step(sane)
    scaled = to_steps(sane, step)
    stuck_share = float(stuck_mask(scaled).mean()) if scaled.size else 1.0
    distinct = int(np.unique(scaled).size)
    problem = ""
    if backwards > 3:
        problem = f"the timer ran backwards in {backwards} of {raw.size} measurements"
    elif scaled.size == 0 or not scaled.any():
        problem = "the timer does not advance during a measurement"
    elif distinct < 2:
        problem = f"the timer (step {step} ticks) gives the same duration every time: too coarse to carry jitter"
    elif stuck_share > MAX_STUCK_SHARE:
        problem = (
            f"the timer (step {step} ticks) is too coarse to carry jitter: "
            f"{stuck_share:.0%} of measurements are stuck"
        )
    return TimerProfile(step, stuck_share, backwards, distinct, int(raw.size), problem)


DeltaReader = Callable[[int], np.ndarray]


def _c_deltas(handle: object) -> DeltaReader:
    def read(n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.uint64)
        jitter_lib.chaos_jitter_deltas(handle, jitter_ffi.from_buffer("uint64_t[]", out), n)
        return out

    return read


class CpuJitterSource(PolledSource):
    """Timing deltas of a memory walk, timed in C (csrc/jitter), in units of the timer's step.

    At start the timer is characterised (``characterise_timer``): the deltas
    are divided by its step and the low 8 bits of the quotient are emitted,
    so no bit is constant by construction; a timer too coarse to carry jitter
    makes the source unavailable.  ``measure`` replaces the C measurement
    (tests drive the source with a simulated timer).
    """

    info = SourceInfo(
        name="cpu-jitter",
        kind="local",
        bits_per_sample=8,
        declared_h=0.5,
        description="timing deltas of a memory-access loop over a 4 MiB buffer (C), in timer steps, low 8 bits",
    )
    DEFAULT_RATE = 20000.0
    BUFFER_BYTES = 4 << 20  # far larger than L1 (and L2): cache and TLB misses vary the timing
    STEPS = 128  # memory accesses per measurement
    PROFILE_MEASUREMENTS = 4096
    WARMUP_MEASUREMENTS = 100  # jitterentropy's CLEARCACHE: the first walks fault pages in

    def __init__(self, rate: float = DEFAULT_RATE, measure: DeltaReader | None = None) -> None:
        super().__init__(rate)
        self._handle = None
        self._measure = measure
        self._lock = threading.Lock()
        self.profile: TimerProfile | None = None
        self._tail: tuple[int, int] | None = None
        self.measurements = 0
        self.stuck = 0

    def _reader(self) -> DeltaReader:
        if self._measure is not None:
            return self._measure
        if self._handle is None:
            handle = jitter_lib.chaos_jitter_new(self.BUFFER_BYTES, self.STEPS)
            if handle == jitter_ffi.NULL:
                raise SourceUnavailable("cpu-jitter: cannot allocate the walk buffer")
            self._handle = jitter_ffi.gc(handle, jitter_lib.chaos_jitter_free)
        return _c_deltas(self._handle)

    def _characterise(self) -> TimerProfile:
        if self.profile is None:
            deltas = self._reader()(self.WARMUP_MEASUREMENTS + self.PROFILE_MEASUREMENTS)
            self.profile = characterise_timer(deltas[self.WARMUP_MEASUREMENTS :])
        return self.profile

    def availability(self) -> Availability:
        try:
            profile = self._characterise()
        except SourceUnavailable as exc:
            return Availability(False, str(exc).removeprefix("cpu-jitter: "))
        return Availability(False, profile.problem) if profile.problem else AVAILABLE

    async def start(self) -> None:
        profile = self._characterise()
        if profile.problem:
            raise SourceUnavailable(f"cpu-jitter: {profile.problem}")
        await super().start()

    def read(self, n: int) -> np.ndarray:
        profile = self.profile
        if profile is None or profile.problem:
            raise SourceUnavailable("cpu-jitter: not started")
        with self._lock:
            scaled = to_steps(self._reader()(n), profile.step)
            stuck = stuck_mask(scaled, self._tail)
            if scaled.size >= 2:
                self._tail = (int(scaled[-2]), int(scaled[-1]))
            self.measurements += int(scaled.size)
            self.stuck += int(np.count_nonzero(stuck))
        return (scaled & np.uint64(0xFF)).astype(np.uint8)

    def details(self) -> dict[str, object]:
        facts: dict[str, object] = {"clock": jitter_ffi.string(jitter_lib.chaos_jitter_clock()).decode()}
        if self.profile is not None:
            facts["timer_step"] = self.profile.step
            facts["stuck_share_at_start"] = round(self.profile.stuck_share, 4)
        if self.measurements:
            facts["stuck"] = self.stuck
            facts["stuck_share"] = round(self.stuck / self.measurements, 4)
        return facts


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
        steady_rate=False,  # an idle counter gives no sample: the rate follows the machine's activity
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
