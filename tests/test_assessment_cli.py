"""`chaos-host assess` as a user runs it: a real process on real files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CHAOS = [sys.executable, "-m", "chaosmagnet"]
VECTORS = Path(__file__).resolve().parent / "data" / "sp800-90b"  # NIST ea_non_iid / ea_iid 1.1.7 outputs


def chaos(
    *args: str, cwd: Path, timeout: float = 300, stdin: bytes | None = None
) -> subprocess.CompletedProcess:
    env = dict(os.environ, CHAOS_HOME=str(cwd), COLUMNS="160")
    return subprocess.run(
        [*CHAOS, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=timeout,
        input=stdin if stdin is not None else b"",
    )


def strict_json(text: bytes) -> dict:
    """The output parsed as JSON, refusing NaN and infinities."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in JSON output")

    return json.loads(text, parse_constant=refuse)


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


# --------------------------------------------------------------------------
# Standard input and the SHA-256 of the data
# --------------------------------------------------------------------------


def test_stdin_json_carries_sha256_and_count(tmp_path: Path, sample_file: Path) -> None:
    data = sample_file.read_bytes()
    result = chaos("assess", "-", "--json", cwd=tmp_path, stdin=data)
    assert result.returncode == 0, result.stderr
    obj = strict_json(result.stdout)
    assert obj["file"] == "-" and obj["samples"] == 30_000 and obj["bits"] == 4
    assert obj["sha256"] == hashlib.sha256(data).hexdigest()
    from_file = strict_json(chaos("assess", str(sample_file), "--json", cwd=tmp_path).stdout)
    assert from_file["sha256"] == obj["sha256"]
    assert from_file["estimators"] == obj["estimators"]  # same data, same numbers


def test_text_and_report_carry_sha256_and_count(tmp_path: Path, sample_file: Path) -> None:
    digest = hashlib.sha256(sample_file.read_bytes()).hexdigest()
    report = tmp_path / "r.html"
    result = chaos("assess", "-", "--report", str(report), cwd=tmp_path, stdin=sample_file.read_bytes())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0].startswith("standard input: 30,000 samples of 4 bits")
    assert lines[1] == f"SHA-256: {digest}"
    page = report.read_text()
    assert f'<code class="sha256">{digest}</code> · 30,000 samples' in page
    named = chaos("assess", str(sample_file), cwd=tmp_path).stdout.decode().splitlines()
    assert named[0].startswith(f"{sample_file}: 30,000 samples") and named[1] == f"SHA-256: {digest}"


def test_empty_stdin_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = chaos("assess", "-", "--iid", cwd=tmp_path, stdin=b"", timeout=60)
    err = result.stderr.decode()
    assert result.returncode == 2 and result.stdout == b""
    assert "standard input: is empty" in err and len(err.strip().splitlines()) == 1


def test_terminal_stdin_is_refused(tmp_path: Path) -> None:
    """`assess -` with the terminal as standard input would wait forever: refused at once."""
    import pty

    controller, terminal = pty.openpty()
    try:
        env = dict(os.environ, CHAOS_HOME=str(tmp_path), COLUMNS="160")
        result = subprocess.run(
            [*CHAOS, "assess", "-"], cwd=tmp_path, env=env, stdin=terminal, capture_output=True, timeout=60
        )
    finally:
        os.close(controller)
        os.close(terminal)
    err = result.stderr.decode()
    assert result.returncode == 2 and "standard input is a terminal" in err
    assert len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------
# IID: the reasons, --iid-full, degenerate inputs
# --------------------------------------------------------------------------


def test_iid_undecided_tests_say_why(tmp_path: Path) -> None:
    path = VECTORS / "markov4-4bit.bin"
    text = chaos("assess", str(path), "--iid", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    out = text.stdout.decode()
    assert "undecided" in out and "so no shuffles were made" in out
    assert "stopped early because the verdict was already certain; --iid-full" in out
    assert "(stopped early)" not in out
    obj = strict_json(chaos("assess", str(path), "--iid", "--json", cwd=tmp_path).stdout)["iid"]
    assert obj["verdict"] == "not_iid"
    for test in obj["permutation"]["tests"].values():
        assert test["status"] == "undecided" and test["passed"] is None
        assert test["note"].startswith("not run: the chi-square independence")


def test_iid_full_runs_every_permutation_test_to_its_verdict(tmp_path: Path) -> None:
    ramp = tmp_path / "ramp.bin"
    ramp.write_bytes((np.arange(600) % 200).astype(np.uint8).tobytes())
    quick = strict_json(chaos("assess", str(ramp), "--iid", "--json", cwd=tmp_path).stdout)["iid"]
    assert quick["permutation"]["shuffles"] == 0
    result = chaos("assess", str(ramp), "--iid-full", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    full = strict_json(result.stdout)["iid"]
    statuses = {name: t["status"] for name, t in full["permutation"]["tests"].items()}
    assert set(statuses.values()) <= {"passed", "failed"}, statuses
    assert all(t["note"] is None for t in full["permutation"]["tests"].values())
    assert full["verdict"] == "not_iid" and full["permutation"]["shuffles"] > 0


def test_ten_two_bit_samples_are_not_iid_proven(tmp_path: Path) -> None:
    data = bytes([0, 1, 2, 3, 0, 1, 2, 3, 1, 2])
    text = chaos("assess", "-", "--iid", cwd=tmp_path, stdin=data)
    assert text.returncode == 0, text.stderr
    out = text.stdout.decode()
    assert "IID not proven" in out and "df = -3" in out and "not applicable" in out
    assert "IID: entropy estimate" not in out
    result = chaos("assess", "-", "--iid", "--json", cwd=tmp_path, stdin=data)
    obj = strict_json(result.stdout)["iid"]
    assert obj["iid"] is False and obj["verdict"] == "not_proven" and obj["h_iid"] is None
    independence = obj["chi_square"]["independence"]
    assert independence["df"] == -3 and independence["status"] == "not_applicable"
    assert independence["passed"] is None and independence["p_value"] is None


@pytest.mark.parametrize("as_json", [True, False])
def test_ten_eight_bit_samples_do_not_crash(tmp_path: Path, as_json: bool) -> None:
    data = bytes([10, 200, 33, 47, 95, 128, 255, 3, 77, 160])
    args = ["assess", "-", "--iid"] + (["--json"] if as_json else [])
    result = chaos(*args, cwd=tmp_path, stdin=data, timeout=120)
    err = result.stderr.decode()
    assert result.returncode == 0 and "Traceback" not in err, err
    if as_json:
        obj = strict_json(result.stdout)["iid"]
        assert obj["lrs"]["status"] == "not_applicable" and obj["verdict"] == "not_proven"
    else:
        assert "no value repeats" in result.stdout.decode()


def test_report_shows_iid_reasons(tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    data = bytes([0, 1, 2, 3, 0, 1, 2, 3, 1, 2])
    result = chaos("assess", "-", "--iid", "--report", str(report), cwd=tmp_path, stdin=data)
    assert result.returncode == 0, result.stderr
    page = report.read_text()
    assert "IID not proven" in page and "not applicable" in page and "df = -3" in page


# --------------------------------------------------------------------------
# the plain command line runs without typer (start-up of `assess`, issue 17)

PLAIN_LINES = [
    (["assess", "f.bin"], {}),
    (["assess", "f.bin", "--bits", "3", "--json"], {"bits": 3, "as_json": True}),
    (["assess", "--json", "-b", "8", "f.bin"], {"bits": 8, "as_json": True}),
    (["assess", "f.bin", "--bits=2", "--iid"], {"bits": 2, "iid": True}),
    (["assess", "-", "--iid-full", "--report", "r.html"], {"iid_full": True, "report": Path("r.html")}),
    (["assess", "f.bin", "--report=r.html"], {"report": Path("r.html")}),
]

NOT_PLAIN_LINES = [
    ["assess"],
    ["assess", "--help"],
    ["assess", "f.bin", "--help"],
    ["assess", "f.bin", "g.bin"],
    ["assess", "f.bin", "--bits"],
    ["assess", "f.bin", "--bits", "x"],
    ["assess", "f.bin", "--bits", "-1"],
    ["assess", "f.bin", "-b8"],
    ["assess", "f.bin", "--json", "--json"],
    ["assess", "f.bin", "--json=yes"],
    ["assess", "f.bin", "--unknown"],
    ["assess", "f.bin", "--"],
    ["assess", "f.bin", "--report"],
    ["--version", "assess", "f.bin"],
    ["sample", "f.bin"],
]


@pytest.mark.parametrize(("args", "expected"), PLAIN_LINES)
def test_plain_assess_lines_are_parsed_without_typer(args: list[str], expected: dict) -> None:
    from chaosmagnet.cli.assess_run import AssessOptions, parse_assess_args

    file = Path("-") if "-" in args else Path("f.bin")
    assert parse_assess_args(args) == AssessOptions(file=file, **expected)


@pytest.mark.parametrize("args", NOT_PLAIN_LINES)
def test_anything_else_goes_to_typer(args: list[str]) -> None:
    from chaosmagnet.cli.assess_run import parse_assess_args

    assert parse_assess_args(args) is None


def test_the_plain_parser_knows_exactly_the_typer_options() -> None:
    """Both parsers name the same options: a new option in cli/assess.py must reach the other."""
    import typer

    from chaosmagnet.cli import assess_run, load_commands

    command = typer.main.get_command(load_commands("assess")).commands["assess"]
    declared = {opt for param in command.params for opt in param.opts if opt.startswith("-")}
    assert declared == set(assess_run._FLAGS) | set(assess_run._VALUED)
    fields = {f for f in assess_run.AssessOptions.__dataclass_fields__}
    assert {p.name for p in command.params} == fields


def test_plain_assess_loads_neither_typer_nor_rich_and_prints_what_typer_would(
    tmp_path: Path, sample_file: Path
) -> None:
    env = dict(os.environ, CHAOS_HOME=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "chaosmagnet", "assess", str(sample_file), "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    )
    import re

    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", proc.stderr, re.M))
    top_levels = {m.split(".")[0] for m in modules}
    assert "chaosmagnet" in top_levels and not top_levels & {"typer", "click", "rich", "pydantic"}
    # typer's route (an option spelled the way only typer takes it) gives the same object
    via_typer = chaos("assess", str(sample_file), "--json", "-b4", cwd=tmp_path)
    assert via_typer.returncode == 0, via_typer.stderr
    assert strict_json(via_typer.stdout.decode()) == strict_json(proc.stdout)


def test_plain_assess_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    result = chaos("assess", str(tmp_path / "missing.bin"), "--json", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.decode().strip().splitlines() == [
        f"chaos-host: error: {tmp_path / 'missing.bin'}: no such file"
    ]
    result = chaos("assess", str(tmp_path / "missing.bin"), "--bits", "9", cwd=tmp_path)
    assert result.returncode == 2 and b"between 1 and 8" in result.stderr and b"Traceback" not in result.stderr
