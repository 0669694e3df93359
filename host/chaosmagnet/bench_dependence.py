"""Dependence tracking measured on simulated nodes, in simulated time.

The streams are the simulator's own ADC noise model (chaosmagnet.nodes.
simulator.SimHal, with ``--fault correlated``'s SharedRail for dependent
pairs) driven by a virtual clock: frames of 256 readings every 128 ms with
random phase and jitter, as a node at 2000 samples/s sends them.  A tracker is
fed the low 8 bits (what the host credits) and ticked once a simulated
second, so an hour of a pair runs in seconds.  Used by ``chaos-host bench``,
scripts/bench-dependence and tests/test_dependence.py.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from chaosmagnet.dependence import DependenceEvent, DependenceSettings, DependenceTracker

__all__ = [
    "AdcStream",
    "DetectionRun",
    "FalseGroupingRun",
    "measure_cost",
    "measure_detection",
    "measure_false_grouping",
    "replay",
]

RATE = 2000
BLOCK = 256


class AdcStream:
    """One simulated node's ADC, frame by frame, on a virtual clock."""

    def __init__(self, name: str, seed: int, *, correlated: bool = False, rail_seed: int = 1) -> None:
        from chaosmagnet.nodes.simulator import SharedRail, SimHal

        self.name = name
        self.now = 0.0
        self._rng = np.random.default_rng(seed + 7_000_000)
        rail = None
        if correlated:
            own = math.sqrt(0.5)
            rail = SharedRail(SimHal.LEVEL_STEP * own, SimHal.NOISE_SD * own, RATE, seed=rail_seed, clock=self._clock)
        self.hal = SimHal("correlated" if correlated else None, seed, adc_rate=RATE, rail=rail)
        self._buf = bytearray(2 * BLOCK)
        self.next_at = float(self._rng.uniform(0, BLOCK / RATE))

    def _clock(self) -> float:
        return self.now

    def frame(self) -> tuple[float, np.ndarray]:
        """The next frame: (arrival time, low 8 bits of its readings); advances the stream."""
        self.now = self.next_at
        self.hal.fill_adc(memoryview(self._buf), BLOCK)
        samples = (np.frombuffer(bytes(self._buf), dtype="<u2") & 0xFF).astype(np.uint8)
        arrival = self.now + float(self._rng.exponential(0.004))  # USB and scheduling delay
        self.next_at = self.now + BLOCK / RATE
        return arrival, samples


def replay(
    tracker: DependenceTracker,
    streams: list[AdcStream],
    seconds: float,
    on_events: Callable[[float, list[DependenceEvent]], None] | None = None,
    credit_rates: dict[str, float] | None = None,
    *,
    start: float = 0.0,
) -> int:
    """Feed the streams from ``start`` to ``seconds`` to the tracker, ticking once a second
    (``on_events(t, events)`` after every tick); return samples per stream."""
    heap = [(s.next_at, i) for i, s in enumerate(streams)]
    heapq.heapify(heap)
    pending: list[tuple[float, int, str, np.ndarray]] = []
    order = 0
    next_tick = math.floor(start) + 1.0
    rates = credit_rates or {s.name: 1.0 for s in streams}
    frames = 0
    while next_tick <= seconds:
        _, i = heapq.heappop(heap)
        arrival, samples = streams[i].frame()
        if i == 0:
            frames += 1
        heapq.heappush(heap, (streams[i].next_at, i))
        order += 1
        heapq.heappush(pending, (arrival, order, streams[i].name, samples))
        horizon = min(s.next_at for s in streams)
        while pending and pending[0][0] <= horizon:  # deliver in arrival order, ticking on the way
            t, _, name, batch = heapq.heappop(pending)
            while t >= next_tick and next_tick <= seconds:
                events = tracker.tick(next_tick, rates)
                if on_events is not None:
                    on_events(next_tick, events)
                next_tick += 1.0
            tracker.observe(name, batch, t, 8)
    return frames * BLOCK


@dataclass
class DetectionRun:
    """One correlated pair: when it was grouped, and whether the group was credited once."""

    seed: int
    grouped_at: float | None
    samples_at_grouping: int | None
    credited_once: bool
    found_events: int = 0
    cleared_events: int = 0


def measure_detection(
    seeds: range, seconds: float = 300.0, settings: DependenceSettings | None = None
) -> list[DetectionRun]:
    """Two nodes sharing half their noise, per seed: the tick at which they were grouped."""
    runs = []
    for seed in seeds:
        tracker = DependenceTracker(settings)
        streams = [
            AdcStream("a", 2 * seed, correlated=True, rail_seed=seed),
            AdcStream("b", 2 * seed + 1, correlated=True, rail_seed=seed),
        ]
        found: list[float] = []
        cleared = [0]

        def on_events(
            t: float, events: list[DependenceEvent], found: list[float] = found, cleared: list[int] = cleared
        ) -> None:
            for e in events:
                if e.kind == "dependence_found":
                    found.append(t)
                else:
                    cleared[0] += 1

        replay(tracker, streams, seconds, on_events, {"a": 2.0, "b": 1.0})
        factors = (tracker.credit_factor("a"), tracker.credit_factor("b"))
        at = found[0] if found else None
        runs.append(
            DetectionRun(
                seed,
                at,
                int(at * RATE) if at is not None else None,
                factors == (1.0, 0.0),
                len(found),
                cleared[0],
            )
        )
    return runs


@dataclass
class FalseGroupingRun:
    """Independent nodes: groupings found, tests run, and how the p-values fall (calibration)."""

    sources: int
    seconds: float
    pair_hours: float
    false_groupings: int
    tests: int
    p_values: list[float] = field(default_factory=list)

    @property
    def rate_per_pair_hour(self) -> float:
        """Observed false groupings per pair per hour."""
        return self.false_groupings / self.pair_hours if self.pair_hours else 0.0

    @property
    def upper_95(self) -> float:
        """95 % upper bound of the rate (rule of three when none was seen)."""
        return (
            3.0 if self.false_groupings == 0 else self.false_groupings + 2.0 * math.sqrt(self.false_groupings)
        ) / self.pair_hours

    def fraction_below(self, p: float) -> float:
        """Share of pair tests whose p-value fell below p (about p, or less, when calibrated)."""
        return sum(1 for v in self.p_values if v < p) / len(self.p_values) if self.p_values else 0.0

    @property
    def extrapolated_rate(self) -> float:
        """Per pair per hour: tests per pair-hour x join_p x (observed / nominal share below 1e-3, at least 1)."""
        tests_per_pair_hour = self.tests / self.pair_hours if self.pair_hours else 0.0
        calibration = max(1.0, self.fraction_below(1e-3) / 1e-3)
        return tests_per_pair_hour * DependenceSettings().join_p * calibration


def measure_false_grouping(
    sources: int, seconds: float, seed: int = 0, settings: DependenceSettings | None = None
) -> FalseGroupingRun:
    """``sources`` independent nodes for ``seconds`` of simulated time."""
    tracker = DependenceTracker(settings)
    streams = [AdcStream(f"n{i:02d}", 1000 * seed + i) for i in range(sources)]
    found = [0]
    p_values: list[float] = []

    def on_tick(t: float, events: list[DependenceEvent]) -> None:
        found[0] += sum(1 for e in events if e.kind == "dependence_found")
        p_values.extend(r.p_value for r in tracker.last_tested)

    replay(tracker, streams, seconds, on_tick)
    pairs = sources * (sources - 1) // 2
    return FalseGroupingRun(sources, seconds, pairs * seconds / 3600.0, found[0], len(p_values), p_values)


@dataclass
class CostFigures:
    """CPU time (process time, so other load on the machine does not count) of dependence
    tracking in steady state."""

    sources: int
    pairs: int
    per_source_ms: float  # binning, per source per tick
    per_pair_ms: float  # one pair test
    per_tick_ms: float  # one tick with the default schedule
    core_percent: float  # per_tick_ms / 1000 ms (one tick a second)
    observe_us: float  # the hot-path part, per batch


def measure_cost(sources: int = 16, warm_seconds: float = 150.0, ticks: int = 20) -> CostFigures:
    """Fill a tracker with ``sources`` simulated nodes, then time ticks, pair tests and observe()."""
    tracker = DependenceTracker()
    streams = [AdcStream(f"n{i:02d}", 500 + i) for i in range(sources)]
    replay(tracker, streams, warm_seconds)
    # one tick's worth of batches, kept to replay into the timed ticks
    batches = [(s.name, s.frame()) for s in streams for _ in range(8)]
    t0 = time.process_time()
    for name, (t, b) in batches:
        tracker.observe(name, b, t, 8)
    observe_us = (time.process_time() - t0) / len(batches) * 1e6
    tick_times, bin_times = [], []
    now = warm_seconds + 1.0
    for _ in range(ticks):
        for name, (_, b) in batches:
            tracker.observe(name, b, now - 0.5, 8)
        start = time.process_time()
        tracker.tick(now)
        tick_times.append(time.process_time() - start)
        now += 1.0
    # binning alone: a tick with no pair due (pairs_per_tick tests are the rest)
    for name, (_, b) in batches:
        tracker.observe(name, b, now - 0.5, 8)
    saved = tracker.settings
    tracker.settings = DependenceSettings(pairs_per_tick=1)
    start = time.process_time()
    tracker.tick(now)
    bin_times.append(time.process_time() - start)
    tracker.settings = saved
    pairs = tracker.pairs()
    start = time.process_time()
    for pair in pairs[:32]:
        tracker._test(pair, now)  # noqa: SLF001 - timing one pair test
    per_pair = (time.process_time() - start) / min(32, len(pairs)) * 1000
    per_tick = float(np.median(tick_times)) * 1000
    per_source = max(0.0, (bin_times[0] * 1000 - per_pair) / sources)
    return CostFigures(sources, len(pairs), per_source, per_pair, per_tick, per_tick / 10.0, observe_us)
