"""`chaos-host assess`: the SP 800-90B entropy assessment of a sample file.

The options, declared for typer; the command itself is
chaosmagnet.cli.assess_run.run_assess, which `chaos-host` also calls without
typer for plain command lines (fast start).
"""

from __future__ import annotations

from pathlib import Path

import typer

from chaosmagnet.cli.app import app
from chaosmagnet.cli.assess_run import AssessOptions, run_assess

__all__ = ["assess"]


@app.command()
def assess(
    file: Path = typer.Argument(
        ...,
        metavar="FILE",
        help="Sample file: one sample per byte, each value fitting in B bits; - reads standard input.",
    ),
    bits: int | None = typer.Option(
        None,
        "--bits",
        "-b",
        help="Bits per sample, 1..8 (default: the smallest width holding every value).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    iid: bool = typer.Option(
        False, "--iid", help="Also run the IID track (§5): permutation, chi-square, LRS tests."
    ),
    iid_full: bool = typer.Option(
        False,
        "--iid-full",
        help="Run the IID track with no early stop: every permutation test to its own verdict "
        "(implies --iid; up to 10,000 shuffles).",
    ),
    report: Path | None = typer.Option(
        None,
        "--report",
        help="Write a self-contained HTML report (histogram, estimator chart).",
    ),
) -> None:
    """SP 800-90B entropy assessment of a sample file (the ten non-IID estimators of §6.3)."""
    run_assess(
        AssessOptions(file=file, bits=bits, as_json=as_json, iid=iid, iid_full=iid_full, report=report)
    )
