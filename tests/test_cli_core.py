"""The core commands as a user runs them: real processes, real sources."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CHAOS = [sys.executable, "-m", "chaosmagnet"]


def chaos(*args: str, cwd: Path, timeout: float = 120, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, CHAOS_HOME=str(cwd), COLUMNS="200")
    return subprocess.run([*CHAOS, *args], cwd=cwd, env=env, capture_output=True, timeout=timeout, input=stdin)


def test_run_json_prints_one_object_per_interval(tmp_path: Path) -> None:
    result = chaos("run", "--seconds", "3", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) >= 2
    objects = [json.loads(line) for line in lines]
    for obj in objects:
        assert {"credited_bits", "fill", "raw_bytes", "extraction_ratio"} <= set(obj["pool"])
        names = {s["name"] for s in obj["sources"]}
        assert names == {"os-rng", "cpu-jitter", "system"}
        for s in obj["sources"]:
            assert {
                "name",
                "state",
                "samples",
                "credited_bits",
                "h_shannon",
                "h_min",
                "h_collision",
                "rct_failures",
                "apt_failures",
                "h_assessed",
                "anomaly",
            } <= set(s)
            assert s["anomaly"]["state"] in ("learning", "watching", "anomalous") and "score" in s["anomaly"]
    last = {s["name"]: s for s in objects[-1]["sources"]}
    assert last["cpu-jitter"]["samples"] > 0 and last["cpu-jitter"]["credited_bits"] > 0
    assert objects[-1]["pool"]["credited_bits"] > 0
    assert "ran " in result.stderr.decode()  # the summary goes to stderr in --json mode


def test_run_with_one_source(tmp_path: Path) -> None:
    result = chaos("run", "--seconds", "1.5", "--json", "--source", "os-rng", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    obj = json.loads(result.stdout.decode().splitlines()[-1])
    assert [s["name"] for s in obj["sources"]] == ["os-rng"]
    assert obj["pool"]["credited_bits"] == 0  # conditioned: mixed, not credited


def test_sources_json_lists_every_known_source(tmp_path: Path) -> None:
    result = chaos("sources", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"os-rng", "cpu-jitter", "system"} <= set(rows)
    assert rows["cpu-jitter"]["available"] is True
    for row in rows.values():
        assert row["available"] or row["reason"]


@pytest.mark.parametrize(("bits", "limit"), [(None, 256), (4, 16), (1, 2)])
def test_sample_writes_one_sample_per_byte(tmp_path: Path, bits: int | None, limit: int) -> None:
    out = tmp_path / "jitter.bin"
    args = ["sample", "cpu-jitter", "--count", "50000", "--out", str(out)]
    if bits:
        args += ["--bits", str(bits)]
    result = chaos(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = np.fromfile(out, dtype=np.uint8)
    assert data.size == 50000 and int(data.max()) < limit
    assert len(np.unique(data)) > 1


def test_random_to_file_and_pipe(tmp_path: Path) -> None:
    out = tmp_path / "r.bin"
    result = chaos("random", "--bytes", "100000", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size == 100000
    piped = chaos("random", "--bytes", "4096", cwd=tmp_path)
    assert piped.returncode == 0 and len(piped.stdout) == 4096
    assert piped.stdout != out.read_bytes()[:4096]


@pytest.mark.skipif(
    shutil.which("ent") is None or shutil.which("rngtest") is None,
    reason="ent and rngtest (Debian: ent, rng-tools5) are not installed",
)
def test_random_output_passes_ent_and_rngtest(tmp_path: Path) -> None:
    """8 MB here; scripts/randomness-tests runs 100 MB and records it in docs/."""
    out = tmp_path / "r.bin"
    assert chaos("random", "--bytes", str(8_000_000), "--out", str(out), cwd=tmp_path).returncode == 0
    ent = subprocess.run(["ent", str(out)], capture_output=True, text=True, check=True).stdout
    entropy = float(ent.split("Entropy = ")[1].split()[0])
    assert entropy >= 7.9999
    rng = subprocess.run(["rngtest"], stdin=out.open("rb"), capture_output=True, text=True)
    failures = int(rng.stderr.split("FIPS 140-2 failures: ")[1].split()[0])
    successes = int(rng.stderr.split("FIPS 140-2 successes: ")[1].split()[0])
    assert successes + failures >= 3190  # rngtest keeps the first 32 bits for its continuous test
    assert failures <= 12  # expected ~2.6 (0.08%); 12 is far in the tail


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--source", "bogus"], "unknown source 'bogus'"),
        (["run", "--seconds", "abc"], "--seconds"),
        (["run", "--seconds", "-1"], "--seconds"),
        (["sample", "nope", "--count", "10", "--out", "x.bin"], "unknown source 'nope'"),
        (["sample", "cpu-jitter", "--count", "0", "--out", "x.bin"], "--count"),
        (["sample", "cpu-jitter", "--count", "10", "--bits", "9", "--out", "x.bin"], "--bits"),
        (["sample", "cpu-jitter", "--count", "10", "--out", "missing-dir/x.bin"], "does not exist"),
        (["random", "--bytes", "-5"], "--bytes"),
        (["run", "--config", "nope.toml"], "no such file"),
        (["run", "--config", "bad.toml"], "bad.toml"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(tmp_path: Path, args: list[str], fragment: str) -> None:
    (tmp_path / "bad.toml").write_text("[pool]\ncapacity_bits = 'lots'\n")
    result = chaos(*args, cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    err = result.stderr.decode().strip()
    assert len(err.splitlines()) == 1, err
    assert fragment in err and "Traceback" not in err
    assert not (tmp_path / "x.bin").exists()


def test_random_refuses_unseeded_output_on_timeout(tmp_path: Path) -> None:
    # os-rng alone (credit 0) is now refused at once (test_hopeless_waits); granted a credit
    # too small to reach 256 bits within the timeout, the wait is hopeful and times out
    (tmp_path / "chaos.toml").write_text("[sources.os-rng]\ncredit_h = 1e-12\n")
    out = tmp_path / "r.bin"
    # a source that could earn credit, but not within the timeout (too slow for the estimator's minimum)
    (tmp_path / "chaos.toml").write_text("[sources.cpu-jitter]\nrate = 100\n[estimates]\nmin_samples = 60000\n")
    result = chaos("random", "--bytes", "10", "--out", str(out), "--source", "cpu-jitter", "--timeout", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert "timed out" in result.stderr.decode()
    assert not out.exists() and not list(tmp_path.glob(".r.bin.*"))


def test_sample_does_not_replace_existing_file_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "keep.bin"
    out.write_bytes(b"precious")
    result = chaos(
        "sample",
        "video",
        "--camera",
        str(tmp_path / "no-such.mp4"),
        "--count",
        "10",
        "--out",
        str(out),
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2
    assert out.read_bytes() == b"precious"
