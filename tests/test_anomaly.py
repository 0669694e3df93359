"""Anomaly detection on features (chaosmagnet.anomaly): features, charts, the simulator's
faults (raised before the RCT/APT trip, cleared when the fault ends), the false-alarm
bound on clean runs, and the engine's quarantine hold."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from chaosmagnet.anomaly import (
    AnomalyModel,
    AnomalySettings,
    NodeCounters,
    fisher_g,
    node_counters,
    node_features,
    source_features,
)
from chaosmagnet.config import Config, ConfigError, parse_config
from chaosmagnet.engine import Engine
from chaosmagnet.eventlog import JsonLineLog
from chaosmagnet.health import HealthPolicy, SourceState
from chaosmagnet.nodes.faults import FAULTS, FaultWindow
from chaosmagnet.nodes.faultsim import run_fault
from source_helpers import ScriptedSource

CUTOFFS = {"rct_cutoff": 21, "apt_cutoff": 311, "apt_window": 512, "declared_h": 1.0}


def test_features_of_known_intervals() -> None:
    uniform = (np.arange(4096) % 256).astype(np.uint8)  # every value 16 times, no runs
    f = source_features(uniform, 2.0, 8, **CUTOFFS)
    assert f["rate"] == 2048.0
    assert f["h_min"] == pytest.approx(8.0) and f["h_collision"] == pytest.approx(8.0)
    assert f["rct_near"] == 0 and f["apt_near"] == 0
    stuck = np.zeros(4096, dtype=np.uint8)
    f = source_features(stuck, 1.0, 8, **CUTOFFS)
    assert f["h_min"] == 0.0 and f["h_collision"] == 0.0
    assert f["rct_near"] == 1  # one run of 4096, past half the cutoff
    assert f["apt_near"] == 8  # every 512-window's first value fills it
    few = source_features(uniform[:10], 1.0, 8, **CUTOFFS)
    assert few["rate"] == 10 and math.isnan(few["h_min"])  # too few samples for entropy
    assert source_features(uniform[:100], 1.0, 8, count=5000, **CUTOFFS)["rate"] == 5000


def test_node_features_from_counters() -> None:
    details = {"frames": 10, "drops": {"bad_tag": 2}, "lost_frames": 1, "queue_overflows": 0}
    assert node_counters(details) == NodeCounters(10, 3)
    assert node_counters({"port": "x"}) is None
    f = node_features(NodeCounters(10, 3), NodeCounters(18, 5), 2.0)
    assert f == {"frame_interval": 0.25, "drops": 2.0}


def test_fisher_g_finds_a_period_and_not_noise() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(60)
    p, period, amplitude = fisher_g(np.sin(2 * np.pi * t / 7.5) * 3 + rng.normal(0, 1, 60))
    assert p < 1e-7 and period == pytest.approx(7.5, abs=0.2) and amplitude > 2
    p, _, _ = fisher_g(rng.normal(0, 1, 60))
    assert p > 1e-3
    p, _, _ = fisher_g(np.linspace(0, 10, 60) + rng.normal(0, 1, 60))  # a ramp is not a period
    assert p > 1e-3


def test_one_outlier_never_raises_and_a_shift_does() -> None:
    model = AnomalyModel(("x",), AnomalySettings(warmup=20))
    rng = np.random.default_rng(1)
    for t in range(40):
        assert not model.observe({"x": float(rng.normal(10, 1))}, t).active
    assert not model.observe({"x": 1000.0}, 40).active  # clipped: one wild value is not sustained
    raised = None
    for t in range(41, 80):
        verdict = model.observe({"x": float(rng.normal(14, 1))}, t)
        if verdict.active:
            raised = t
            break
    assert raised is not None and raised - 41 < 10
    assert "rose" in model.reason and "above its baseline" in model.reason


def test_a_wandering_feature_is_not_charted() -> None:
    model = AnomalyModel(("x",))  # the default 60-interval warm-up
    walk = np.cumsum(np.random.default_rng(2).normal(0, 1, 400))
    for t, x in enumerate(walk):
        assert not model.observe({"x": float(x)}, t).active
    assert not model.charts["x"].charted and model.state == "watching"
    # a later stretch that holds still is charted
    rng = np.random.default_rng(4)
    for t in range(400, 600):
        model.observe({"x": float(rng.normal(0, 1))}, t)
    assert model.charts["x"].charted


FAULT_START, FAULT_LENGTH = 100, 150


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("drift", "min-entropy fell"), ("periodic", "periodic component at 10.0 s"), ("sag", "rate fell")],
)
@pytest.mark.parametrize("seed", [1, 2])
def test_each_fault_raises_before_the_health_tests_and_clears_when_it_ends(fault: str, reason: str, seed: int) -> None:
    run = run_fault(fault, 360, window=FaultWindow(FAULT_START, FAULT_LENGTH), seed=seed)
    assert len(run.raised) == 1, run
    raised = run.raised[0]
    assert FAULT_START <= raised < FAULT_START + FAULT_LENGTH
    # the RCT and APT have not tripped when the anomaly is raised (nor at all: these faults pass them)
    assert run.first_health_failure is None or run.first_health_failure > raised
    assert run.first_health_failure is None
    assert len(run.cleared) == 1 and FAULT_START + FAULT_LENGTH <= run.cleared[0] <= FAULT_START + FAULT_LENGTH + 60
    assert any(reason in text for _, text in run.reason_log), run.reason_log


def test_drift_is_named_a_drift_once_it_has_crept_for_a_while() -> None:
    run = run_fault("drift", 300, window=FaultWindow(100))
    assert any(text.startswith("bias drifting: min-entropy fell") for _, text in run.reason_log), run.reason_log


def test_a_sag_slows_the_node_frames_too() -> None:
    run = run_fault("sag", 200, window=FaultWindow(100, 50))
    assert run.node_raised and FAULT_START <= run.node_raised[0] < 150


def test_no_false_alarm_on_a_clean_two_hour_run() -> None:
    # 7200 intervals with ~7 charted features and the periodic test each: the bound is
    # none at all (scripts/bench-anomaly measures the rate over longer runs).
    run = run_fault(None, 7200, seed=11)
    assert run.false_alarms == 0, (run.raised, run.node_raised, run.reasons)


def test_fault_names_and_windows() -> None:
    assert {"drift", "periodic", "sag", "stuck", "bias", "garbage", "replay"} <= set(FAULTS)
    window = FaultWindow(10, 5)
    assert window.elapsed_in_fault(9.9) is None and window.elapsed_in_fault(12) == 2
    assert window.elapsed_in_fault(15) is None
    with pytest.raises(ValueError):
        FaultWindow(-1)


def test_policy_hold_quarantines_without_counting_a_failure() -> None:
    policy = HealthPolicy()
    policy.hold("anomaly: rate fell")
    assert policy.observe([], 100) is SourceState.QUARANTINED
    assert policy.reason == "anomaly: rate fell" and policy.state is SourceState.OK
    policy.clear()  # an operator's clear forgets failures; the hold is the detector's to release
    assert policy.current() is SourceState.QUARANTINED
    policy.release()
    assert policy.observe([], 200) is SourceState.OK and policy.reason == ""


def _metrics(engine: Engine) -> str:
    """/metrics for the engine's snapshot (what the dashboard serves)."""
    from chaosmagnet.dashboard.metrics import render_metrics

    snapshot = engine.snapshot()
    snapshot["pool"]["output"] = {"seeded": False, "samples": 0}
    snapshot["pool"]["healthy_credited_bits"] = engine.healthy_credited_bits()
    snapshot["nodes"] = []
    return render_metrics(snapshot)


def _tick_engine(engine: Engine, batches: list[np.ndarray], clock: list[float], name: str = "adc") -> list[dict]:
    shown = []
    for batch in batches:
        engine.ingest(name, batch)
        clock[0] += 1.0
        engine.tick(1.0)
        shown.append(engine.source_states()[name])
    return shown


def test_engine_holds_an_anomalous_source_in_quarantine_and_releases_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    clock = [0.0]
    log = JsonLineLog(tmp_path / "health.jsonl")
    engine = Engine(
        [ScriptedSource("adc", [], declared_h=1.0)],
        Config(min_samples=1024, anomaly_warmup=20),
        health_log=log,
        clock=lambda: clock[0],
    )

    def interval(n: int) -> np.ndarray:
        return np.rint(128 + rng.normal(0, 3, n)).astype(np.uint8)  # a readout noise of 3 LSB

    shown = _tick_engine(engine, [interval(2000) for _ in range(40)], clock)
    assert shown[-1]["state"] == "ok" and shown[-1]["anomaly"]["state"] == "watching"
    assert shown[-1]["credit_h"] > 0
    shown = _tick_engine(engine, [interval(600) for _ in range(15)], clock)  # the rate sags
    first = next(i for i, s in enumerate(shown) if s["state"] == "quarantined")
    held = shown[first]
    assert held["reason"].startswith("anomaly: rate fell") and held["anomaly"]["active"]
    assert held["rct_failures"] == 0 and held["apt_failures"] == 0  # the health tests never tripped
    assert shown[first + 1]["credit_h"] == 0.0  # the next batch, quarantined, earned nothing
    metrics = _metrics(engine)
    assert 'chaosmagnet_source_anomaly_active{source="adc"} 1' in metrics
    assert 'chaosmagnet_source_anomaly_score{source="adc"}' in metrics
    shown = _tick_engine(engine, [interval(2000) for _ in range(60)], clock)
    assert shown[-1]["state"] == "ok" and not shown[-1]["anomaly"]["active"], [
        (s["state"], s["reason"], s["anomaly"]) for s in shown[::10]
    ]
    log.close()
    events = [json.loads(line)["event"] for line in (tmp_path / "health.jsonl").read_text().splitlines()]
    assert events.count("anomaly_raised") == 1 and events.count("anomaly_cleared") == 1


def test_anomaly_config_section() -> None:
    cfg = parse_config({"anomaly": {"enabled": True, "quarantine": False, "warmup": 30}})
    assert cfg.anomaly_enabled and not cfg.anomaly_quarantine and cfg.anomaly_warmup == 30
    with pytest.raises(ConfigError, match="warmup"):
        parse_config({"anomaly": {"warmup": 3}})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config({"anomaly": {"threshold": 3}})
    engine = Engine([ScriptedSource("s", [])], Config(anomaly_enabled=False))
    assert engine.anomalies is None and engine.source_states()["s"]["anomaly"]["state"] == "off"


def test_the_rate_of_a_source_that_follows_activity_is_not_watched() -> None:
    from dataclasses import replace

    source = ScriptedSource("system", [], declared_h=1.0)
    source.info = replace(source.info, steady_rate=False)
    clock = [0.0]
    engine = Engine([source], Config(min_samples=1024, anomaly_warmup=20), clock=lambda: clock[0])
    rng = np.random.default_rng(9)
    batches = [np.rint(128 + rng.normal(0, 3, n)).astype(np.uint8) for n in [2000] * 40 + [300] * 30]
    shown = _tick_engine(engine, batches, clock, "system")
    assert all(s["state"] == "ok" and not s["anomaly"]["active"] for s in shown)
    assert not engine.anomalies.models["system"].charts["rate"].ready  # never saw a rate


def test_a_lasting_change_becomes_the_new_baseline() -> None:
    settings = AnomalySettings(warmup=20, relearn_after=120)
    model = AnomalyModel(("h_min",), settings)
    rng = np.random.default_rng(8)
    for t in range(40):
        model.observe({"h_min": float(rng.normal(3.0, 0.05))}, t)
    verdicts = [model.observe({"h_min": float(rng.normal(2.0, 0.05))}, t) for t in range(40, 400)]
    raised = [t for t, v in zip(range(40, 400), verdicts) if v.changed and v.active]
    cleared = [(t, v.reason) for t, v in zip(range(40, 400), verdicts) if v.changed and not v.active]
    assert len(raised) == 1 and raised[0] < 50
    assert cleared == [(raised[0] + 120, "learning a new baseline after 2 min")]
    assert verdicts[-1].state == "watching" and not verdicts[-1].active  # 2.0 is normal now
