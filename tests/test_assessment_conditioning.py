"""The §3.1.5 conditioning calculation against NIST's ea_conditioning 1.1.7."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chaosmagnet.assessment.conditioning import (
    assess_conditioning,
    output_entropy,
    pool_output_entropy,
)
from chaosmagnet.errors import UsageError

DATA = Path(__file__).resolve().parent / "data" / "sp800-90b-restart"


def _cases() -> list[tuple[list[str], float]]:
    """(ea_conditioning arguments, the h_out it printed), one per line of the reference."""
    cases = []
    for line in (DATA / "conditioning.reference.txt").read_text().splitlines():
        if not line.strip():
            continue
        args, _, printed = line.partition("|")
        cases.append((args.split(), float(printed.split("=")[1])))
    return cases


CASES = _cases()


def _run(args: list[str]):
    flag, *numbers = args
    n_in, n_out, nw = (int(x) for x in numbers[:3])
    h_in = float(numbers[3])
    if flag == "-v":
        return assess_conditioning(n_in, n_out, nw, h_in)
    return assess_conditioning(n_in, n_out, nw, h_in, vetted=False, h_prime=float(numbers[4]))


def test_reference_has_vetted_and_non_vetted_cases() -> None:
    flags = {args[0] for args, _ in CASES}
    assert flags == {"-v", "-n"} and len(CASES) >= 5


@pytest.mark.parametrize("args, expected", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_equals_ea_conditioning(args: list[str], expected: float) -> None:
    result = _run(args)
    assert result.h_out == pytest.approx(expected, abs=1e-9, rel=1e-15)


def test_nw_is_capped_by_n_in_as_in_appendix_e() -> None:
    # n_in = 128 < n_out: the 128-bit input decides (the third reference case).
    assert output_entropy(128, 256, 1600, 120) == output_entropy(128, 256, 128, 120)
    assert output_entropy(128, 256, 1600, 120) < 120


def test_full_entropy_needs_a_margin_of_64_bits() -> None:
    assert assess_conditioning(512, 256, 512, 320).full_entropy
    assert not assess_conditioning(512, 256, 512, 319.5).full_entropy
    assert not assess_conditioning(1024, 256, 256, 900, vetted=False, h_prime=1.0).full_entropy
    assert assess_conditioning(512, 256, 512, 320).h_out > 256 * (1 - 2**-64) - 1e-9


def test_pool_squeeze_carries_at_most_its_credit() -> None:
    assert pool_output_entropy(256, 256) == pytest.approx(255.0)  # -log2(2^-256 + 2^-256)
    assert pool_output_entropy(320, 256) == pytest.approx(256.0)
    assert pool_output_entropy(384, 512) == pytest.approx(384.0, abs=1e-9)
    assert pool_output_entropy(0, 256) == 0.0
    for credit in (1.0, 50.0, 200.0, 255.0, 300.0, 600.0):
        for n_out in (128, 256, 512):
            h = pool_output_entropy(credit, n_out)
            assert h <= min(credit, n_out) + 1e-9


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: output_entropy(0, 256, 256, 1.0), "n_in"),
        (lambda: output_entropy(8, 8, 8, 9.0), "at most n_in"),
        (lambda: output_entropy(8, 8, 8, math.nan), "h_in"),
        (lambda: assess_conditioning(8, 8, 8, 4.0, vetted=False), "--h-prime"),
        (lambda: assess_conditioning(8, 8, 8, 4.0, vetted=False, h_prime=1.5), "h'"),
        (lambda: assess_conditioning(8, 8, 8, 4.0, h_prime=0.5), "non-vetted"),
    ],
)
def test_bad_arguments(call, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        call()


def chaos(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, CHAOS_HOME=str(cwd))
    return subprocess.run(
        [sys.executable, "-m", "chaosmagnet", *args], cwd=cwd, env=env, capture_output=True, timeout=60
    )


def test_cli_json_h_out(tmp_path: Path) -> None:
    args = ["1024", "256", "256", "900", "--non-vetted", "--h-prime", "0.97", "--json"]
    result = chaos("assess-conditioning", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    obj = json.loads(result.stdout)
    assert obj["h_out"] == pytest.approx(248.32) and obj["vetted"] is False and obj["full_entropy"] is False
    result = chaos("assess-conditioning", "320", "256", "1600", "320", cwd=tmp_path)
    assert result.returncode == 0 and "(vetted) h_out = 255.999999993672" in result.stdout.decode()


def test_cli_bad_input(tmp_path: Path) -> None:
    result = chaos("assess-conditioning", "8", "8", "8", "9", cwd=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 2 and err.count("\n") == 1 and "at most n_in" in err and "Traceback" not in err
