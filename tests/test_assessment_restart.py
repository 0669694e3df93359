"""Restart testing (SP 800-90B §3.1.4) against NIST's ea_restart 1.1.7 outputs."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from chaosmagnet.assessment.restart import (
    assess_restart,
    restart_alpha,
    restart_cutoff,
    sanity_check,
)
from chaosmagnet.errors import InputFileError, UsageError

DATA = Path(__file__).resolve().parent / "data" / "sp800-90b-restart"
CHAOS = [sys.executable, "-m", "chaosmagnet"]

#: ea_restart's estimator labels -> our estimator keys.
LABELS = {
    "Most Common Value Estimate": "mcv",
    "T-Tuple Test Estimate": "t_tuple",
    "LRS Test Estimate": "lrs",
    "Multi Most Common in Window (MultiMCW) Prediction Test Estimate": "multi_mcw",
    "Lag Prediction Test Estimate": "lag",
    "Multi Markov Model with Counting (MultiMMC) Prediction Test Estimate": "multi_mmc",
    "LZ78Y Prediction Test Estimate": "lz78y",
    "Collision Test Estimate": "collision",
    "Markov Test Estimate": "markov",
    "Compression Test Estimate": "compression",
}

#: (matrix, bits, H_I) as the reference outputs were made (README.md there).
CASES = [("biased3-3bit", 3, 0.5), ("warmup8-8bit", 8, 3.0)]


def reference(name: str) -> dict:
    """The numbers ea_restart printed for name."""
    text = (DATA / f"{name}.reference.txt").read_text()
    ref: dict = {"rows": {}, "cols": {}}
    m = re.search(r"ALPHA: (\S+), X_cutoff: (\d+)", text)
    assert m
    ref["alpha"], ref["x_cutoff"] = float(m.group(1)), int(m.group(2))
    ref["x_max"] = int(re.search(r"X_max: (\d+)", text).group(1))  # type: ignore[union-attr]
    ref["sanity_passed"] = "Restart Sanity Check Passed" in text
    for label, which, value in re.findall(r"\t(.+?) \((Rows|Cols)\) = ([\d.]+)", text):
        ref["rows" if which == "Rows" else "cols"][LABELS[label]] = float(value)
    for key in ("H_r", "H_c"):
        m = re.search(rf"^{key}: ([\d.]+)", text, re.M)
        ref[key] = float(m.group(1)) if m else None
    m = re.search(r"min\(H_r, H_c, H_I\): ([\d.]+)", text)
    ref["final"] = float(m.group(1)) if m else None
    return ref


def load(name: str) -> np.ndarray:
    return np.fromfile(DATA / f"{name}.bin", dtype=np.uint8)


@pytest.fixture(scope="module")
def biased3():
    return assess_restart(load("biased3-3bit"), 3, 0.5)


def test_biased3_equals_ea_restart(biased3) -> None:
    ref = reference("biased3-3bit")
    assert ref["sanity_passed"] and biased3.sanity.passed
    assert biased3.sanity.x_cutoff == ref["x_cutoff"]
    assert biased3.sanity.x_max == ref["x_max"]
    assert biased3.sanity.alpha == pytest.approx(ref["alpha"], rel=1e-12)
    assert set(biased3.rows) == set(ref["rows"]) and set(biased3.cols) == set(ref["cols"])
    for which in ("rows", "cols"):
        for key, value in ref[which].items():
            assert getattr(biased3, which)[key] == pytest.approx(value, abs=1e-6), (which, key)
    assert biased3.h_r == pytest.approx(ref["H_r"], abs=1e-6)
    assert biased3.h_c == pytest.approx(ref["H_c"], abs=1e-6)
    assert biased3.validation_passed is True and biased3.passed
    assert biased3.h_final == pytest.approx(ref["final"], abs=1e-6)


def test_warmup8_fails_the_sanity_check() -> None:
    ref = reference("warmup8-8bit")
    assert not ref["sanity_passed"]
    result = assess_restart(load("warmup8-8bit"), 8, 3.0)
    assert not result.sanity.passed and not result.passed
    assert result.sanity.x_max == ref["x_max"] == 1000
    # ea_restart's cutoff is a Monte Carlo estimate of the quantile we compute exactly
    # (178; 5,000,000 simulated rows give 178 or 179); the verdict is the same.
    assert result.sanity.x_cutoff == 178 and abs(result.sanity.x_cutoff - ref["x_cutoff"]) <= 1
    assert result.h_r is None and result.h_c is None and result.h_final is None
    assert "sanity check FAILED" in result.verdict and "no entropy awarded" in result.verdict


def _brute_cutoff(h: float, n: int, alpha: float) -> int:
    """The cutoff by summing the multinomial over every count vector (small n only)."""
    p = 2.0**-h
    k = math.ceil(1 / p)
    probs = [p] * (k - 1) + [1 - (k - 1) * p]
    dist: dict[int, float] = {}
    for counts in itertools.product(range(n + 1), repeat=k - 1):
        last = n - sum(counts)
        if last < 0:
            continue
        full = (*counts, last)
        logp = math.lgamma(n + 1) + sum(
            c * math.log(q) - math.lgamma(c + 1) for c, q in zip(full, probs, strict=True) if q > 0
        )
        if any(q == 0 and c > 0 for c, q in zip(full, probs, strict=True)):
            continue
        dist[max(full)] = dist.get(max(full), 0.0) + math.exp(logp)
    total = 0.0
    for x in sorted(dist):
        total += dist[x]
        if 1.0 - total <= alpha:
            return x
    return n


@pytest.mark.parametrize("h", [0.5, 1.0, math.log2(3), 1.3, 2.0])
@pytest.mark.parametrize("alpha", [0.05, 0.001])
def test_cutoff_is_the_exact_quantile_of_the_largest_count(h: float, alpha: float) -> None:
    assert restart_cutoff(h, n=40, alpha=alpha) == _brute_cutoff(h, 40, alpha)


def test_cutoff_edges() -> None:
    assert restart_cutoff(0.0) == 1000  # one certain value: any count is possible
    assert restart_alpha() == pytest.approx(0.01 / 2000, rel=0.01)
    with pytest.raises(UsageError):
        restart_cutoff(-1.0)


def test_sanity_check_counts_rows_and_columns() -> None:
    m = np.zeros((4, 4), dtype=np.uint8)
    m[0] = [1, 1, 1, 0]
    m[:, 3] = [1, 1, 1, 1]
    check = sanity_check(m, 1.0, 2)
    assert check.x_rows == 4 and check.x_cols == 4  # row 1 is 0,0,0,1 ... column 0 is 1,0,0,0
    m2 = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    assert sanity_check(m2, 1.0, 2).x_max == 1


def test_validation_fails_when_rows_are_predictable() -> None:
    # Every random bit is followed by its complement: each row holds 500 of each
    # value (the sanity check passes) but the predictors see through it (h_r < H_I / 2).
    rng = np.random.default_rng(7)
    half = rng.integers(0, 2, (1000, 500, 1), dtype=np.uint8)
    matrix = np.concatenate([half, 1 - half], axis=2).reshape(1000, 1000)
    result = assess_restart(matrix.ravel(), 1, 1.0)
    assert result.sanity.passed
    assert result.h_r is not None and result.h_r < 0.5
    assert result.validation_passed is False and not result.passed and result.h_final is None
    assert "validation FAILED" in result.verdict
    assert {"collision", "markov", "compression"} <= set(result.rows)  # binary: all ten ran


def test_bad_inputs() -> None:
    data = load("biased3-3bit")
    with pytest.raises(InputFileError, match="1,000,000"):
        assess_restart(data[:-1], 3, 0.5)
    with pytest.raises(UsageError, match="between 0 and the sample width"):
        assess_restart(data, 3, 3.5)
    with pytest.raises(InputFileError, match="distinct value"):
        assess_restart(np.zeros(1_000_000, dtype=np.uint8), 1, 1.0)


def chaos(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, CHAOS_HOME=str(cwd), COLUMNS="160")
    return subprocess.run([*CHAOS, *args], cwd=cwd, env=env, capture_output=True, timeout=600)


def test_cli_json_for_a_failed_sanity_check(tmp_path: Path) -> None:
    result = chaos(
        "assess-restart",
        str(DATA / "warmup8-8bit.bin"),
        "--bits",
        "8",
        "--h-initial",
        "3",
        "--json",
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    obj = json.loads(result.stdout)
    assert obj["sanity_check"]["passed"] is False and obj["sanity_check"]["x_max"] == 1000
    assert obj["h_r"] is None and obj["h_c"] is None and obj["h_final"] is None
    assert obj["passed"] is False and "sanity check FAILED" in obj["verdict"]


def test_cli_table_for_a_pass(tmp_path: Path) -> None:
    result = chaos("assess-restart", str(DATA / "biased3-3bit.bin"), "-b", "3", "--h-initial", "0.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "X_cutoff = 769, X_max = 695" in out and "h_r = 0.611561" in out and "h_c = 0.610453" in out
    assert "min(H_I, h_r, h_c) = 0.500000" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--h-initial", "9"], "between 0 and the sample width"),
        (["--h-initial", "nan"], "between 0 and the sample width"),
        (["--bits", "2", "--h-initial", "1"], "does not fit in 2 bits"),
        (["--h-initial", "0.5", "--missing"], "No such option"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = chaos("assess-restart", str(DATA / "biased3-3bit.bin"), *args, cwd=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 2 and message in err and err.count("\n") == 1, err
    assert "Traceback" not in err and result.stdout == b""


def test_iid_track_uses_the_mcv_estimate_and_reports_the_iid_tests() -> None:
    # Complement pairs along rows and along columns: both datasets fail chi-square
    # at once, so no permutation shuffles are needed.
    rng = np.random.default_rng(8)
    b = rng.integers(0, 2, (500, 500), dtype=np.uint8)
    checker = np.tile(np.array([[0, 1], [1, 0]], dtype=np.uint8), (500, 500))
    matrix = np.repeat(np.repeat(b, 2, axis=0), 2, axis=1) ^ checker
    result = assess_restart(matrix.ravel(), 1, 0.9, iid=True)
    assert set(result.rows) == {"mcv"} and set(result.cols) == {"mcv"}
    assert result.h_r == pytest.approx(-math.log2(0.5 + 2.5758293035489008 * math.sqrt(0.25 / 999_999)))
    assert result.iid_tests is not None
    assert result.iid_tests["rows"]["iid"] is False and result.iid_tests["cols"]["iid"] is False
    assert result.passed and result.h_final == pytest.approx(0.9)  # as ea_restart: the IID verdict is reported
    assert result.to_json()["iid_tests"]["rows"]["chi_square"] is False
