"""An offline run of a simulated node's ADC through the health tests and the anomaly model.

No pty, no firmware, no wall clock: the simulator's noise (SimHal) is drawn at
the board's rate in simulated seconds, the host's view of it (low 8 bits) goes
through the same RCT/APT and the same per-interval features the engine's tick
computes, and the timeline says when the anomaly was raised and cleared and
when (if ever) a health test tripped.  Tests, ``chaos-host bench`` and
scripts/bench-anomaly measure detection delays and false alarms with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chaosmagnet.anomaly import AnomalySettings, AnomalyTracker, NodeCounters, node_features, source_features
from chaosmagnet.health import HealthMonitor
from chaosmagnet.nodes import faults
from chaosmagnet.nodes.faults import FaultWindow

ADC_RATE = 2000  # samples/s of the default board's ADC
ADC_BLOCK = 256  # samples per frame
ADC_DECLARED_H = 1.0


@dataclass
class FaultRun:
    """What happened, in simulated seconds since the start."""

    seconds: int
    raised: list[float] = field(default_factory=list)  # when an anomaly was raised
    cleared: list[float] = field(default_factory=list)  # when it was cleared
    reasons: list[str] = field(default_factory=list)  # the reason at each raise
    first_health_failure: float | None = None  # first RCT/APT failure
    node_raised: list[float] = field(default_factory=list)  # the node model's raises
    reason_log: list[tuple[float, str]] = field(default_factory=list)  # (when, reason) each time it changed

    @property
    def false_alarms(self) -> int:
        """Raises of a clean run (all of them)."""
        return len(self.raised) + len(self.node_raised)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_fault(
    fault: str | None,
    seconds: int,
    *,
    window: FaultWindow | None = None,
    seed: int = 1,
    settings: AnomalySettings | None = None,
) -> FaultRun:
    """Simulate ``seconds`` 1-s intervals of the ADC source (and its node) with ``fault`` in ``window``."""
    from chaosmagnet.nodes.simulator import SimHal

    clock = _Clock()
    hal = SimHal(fault, seed, window=window, clock=clock)
    monitor = HealthMonitor(ADC_DECLARED_H, 8)
    tracker = AnomalyTracker(settings or AnomalySettings())
    run = FaultRun(seconds)
    owed = 0.0
    frames = 0
    buf = bytearray(2 * ADC_BLOCK)
    for second in range(seconds):
        clock.now = float(second)
        rate = ADC_RATE * (faults.SAG_FACTOR if fault == "sag" and hal.fault_time() is not None else 1.0)
        owed += rate / ADC_BLOCK
        blocks = int(owed)
        owed -= blocks
        chunks = []
        for _ in range(blocks):
            hal.fill_adc(memoryview(buf), ADC_BLOCK)
            chunks.append((np.frombuffer(bytes(buf), dtype="<u2") & 0xFF).astype(np.uint8))
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.uint8)
        previous = NodeCounters(frames, 0)
        frames += blocks + 1  # and a heartbeat
        if samples.size and monitor.run(samples) and run.first_health_failure is None:
            run.first_health_failure = float(second)
        features = source_features(
            samples,
            1.0,
            8,
            rct_cutoff=monitor.rct_cutoff,
            apt_cutoff=monitor.apt_cutoff,
            apt_window=monitor.apt_window,
            declared_h=ADC_DECLARED_H,
        )
        verdict = tracker.observe("node:sim:adc", features, float(second))
        if verdict.reason and (not run.reason_log or run.reason_log[-1][1] != verdict.reason):
            run.reason_log.append((float(second), verdict.reason))
        if verdict.changed:
            (run.raised if verdict.active else run.cleared).append(float(second))
            if verdict.active:
                run.reasons.append(verdict.reason)
        node_verdict = tracker.observe(
            "node:sim", node_features(previous, NodeCounters(frames, 0), 1.0), float(second), node=True
        )
        if node_verdict.changed and node_verdict.active:
            run.node_raised.append(float(second))
    return run
