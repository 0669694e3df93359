"""`chaos-host bench` prints a table (issue 15): figure, value, unit, target, PASS/FAIL;
integers as integers."""

from __future__ import annotations

from chaosmagnet.bench import format_results, results_rows

RESULTS = {
    "assessment (non-IID, 1M 8-bit samples)": {
        "samples": 1_000_000,
        "wall_s": 3.043,
        "peak_rss_MB": 219.4,
        "target_wall_s": 3,
        "target_peak_rss_MB": 1000,
    },
    "pool ingest": {"batch_samples": 4096, "ingest_MB_per_s": 156.2},
    "cpu-jitter": {"samples_per_s": 2_000_000.0, "default_rate": 20000.0},
}


def test_targets_are_marked_and_integers_stay_integers() -> None:
    rows = {(r[0], r[1]): r for r in results_rows(RESULTS)}
    section = "assessment (non-IID, 1M 8-bit samples)"
    assert rows[(section, "wall")][2:] == ("3.043", "s", "≤ 3", "FAIL")  # 3.043 s against 3 s: a mark
    assert rows[(section, "peak rss")][2:] == ("219.400", "MB", "≤ 1,000", "PASS")
    assert rows[(section, "samples")][2] == "1,000,000"
    assert rows[("cpu-jitter", "default rate")][2] == "20,000"  # 20000.0 is an integer, not 20,000.000
    assert rows[("pool ingest", "ingest")][3] == "MB/s"
    text = format_results(RESULTS)
    assert text.splitlines()[0].split() == ["section", "figure", "value", "unit", "target", "mark"]
    assert "_" not in "".join(r[1] for r in rows.values())  # no snake_case figure names
