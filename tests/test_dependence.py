"""Cross-source dependence (chaosmagnet.dependence): the statistics, the tracker on the
simulator's noise model in simulated time, and credit once through the engine.

Bounds stated here (and in docs/pipeline.md):
* two nodes sharing half their ADC noise (``--fault correlated``'s model) are
  grouped within DETECT_SECONDS of data, i.e. DETECT_SECONDS x 2000 samples
  per source, and from then on credited once;
* independent nodes: no false grouping in a short run of FALSE_RUN pair-hours,
  and pair tests' p-values no smaller than nominal (the long-run rate per pair
  per hour is measured by scripts/bench-dependence, not asserted here).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from chaosmagnet.bench_dependence import AdcStream, measure_detection, measure_false_grouping, replay
from chaosmagnet.config import Config
from chaosmagnet.dependence import (
    DependenceSettings,
    DependenceTracker,
    chi2_sf,
    lag_correlation_test,
    mutual_information_test,
)
from chaosmagnet.engine import Engine
from chaosmagnet.errors import UsageError
from chaosmagnet.eventlog import JsonLineLog
from source_helpers import ScriptedSource

DETECT_SECONDS = 180  # 360,000 samples per source at 2000 samples/s
FALSE_RUN_SOURCES, FALSE_RUN_SECONDS = 5, 720  # 10 pairs x 12 min = 2 pair-hours


# -- the statistics ----------------------------------------------------------


@pytest.mark.parametrize("df", [1, 2, 3, 4, 9, 16])
@pytest.mark.parametrize("x", [0.5, 3.0, 10.0, 40.0, 90.0])
def test_chi2_sf_matches_scipy(df: int, x: float) -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    assert chi2_sf(x, df) == pytest.approx(float(scipy_stats.chi2.sf(x, df)), rel=1e-9, abs=1e-300)


def test_mi_of_independent_series_is_near_zero_and_not_significant() -> None:
    rng = np.random.default_rng(1)
    mi, p, p_perm = mutual_information_test(rng.normal(size=400), rng.normal(size=400))
    assert abs(mi) < 0.02  # Miller-Madow removes the plug-in's upward bias (about 0.016 bits here)
    assert p > 1e-3 and p_perm > 0.02


def test_miller_madow_corrects_the_plugin_bias_on_average() -> None:
    rng = np.random.default_rng(2)
    corrected = [mutual_information_test(rng.normal(size=300), rng.normal(size=300))[0] for _ in range(40)]
    plugin_bias = (4 - 1) ** 2 / (2 * 300 * math.log(2))  # what the plug-in would show on average
    assert abs(float(np.mean(corrected))) < plugin_bias / 4


def test_mi_finds_half_shared_noise() -> None:
    rng = np.random.default_rng(3)
    shared = rng.normal(size=400)
    x = shared + rng.normal(size=400)
    y = shared + rng.normal(size=400)
    mi, p, p_perm = mutual_information_test(x, y)
    assert mi > 0.08 and p < 1e-7 and p_perm == pytest.approx(1 / 49)


def test_mi_refuses_too_few_points() -> None:
    with pytest.raises(UsageError):
        mutual_information_test(np.arange(10.0), np.arange(10.0))


def test_lag_correlation_finds_a_shared_cause_at_its_lag() -> None:
    rng = np.random.default_rng(4)
    cause = rng.normal(size=300)
    x = {"mean": cause + rng.normal(size=300)}
    y = {"mean": np.roll(cause, 2) + rng.normal(size=300)}  # y follows x by 2 s
    r, lag, stat, p = lag_correlation_test(x, y)
    assert (lag, stat) == (2, "mean") and r > 0.3 and p < 1e-7
    quiet = lag_correlation_test({"mean": rng.normal(size=300)}, {"mean": rng.normal(size=300)})
    assert quiet is not None and quiet[3] > 1e-3


def test_lag_correlation_skips_gaps_and_flat_series() -> None:
    x = {"mean": np.full(100, np.nan)}
    assert lag_correlation_test(x, {"mean": np.arange(100.0)}) is None
    assert lag_correlation_test({"mean": np.ones(100)}, {"mean": np.arange(100.0)}) is None


def test_settings_are_checked() -> None:
    with pytest.raises(UsageError):
        DependenceSettings(join_p=0.1, clear_p=0.01)
    with pytest.raises(UsageError):
        DependenceSettings(pairs_per_tick=0)
    with pytest.raises(UsageError):
        DependenceSettings(min_bins=48)  # the MI test needs 4 x levels^2 = 64 paired bins


# -- the tracker on the simulator's noise model, in simulated time -------------------


def test_correlated_nodes_are_grouped_within_the_bound_and_credited_once() -> None:
    runs = measure_detection(range(4), seconds=DETECT_SECONDS + 20)
    for run in runs:
        assert run.grouped_at is not None and run.grouped_at <= DETECT_SECONDS, run
        assert run.samples_at_grouping is not None and run.samples_at_grouping <= DETECT_SECONDS * 2000
        assert run.credited_once, run  # the better member (a: 2 bits/s against 1) keeps the credit
        assert run.found_events == 1 and run.cleared_events == 0, run  # no flapping while it holds


def test_independent_nodes_are_not_grouped_on_a_short_run() -> None:
    run = measure_false_grouping(FALSE_RUN_SOURCES, FALSE_RUN_SECONDS, seed=3)
    assert run.pair_hours == pytest.approx(2.0)
    assert run.false_groupings == 0
    assert run.tests > 1000
    # p-values are no smaller than nominal: the share below 1e-2 is at most about 1e-2
    assert run.fraction_below(1e-2) < 0.03
    assert min(run.p_values) > DependenceSettings().join_p


def test_dependence_clears_when_the_shared_cause_ends() -> None:
    settings = DependenceSettings()
    tracker = DependenceTracker(settings)
    streams = [AdcStream("a", 10, correlated=True, rail_seed=9), AdcStream("b", 11, correlated=True, rail_seed=9)]
    events: list[tuple[float, str]] = []
    replay(tracker, streams, DETECT_SECONDS, lambda t, es: events.extend((t, e.kind) for e in es))
    assert [k for _, k in events] == ["dependence_found"]
    assert tracker.groups() == [("a", "b")]
    # the rail goes away (one node moved to its own supply): the streams go on independently
    for stream in streams:
        stream.hal.rail = None
    replay(
        tracker,
        streams,
        DETECT_SECONDS + 400,
        lambda t, es: events.extend((t, e.kind) for e in es),
        start=DETECT_SECONDS,
    )
    kinds = [k for _, k in events]
    assert kinds == ["dependence_found", "dependence_cleared"], events
    assert tracker.groups() == [] and tracker.credit_factor("b") == 1.0
    cleared_at = events[1][0]
    print(f"cleared {cleared_at - DETECT_SECONDS:.0f} s after the shared cause ended")


def test_the_schedule_bounds_tests_per_tick() -> None:
    tracker = DependenceTracker(DependenceSettings(pairs_per_tick=3))
    for name in "abcdef":  # 15 pairs
        tracker.observe(name, np.arange(256, dtype=np.uint8), 0.1)
    tracker.tick(1.0)
    schedule = tracker.snapshot()["schedule"]
    assert schedule == {"sources": 6, "pairs": 15, "pairs_per_tick": 3, "retest_seconds": 5}


def test_observe_keeps_a_bounded_copy() -> None:
    tracker = DependenceTracker(DependenceSettings(max_batch_samples=100))
    batch = np.zeros(1000, dtype=np.uint8)
    tracker.observe("a", batch, 0.0)
    batch[:] = 7  # a source reusing its buffer does not change what was observed
    kept = tracker._windows["a"].pending[0][1]  # noqa: SLF001
    assert kept.size == 100 and not kept.any()


# -- credit once, through the engine ---------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_engine_credits_a_dependent_group_once_and_logs_it(tmp_path: Path) -> None:
    clock = FakeClock()
    log = JsonLineLog(tmp_path / "health.jsonl")
    sources = [ScriptedSource(n, [], declared_h=1.0) for n in ("node:a:adc", "node:b:adc", "lone")]
    engine = Engine(sources, Config(min_samples=256, assessment_enabled=False), health_log=log, clock=clock)
    for r in engine._runtimes.values():  # noqa: SLF001 - what start() sets for a running source
        r.status = "ok"
    streams = [
        AdcStream("node:a:adc", 20, correlated=True, rail_seed=4),
        AdcStream("node:b:adc", 21, correlated=True, rail_seed=4),
    ]
    lone = AdcStream("lone", 22)
    credit: dict[str, float] = {"node:a:adc": 0.0, "node:b:adc": 0.0, "lone": 0.0}
    next_tick = 1.0
    grouped_at = None
    all_streams = [*streams, lone]
    while next_tick <= DETECT_SECONDS + 60:
        stream = min(all_streams, key=lambda s: s.next_at)
        t, batch = stream.frame()
        while t >= next_tick:
            clock.now = next_tick
            engine.tick(1.0)
            if grouped_at is None and engine.dependence.groups():
                grouped_at = next_tick
                credit = dict.fromkeys(credit, 0.0)  # count credit from here on
            next_tick += 1.0
        clock.now = t
        credit[stream.name] += engine.ingest(stream.name, batch)
    assert grouped_at is not None and grouped_at <= DETECT_SECONDS
    assert engine.dependence.groups() == [("node:a:adc", "node:b:adc")]
    # once grouped, exactly one member earns credit; the lone source is untouched
    paid = [name for name in ("node:a:adc", "node:b:adc") if credit[name] > 0]
    assert len(paid) == 1 and credit["lone"] > 0
    snapshot = engine.snapshot()
    views = {s["name"]: s["dependence"] for s in snapshot["sources"]}
    assert views["lone"] is None
    assert views[paid[0]]["credited"] is True and views[paid[0]]["group"] == "node:a:adc+node:b:adc"
    other = "node:b:adc" if paid[0] == "node:a:adc" else "node:a:adc"
    assert views[other]["credited"] is False and views[other]["partners"][0]["with"] == paid[0]
    assert engine.source_states()[other]["credit_h"] == 0.0
    group = snapshot["dependence"]["groups"][0]
    assert group["members"] == ["node:a:adc", "node:b:adc"] and group["credited_member"] == paid[0]
    evidence = group["evidence"][0]
    assert evidence["p_value"] < DependenceSettings().join_p and evidence["detector"] in ("mi", "lag")
    lines = [json.loads(line) for line in (tmp_path / "health.jsonl").read_text().splitlines()]
    found = [e for e in lines if e.get("event") == "dependence_found"]
    assert len(found) == 1 and found[0]["sources"] == ["node:a:adc", "node:b:adc"]
    assert found[0]["p_value"] < 1e-7 and "mi_bits" in found[0] and "lag_seconds" in found[0]
    # the view, `run --json` and a draw's provenance show the group and why
    from chaosmagnet.cli.core_commands import _json_interval
    from chaosmagnet.cli.view import render, status_line, summary_lines
    from rich.console import Console

    interval = json.loads(_json_interval(snapshot))
    assert interval["dependence"]["groups"][0]["credited_member"] == paid[0]
    assert {s["name"]: s["dependence"] for s in interval["sources"]}["lone"] is None
    console = Console(width=160, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(render(snapshot, 160))
    text = console.export_text()
    assert "dependent sources" in text and f"credited once, via {paid[0]}" in text and "p " in text
    assert "dependent node:a:adc+node:b:adc (credited once)" in status_line(snapshot)
    assert any(line.startswith("  dependent: node:a:adc + node:b:adc") for line in summary_lines(snapshot))

    from chaosmagnet.minting.seeds import draw_from_engine
    from chaosmagnet.quorum import Quorum

    quorum = engine.with_dependence(Quorum())
    assert quorum.group_of("node:a:adc") == quorum.group_of("node:b:adc") == "node:a+node:b"
    draw = asyncio.run(draw_from_engine(engine, 32, 64, b"test", 5.0, None, "engine"))
    provenance = draw.provenance()
    groups = provenance["dependence"]["groups"]
    assert groups[0]["members"] == ["node:a:adc", "node:b:adc"] and groups[0]["credited_member"] == paid[0]
    assert groups[0]["evidence"][0]["p_value"] < 1e-7
    assert set(provenance["quorum"]["met_by"]) == {"node:a+node:b", "lone"}


def test_a_group_does_not_outlive_a_silent_member() -> None:
    tracker = DependenceTracker()
    a, b = AdcStream("a", 30, correlated=True, rail_seed=2), AdcStream("b", 31, correlated=True, rail_seed=2)
    events: list[tuple[float, str, str]] = []
    replay(tracker, [a, b], DETECT_SECONDS, lambda t, es: events.extend((t, e.kind, e.reason) for e in es))
    assert tracker.groups() == [("a", "b")]
    # b stops (unplugged): only a goes on; the pair runs out of paired data and the group goes
    replay(
        tracker,
        [a],
        DETECT_SECONDS + 600,
        lambda t, es: events.extend((t, e.kind, e.reason) for e in es),
        start=DETECT_SECONDS,
    )
    assert [k for _, k, _ in events] == ["dependence_found", "dependence_cleared"], events
    assert tracker.groups() == [] and tracker.credit_factor("b") == 1.0
    print(f"cleared {events[1][0] - DETECT_SECONDS:.0f} s after b stopped: {events[1][2]}")


def test_batches_kept_between_ticks_are_bounded() -> None:
    tracker = DependenceTracker()
    for i in range(5000):  # an engine that is fed but never ticks
        tracker.observe("a", np.zeros(4096, dtype=np.uint8), i * 0.001)
    assert len(tracker._windows["a"].pending) == 512  # noqa: SLF001
