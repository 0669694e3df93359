"""The target table of `chaos-host bench` (chaosmagnet.bench_figures): its rows, marks,
data and NIST lookup.  Timings are printed, never asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from chaosmagnet.bench_figures import Figure, find_nist_tool, format_figures, held_out_samples, ingest_figure


def test_marks_and_layout() -> None:
    rows = [
        Figure("fast thing", "10 ms", "under 150 ms", True),
        Figure("slow thing", "400 ms", "under 300 ms", False),
        Figure("unmeasured thing", "not measured", "0.2x", None),
    ]
    lines = format_figures(rows).splitlines()
    assert lines[0].split()[:2] == ["figure", "mark"]
    assert "PASS" in lines[1] and "FAIL" in lines[2] and "n/a" in lines[3]
    assert all("under" in line or "0.2x" in line for line in lines[1:])
    assert rows[1].to_json() == {"figure": "slow thing", "measured": "400 ms", "target": "under 300 ms", "passed": False}


def test_ingest_row_compares_with_the_target() -> None:
    assert ingest_figure({"batch_samples": 4096, "ingest_MB_per_s": 151.0}).passed is True
    assert ingest_figure({"batch_samples": 4096, "ingest_MB_per_s": 149.0}).passed is False
    row = ingest_figure({"batch_samples": 4096, "ingest_MB_per_s": 149.0, "ingest_cpu_MB_per_s": 190.0})
    assert row.passed is False and "190 MB per CPU-second" in row.measured  # the mark stays on wall time


@pytest.mark.parametrize("bits", [1, 2, 8])
def test_held_out_samples_fit_their_width(bits: int) -> None:
    data = np.frombuffer(held_out_samples(bits, 50_000, 3), dtype=np.uint8)
    assert data.size == 50_000
    assert int(data.max()) < (1 << bits)
    assert len(np.unique(data)) > 1
    assert held_out_samples(bits, 1000, 3) == held_out_samples(bits, 1000, 3)


def test_nist_tools_are_found_in_the_named_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAOS_NIST_TOOLS", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_nist_tool("ea_non_iid", tmp_path) is None
    tool = tmp_path / "ea_non_iid"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    assert find_nist_tool("ea_non_iid", tmp_path) == tool
    monkeypatch.setenv("CHAOS_NIST_TOOLS", str(tmp_path))
    assert find_nist_tool("ea_non_iid") == tool


def test_bench_refuses_a_nist_folder_that_does_not_exist(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "chaosmagnet", "bench", "--nist", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "not a folder" in proc.stderr


def test_bundle_row_compares_with_twice_the_raw_work() -> None:
    from chaosmagnet.bench_figures import bundle_figure

    figures = {"runs": 40, "fsyncs_per_bundle": 4, "fsync_per_bundle_median_ms": 1.0}
    row = bundle_figure({**figures, "median_ms": 9.9, "raw_library_work_median_ms": 5.0})
    assert row.passed is True and "1.98x" in row.measured and "4 fsyncs" in row.measured
    assert "CPU" not in row.measured  # figures from before the CPU times were measured
    timed = {**figures, "cpu_median_ms": 9.0, "raw_library_work_cpu_median_ms": 5.0}
    row = bundle_figure({**timed, "median_ms": 9.9, "raw_library_work_median_ms": 5.0})
    assert "CPU 9.0 vs 5.0 ms, 1.80x" in row.measured
    assert bundle_figure({**figures, "median_ms": 10.0, "raw_library_work_median_ms": 5.0}).passed is False


def test_mint_benchmark_times_bundles_and_raw_work_alike() -> None:
    """Two real bundles and two raw rounds, alternating; a bundle makes three fsyncs (the
    bundle file and keys/, the audit entry; the replaced audit head is written behind)."""
    from chaosmagnet.minting.bench import mint_benchmark
    from chaosmagnet.minting.sealing import ScryptParams

    figures = mint_benchmark(2, ScryptParams(n=1024, r=8, p=1))
    assert figures["runs"] == 2
    assert figures["median_ms"] > 0 and figures["raw_library_work_median_ms"] > 0
    assert figures["fsyncs_per_bundle"] == 3
    assert figures["fsync_per_bundle_median_ms"] >= 0
    assert figures["cpu_median_ms"] > 0 and figures["raw_library_work_cpu_median_ms"] > 0
    assert os.fsync.__module__ in ("posix", "os", "nt")  # the benchmark put the real fsync back
