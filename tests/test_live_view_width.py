"""The live view fits the terminal (issue 15): at 80, 120 and 160 columns no line is wider
than the terminal and no cell is cut (every number appears whole)."""

from __future__ import annotations

import io

import pytest
from chaosmagnet.cli.view import render
from rich.console import Console


def _source(name: str, state: str = "ok", reason: str = "", **values: float) -> dict:
    row = {
        "name": name,
        "kind": "node" if name.startswith("node:") else "local",
        "state": state,
        "reason": reason,
        "samples": 123_456_789,
        "rate": 20_000.0,
        "h_shannon": 7.984,
        "h_min": 6.571,
        "h_collision": 7.412,
        "h_assessed": 5.125,
        "assessment_progress": None,
        "credit_h": 0.5,
        "credited_bits": 98_765_432.0,
        "rct_failures": 12,
        "apt_failures": 3,
        "details": {},
    }
    row.update(values)
    return row


SNAPSHOT = {
    "uptime": 3725.0,
    "sources": [
        _source("os-rng", credit_h=0.0, credited_bits=0.0),
        _source("cpu-jitter"),
        _source("system", samples=1_234, credited_bits=17.0),
        _source(
            "node:desk:adc",
            state="quarantined",
            reason="anomaly: rate fell 60 % below its baseline (800/s against 2,000/s) over 4 s",
            anomaly={"state": "anomalous", "score": 1.5, "reason": "rate fell 60 %", "active": True},
        ),
        _source("video", state="unavailable", reason="no camera (/dev/video0 does not exist)", samples=0),
        _source(
            "node:desk-feather-long:jitter",
            state="waiting",
            reason="port now belongs to another device (serial 7CDFA1B2C3D4 expected)",
            details={
                "link_state": "waiting",
                "link_reason": "port now belongs to another device",
                "port": "/dev/serial/by-id/usb-Unexpected_Maker_FeatherS3_7CDFA1B2C3D4-if00",
                "frames": 1_234_567,
            },
        ),
    ],
    "pool": {
        "fill": 1.0,
        "credited_bits": 512.0,
        "capacity_bits": 512,
        "raw_bytes": 123_456_789_012,
        "raw_bits": 987_654_312_096,
        "extraction_ratio": 0.0512,
        "drawn_bits": 1_234_567.0,
        "fingerprint": "5307002dcea09319",
    },
    "outputs": {
        "kernel_feed": {
            "bytes_fed": 123_456,
            "bits_credited": 987_648,
            "writes": 3_858,
            "entropy_count": 256,
            "last_error": "",
        }
    },
}


def _screen(width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    console.print(render(SNAPSHOT, width))
    return console.file.getvalue()


@pytest.mark.parametrize("width", [80, 120, 160])
def test_no_line_wider_than_the_terminal_and_nothing_cut(width: int) -> None:
    screen = _screen(width)
    lines = screen.splitlines()
    assert max(len(line) for line in lines) <= width, "\n".join(line for line in lines if len(line) > width)
    assert "…" not in screen
    flat = "".join(screen.split())  # folded cells may wrap a long name, never a number
    for whole in ("6.571", "0.0512", "5307002dcea09319", "512/512"):
        assert whole in flat, whole
    if width >= 110:
        assert "123,456,789" in screen and "98,765,432" in screen
    else:
        assert "123M" in screen and "98.8M" in screen  # compact, whole
    assert "node:desk-feather-long:jitter" in flat
    assert "port now belongs to another device" in " ".join(screen.split())
    assert "anomaly: rate fell 60 % below its baseline" in " ".join(screen.split())


def test_wide_terminals_show_every_column() -> None:
    wide = _screen(160)
    for column in ("Shannon", "collision", "assessed", "credit/sample", "RCT", "APT", "anomaly"):
        assert column in wide
    assert "1.50" in wide  # the anomalous source's score
    narrow = _screen(80)
    assert "Shannon" not in narrow and "RCT/APT" in narrow and "12/3" in narrow


def test_a_stuck_source_reads_zero_not_minus_zero() -> None:
    stuck = dict(SNAPSHOT, sources=[_source("stuck", h_min=-0.0, h_shannon=-1e-12, h_collision=-0.0)])
    console = Console(width=160, file=io.StringIO(), color_system=None)
    console.print(render(stuck, 160))
    screen = console.file.getvalue()
    assert "-0.000" not in screen and "0.000" in screen
