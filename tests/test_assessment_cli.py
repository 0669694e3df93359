"""`chaos-host assess` as a user runs it: a real process on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CHAOS = [sys.executable, "-m", "chaosmagnet"]
VECTORS = Path(__file__).resolve().parent / "data" / "sp800-90b"  # NIST ea_non_iid / ea_iid 1.1.7 outputs


def chaos(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, CHAOS_HOME=str(cwd), COLUMNS="160")
    return subprocess.run([*CHAOS, *args], cwd=cwd, env=env, capture_output=True, timeout=timeout)


@pytest.fixture()
def sample_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    path = tmp_path / "s.bin"
    path.write_bytes(rng.integers(0, 16, 30_000).astype(np.uint8).tobytes())
    return path


def test_json_is_one_object_with_every_estimator(tmp_path: Path, sample_file: Path) -> None:
    result = chaos("assess", str(sample_file), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    obj = json.loads(result.stdout)
    assert obj["file"] == str(sample_file) and obj["bits"] == 4 and obj["samples"] == 30_000
    assert set(obj["estimators"]) == {
        "mcv",
        "collision",
        "markov",
        "compression",
        "t_tuple",
        "lrs",
        "multi_mcw",
        "lag",
        "multi_mmc",
        "lz78y",
    }
    assert obj["h_assessed"] == pytest.approx(min(obj["h_original"], 4 * obj["h_bitstring"]))
    assert "at least 1,000,000" in result.stderr.decode()  # short input: warned, still computed


def test_bits_option_and_table_output(tmp_path: Path, sample_file: Path) -> None:
    result = chaos("assess", str(sample_file), "--bits", "6", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "30,000 samples of 6 bits" in out and "LZ78Y prediction" in out
    assert "H_assessed  = min(H_original, 6 x H_bitstring)" in out
    assert "only 4 of the 6 bits" in result.stderr.decode()


def test_html_report_is_self_contained(tmp_path: Path, sample_file: Path) -> None:
    report = tmp_path / "report.html"
    result = chaos("assess", str(sample_file), "--report", str(report), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3  # histogram + 2 charts
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    assert "<script" not in page and "src=" not in page and "<link" not in page


def test_iid_track_is_added_under_iid(tmp_path: Path) -> None:
    result = chaos("assess", str(VECTORS / "markov4-4bit.bin"), "--iid", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    obj = json.loads(result.stdout)
    assert obj["iid"]["iid"] is False  # clearly not IID: the early stop keeps this quick
    assert obj["h_assessed"] == pytest.approx(0.675927, abs=1e-6)


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (lambda d: (d / "e.bin").write_bytes(b""), ["e.bin"], "is empty"),
        (lambda d: None, ["missing.bin"], "no such file"),
        (lambda d: (d / "sub").mkdir(), ["sub"], "is a directory"),
        (lambda d: os.mkfifo(d / "fifo"), ["fifo"], "not a regular file"),
        (
            lambda d: (d / "w.bin").write_bytes(bytes([1, 2, 9])),
            ["w.bin", "--bits", "3"],
            "does not fit in 3 bits",
        ),
        (
            lambda d: (d / "b.bin").write_bytes(bytes([1])),
            ["b.bin", "--bits", "9"],
            "between 1 and 8",
        ),
        (
            lambda d: (d / "b.bin").write_bytes(bytes([1])),
            ["b.bin", "--bits", "0"],
            "between 1 and 8",
        ),
        (
            lambda d: (d / "r.bin").write_bytes(bytes([1, 0])),
            ["r.bin", "--report", "no/such/dir/r.html"],
            "does not exist",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, setup, args: list[str], message: str
) -> None:
    setup(tmp_path)
    result = chaos("assess", *args, cwd=tmp_path, timeout=60)
    err = result.stderr.decode()
    assert result.returncode == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert result.stdout == b""
    assert not list(tmp_path.glob("**/*.html"))
