"""Benchmarks behind `chaos-host bench`: figures printed, never asserted in tests."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

# numpy and the engine load inside the benchmarks: importing this module (the
# command modules do, to register their own benchmarks) must stay cheap.

Progress = Callable[[str], None]


def _best_of(runs: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_extractor(size_mib: int = 64, runs: int = 3) -> dict[str, float]:
    """Absorb throughput of our sponge vs hashlib.sha3_256 on the same buffer."""
    import numpy as np

    from chaosmagnet.extractor import Sponge

    data = np.frombuffer(os.urandom(size_mib << 20), dtype=np.uint8)

    def ours() -> bytes:
        sponge = Sponge(rate_bytes=136, pad=0x06)
        sponge.absorb(data)
        return sponge.squeeze(32)

    def theirs() -> bytes:
        return hashlib.sha3_256(data).digest()

    assert ours() == theirs(), "our sponge disagrees with hashlib"
    t_ours, t_theirs = _best_of(runs, ours), _best_of(runs, theirs)
    mb = (size_mib << 20) / 1e6
    return {
        "size_MiB": size_mib,
        "ours_MB_per_s": mb / t_ours,
        "hashlib_sha3_256_MB_per_s": mb / t_theirs,
        "ratio_ours_over_hashlib": t_theirs / t_ours,
    }


def bench_health(n: int = 256 << 20, runs: int = 3) -> dict[str, float]:
    """RCT+APT samples per second in C over 8-bit samples."""
    import numpy as np

    from chaosmagnet.health import HealthMonitor

    data = np.frombuffer(os.urandom(n), dtype=np.uint8)
    monitor = HealthMonitor(h=1.0, bits_per_sample=8)
    t = _best_of(runs, lambda: monitor.run(data))
    return {"samples": n, "rct_apt_Msamples_per_s": n / t / 1e6}


def bench_ingest(batch: int = 4096, total: int = 64 << 20) -> dict[str, float]:
    """Engine ingest (health + estimates + credit + pool absorb) per second."""
    import numpy as np

    from chaosmagnet.engine import Engine
    from chaosmagnet.sources.base import Source, SourceInfo

    class _BenchSource(Source):
        info = SourceInfo(name="bench", kind="bench", bits_per_sample=8, declared_h=4.0)

        async def batches(self) -> AsyncIterator[np.ndarray]:  # pragma: no cover - never started
            if False:
                yield np.empty(0, dtype=np.uint8)

    engine = Engine([_BenchSource()])
    data = np.frombuffer(os.urandom(total), dtype=np.uint8)
    batches = [data[i : i + batch] for i in range(0, total, batch)]
    t0, c0 = time.perf_counter(), time.process_time()
    for b in batches:
        engine.ingest("bench", b)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    # MB per CPU-second beside wall time: on a shared machine the wall figure is mostly the load
    return {
        "batch_samples": batch,
        "ingest_MB_per_s": total / dt / 1e6,
        "ingest_cpu_MB_per_s": total / cpu / 1e6 if cpu > 0 else float("nan"),
        "batches_per_s": len(batches) / dt,
    }


def bench_jitter(n: int = 1_000_000) -> dict[str, float]:
    """Raw cpu-jitter sampling capacity (the default rate is far below it)."""
    from chaosmagnet.sources.local import CpuJitterSource

    src = CpuJitterSource()
    import asyncio

    asyncio.run(src.start())
    try:
        t = _best_of(1, lambda: src.read(n))
    finally:
        asyncio.run(src.stop())
    return {"samples_per_s": n / t, "default_rate": CpuJitterSource.DEFAULT_RATE}


def bench_assessment(n: int = 1_000_000) -> dict[str, float]:
    """SP 800-90B non-IID assessment of 1M 8-bit samples (a Gaussian-ish source) in a
    child process using every core, as `chaos-host assess` does: wall time and the
    child's peak resident memory."""
    import resource
    import subprocess
    import sys

    import numpy as np

    rng = np.random.default_rng(2026)
    samples = np.clip(np.round(rng.normal(128, 24, n)), 0, 255).astype(np.uint8)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "chaosmagnet.assessment.worker", "8", str(os.cpu_count() or 1)],
        input=samples.tobytes(),
        capture_output=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    import json

    return {
        "samples": n,
        "wall_s": wall,
        "peak_rss_MB": peak_kib * 1024 / 1e6 if peak_kib > before else float("nan"),
        "h_assessed": json.loads(result.stdout)["h_assessed"],
        "target_wall_s": 3,
        "target_peak_rss_MB": 1000,
    }


def bench_dependence(sources: int = 16) -> dict[str, Any]:
    """Dependence tracking (chaosmagnet.dependence) on simulated nodes in simulated time: CPU cost
    per source, per pair and per tick with ``sources`` nodes; detection delay of a correlated pair;
    false groupings on a short run of independent ones (scripts/bench-dependence runs the long one)."""
    from chaosmagnet.bench_dependence import measure_cost, measure_detection, measure_false_grouping
    from chaosmagnet.dependence import DependenceSettings

    cost = measure_cost(sources)
    detection = [r.grouped_at for r in measure_detection(range(3), seconds=240)]
    found = [t for t in detection if t is not None]
    false = measure_false_grouping(4, 900, seed=11)  # 6 pairs x 15 min = 1.5 pair-hours
    settings = DependenceSettings()
    return {
        "sources": cost.sources,
        "pairs": cost.pairs,
        "pairs_tested_per_tick": settings.pairs_per_tick,
        "each_pair_retested_every_s": max(1, -(-cost.pairs // settings.pairs_per_tick)),
        "binning_per_source_per_tick_ms": cost.per_source_ms,
        "one_pair_test_ms": cost.per_pair_ms,
        "one_tick_ms": cost.per_tick_ms,
        "one_core_percent": cost.core_percent,
        "target_one_core_percent": 10,
        "observe_per_batch_us": cost.observe_us,
        "correlated_pair_grouped_after_s (worst of 3, simulated)": max(found) if len(found) == 3 else float("nan"),
        "false_groupings (1.5 pair-hours, simulated)": false.false_groupings,
        "tests_below_p_1e-3_fraction": false.fraction_below(1e-3),
        "false_groupings_per_1000_pair_hours (extrapolated)": 1000 * false.extrapolated_rate,
        "target_false_groupings_per_1000_pair_hours (extrapolated)": 1,
    }


def bench_anomaly_cost(sources: int = 16, ticks: int = 200, rate: int = 2000) -> dict[str, float]:
    """The engine's anomaly hook (features + charts + periodogram) per tick, with ``sources``
    sources of ``rate`` samples/s each: microseconds per source and % of one core."""
    import numpy as np

    from chaosmagnet.config import Config
    from chaosmagnet.engine import Engine
    from chaosmagnet.sources.base import Source, SourceInfo

    class _BenchSource(Source):
        def __init__(self, name: str) -> None:
            self.info = SourceInfo(name=name, kind="bench", bits_per_sample=8, declared_h=1.0)

        async def batches(self) -> AsyncIterator[np.ndarray]:  # pragma: no cover - never started
            if False:
                yield np.empty(0, dtype=np.uint8)

    names = [f"bench{i}" for i in range(sources)]
    clock = [0.0]
    engine = Engine([_BenchSource(n) for n in names], Config(min_samples=1024), clock=lambda: clock[0])
    rng = np.random.default_rng(7)
    batches = [np.rint(128 + rng.normal(0, 3, rate)).astype(np.uint8) for _ in range(16)]
    spent = 0.0
    for tick in range(ticks):
        for name in names:
            engine.ingest(name, batches[(tick + hash(name)) % len(batches)])
        clock[0] += 1.0
        t0 = time.perf_counter()
        engine._anomaly_tick(1.0)  # the hook alone, as tick() runs it once a second
        spent += time.perf_counter() - t0
    per_tick = spent / ticks
    return {
        "sources": sources,
        "samples_per_source_per_s": rate,
        "per_source_per_tick_ms": per_tick / sources * 1e3,
        f"core_{sources}_sources_percent": per_tick * 100.0,
        f"target_core_{sources}_sources_percent": 10.0,
    }


def bench_anomaly_detection(seeds: int = 3, clean_hours: float = 2.0) -> dict[str, float]:
    """Detection and clearing delays of the simulator's faults (offline, simulated seconds) and
    false alarms on a clean run; scripts/bench-anomaly runs the long version."""
    import statistics

    from chaosmagnet.nodes.faults import FaultWindow
    from chaosmagnet.nodes.faultsim import run_fault

    start, length = 100, 150
    out: dict[str, float] = {}
    for fault in ("drift", "periodic", "sag"):
        raised, cleared, missed = [], [], 0
        for seed in range(1, seeds + 1):
            run = run_fault(fault, start + length + 120, window=FaultWindow(start, length), seed=seed)
            if not run.raised or run.first_health_failure is not None:
                missed += 1
                continue
            raised.append(run.raised[0] - start)
            if run.cleared:
                cleared.append(run.cleared[-1] - start - length)
        out[f"{fault}_detection_delay_s"] = statistics.median(raised) if raised else float("nan")
        out[f"{fault}_clearing_delay_s"] = statistics.median(cleared) if cleared else float("nan")
        out[f"{fault}_missed_runs"] = missed
    seconds = int(clean_hours * 3600)
    clean = run_fault(None, seconds, seed=101)
    out["clean_source_hours"] = clean_hours
    out["false_alarms_per_source_hour"] = clean.false_alarms / clean_hours
    return out


def run_benchmarks(size_mib: int = 64, progress: Progress | None = None) -> dict[str, dict[str, Any]]:
    """Run every benchmark available and return figures by section."""
    say = progress or (lambda msg: None)
    results: dict[str, dict[str, Any]] = {}
    say(f"extractor: absorbing {size_mib} MiB with our sponge and hashlib...")
    results["extractor (Keccak absorb, SHA3-256)"] = bench_extractor(size_mib)
    say("health: RCT+APT over 256 Mi samples...")
    results["health (RCT+APT in C)"] = bench_health()
    say("pool: engine ingest...")
    results["pool ingest"] = bench_ingest()
    say("cpu-jitter: sampling capacity...")
    results["cpu-jitter"] = bench_jitter()
    say("assessment: SP 800-90B non-IID on 1,000,000 8-bit samples...")
    results["assessment (non-IID, 1M 8-bit samples)"] = bench_assessment()
    say("dependence tracking: 16 simulated nodes, a correlated pair, independent ones (about a minute)...")
    results["dependence tracking (16 simulated nodes)"] = bench_dependence()
    say("anomaly scoring: 16 sources, then the simulator's faults offline...")
    results["anomaly scoring (engine tick hook)"] = bench_anomaly_cost()
    results["anomaly detection (simulated ADC, s after the fault starts/ends)"] = bench_anomaly_detection()
    for name, hook in EXTRA_BENCHMARKS:
        say(f"{name}...")
        results[name] = hook()
    return results


# Other modules (assessment, minting, nodes) append (section name, callable) here.
EXTRA_BENCHMARKS: list[tuple[str, Callable[[], dict[str, Any]]]] = []


# -- the table `chaos-host bench` prints ------------------------------------------
# Key suffixes -> (unit, whether lower is better).  A key "target_X" is the target of "X".
_UNITS = (
    ("_Msamples_per_s", "M samples/s", False),
    ("_MB_per_s", "MB/s", False),
    ("_mb_per_s", "MB/s", False),
    ("_per_s", "/s", False),
    ("_percent", "% of a core", True),
    ("_MiB", "MiB", True),
    ("_MB", "MB", True),
    ("_ms", "ms", True),
    ("_us", "µs", True),
    ("_s", "s", True),
)


def _split_unit(key: str) -> tuple[str, str, bool | None]:
    """('peak_rss_MB') -> ('peak rss', 'MB', lower is better)."""
    base = key.split(" (", 1)[0]
    for suffix, unit, lower in _UNITS:
        if base.endswith(suffix):
            return key[: len(base) - len(suffix)].replace("_", " ") + key[len(base) :], unit, lower
    return key.replace("_", " "), "", None


def _value_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and value != value:  # NaN
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.1f}"


def results_rows(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str, str, str]]:
    """(section, figure, value, unit, target, mark) per figure; targets paired with their figure."""
    rows = []
    for section, figures in results.items():
        targets = {k.removeprefix("target_"): v for k, v in figures.items() if k.startswith("target_")}
        for key, value in figures.items():
            if key.startswith("target_"):
                continue
            name, unit, lower = _split_unit(key)
            target, mark = "", ""
            if key in targets and isinstance(value, (int, float)) and value == value:
                goal = targets[key]
                passed = value <= goal if lower is not False else value >= goal
                target = f"{'≤' if lower is not False else '≥'} {_value_text(goal)}"
                mark = "PASS" if passed else "FAIL"
            rows.append((section, name, _value_text(value), unit, target, mark))
    return rows


def format_results(results: dict[str, dict[str, Any]]) -> str:
    """The figures as a plain table: section, figure, value, unit, target, PASS/FAIL."""
    rows = results_rows(results)
    head = ("section", "figure", "value", "unit", "target", "mark")
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(6)] if rows else [len(h) for h in head]
    widths[1] = min(widths[1], 48)
    lines = []
    for row in (head, *rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2])]
        cells += [row[3].ljust(widths[3]), row[4].ljust(widths[4]), row[5]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
