"""`chaos-host assess`: the SP 800-90B entropy assessment of a sample file.

A thin layer over chaosmagnet.assessment: load and validate the file, run the
non-IID estimators (and, with --iid, the IID track) with a progress bar on
stderr, then print a table, one JSON object, and/or write an HTML report.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import typer

from chaosmagnet.cli.app import app
from chaosmagnet.errors import UsageError

if TYPE_CHECKING:  # numpy, the estimators and rich load when the command runs
    from rich.console import Console
    from rich.table import Table

    from chaosmagnet.assessment.noniid import NonIidResult

__all__ = ["assess"]


@contextmanager
def _progress_bar(console: Console, what: str) -> Iterator[Callable[[int, int, str], None]]:
    """A transient progress bar on stderr, driven by progress(done, total, description)."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(what, total=None)

        def update(done: int, total: int, description: str) -> None:
            progress.update(task, completed=done, total=total, description=f"{what}: {description}")

        yield update


def _estimator_table(result: NonIidResult) -> Table:
    from rich.table import Table

    from chaosmagnet.assessment.noniid import ESTIMATORS

    binary = result.h_bitstring is None
    table = Table(title=None, show_lines=False)
    table.add_column("§")
    table.add_column("Estimator")
    table.add_column("H_original\n(bits/sample)", justify="right")
    if not binary:
        table.add_column("H_bitstring\n(bits/bit)", justify="right")

    def cell(ran: bool, value: float | None, best: float | None) -> str:
        if not ran:
            return "[dim]n/a[/]"
        if value is None:
            return "[dim]too few samples[/]"
        text = f"{value:.6f}"
        return f"[bold red]{text}[/]" if best is not None and abs(value - best) < 1e-12 else text

    for key, (section, label) in ESTIMATORS.items():
        est = result.estimators[key]
        row = [section, label, cell(est.ran_original, est.h_original, result.h_original)]
        if not binary:
            row.append(cell(est.ran_bitstring, est.h_bitstring, result.h_bitstring))
        table.add_row(*row)
    return table


def _iid_table(iid: Any) -> Table:
    from rich.table import Table

    data = iid.to_json()
    table = Table()
    table.add_column("IID test (§5)")
    table.add_column("Result")

    def verdict(passed: bool | None) -> str:
        if passed is None:
            return "[dim]undecided (stopped early)[/]"
        return "[green]pass[/]" if passed else "[red]fail[/]"

    chi = data.get("chi_square", {})
    for key in ("independence", "goodness_of_fit"):
        if key in chi:
            table.add_row(f"chi-square {key.replace('_', ' ')}", verdict(chi[key].get("passed")))
    if "lrs" in data:
        table.add_row("longest repeated substring", verdict(data["lrs"].get("passed")))
    for name, test in data.get("permutation", {}).get("tests", {}).items():
        table.add_row(f"permutation: {name}", verdict(test.get("passed")))
    return table


@app.command()
def assess(
    file: Path = typer.Argument(
        ..., metavar="FILE", help="Sample file: one sample per byte, each value fitting in B bits."
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
    report: Path | None = typer.Option(
        None,
        "--report",
        help="Write a self-contained HTML report (histogram, estimator chart).",
    ),
) -> None:
    """SP 800-90B entropy assessment of a sample file (the ten non-IID estimators of §6.3)."""
    from rich.console import Console

    from chaosmagnet.assessment.noniid import assess_noniid
    from chaosmagnet.assessment.samples import load_samples
    from chaosmagnet.cli.common import atomic_output, check_writable

    if report is not None:
        check_writable(report)
    iid_module: ModuleType | None = None
    if iid:
        try:
            from chaosmagnet.assessment import iid as iid_module
        except ImportError:
            raise UsageError(
                "the IID track (chaosmagnet.assessment.iid) is not available in this build"
            ) from None
    loaded = load_samples(file, bits)
    for warning in loaded.warnings:
        print(f"chaos-host assess: warning: {warning}", file=sys.stderr)
    err = Console(stderr=True)

    with _progress_bar(err, "non-IID estimators") as update:
        result = assess_noniid(loaded.samples, loaded.bits, progress=update)
    result = replace(result, file=str(file), warnings=tuple(loaded.warnings))
    iid_result = None
    if iid_module is not None:
        with _progress_bar(err, "IID tests") as update:
            iid_result = iid_module.assess_iid(loaded.samples, loaded.bits, progress=update)

    if report is not None:
        from chaosmagnet.assessment.report import render_html

        page = render_html(result, loaded.samples, iid_result)
        with atomic_output(report) as handle:
            handle.write(page.encode("utf-8"))

    if as_json:
        obj = result.to_json()
        if iid_result is not None:
            obj["iid"] = iid_result.to_json()
        sys.stdout.write(json.dumps(obj, indent=2) + "\n")
        return

    console = Console()
    console.print(
        f"[bold]{file}[/]: {result.samples:,} samples of {result.bits} bits, "
        f"{result.alphabet} distinct values",
        highlight=False,
    )
    console.print(_estimator_table(result))
    console.print(f"H_original  = {result.h_original:.6f} bits per sample", highlight=False)
    if result.h_bitstring is not None:
        console.print(f"H_bitstring = {result.h_bitstring:.6f} bits per bit", highlight=False)
        console.print(
            f"[bold]H_assessed  = min(H_original, {result.bits} x H_bitstring) = "
            f"{result.h_assessed:.6f} bits per sample[/]",
            highlight=False,
        )
    else:
        console.print(
            f"[bold]H_assessed  = H_original = {result.h_assessed:.6f} bits per sample[/] "
            "(binary samples)",
            highlight=False,
        )
    if iid_result is not None:
        console.print(_iid_table(iid_result))
        data = iid_result.to_json()
        if data.get("iid"):
            console.print(
                f"[green]IID[/]: entropy estimate (most common value) = {data['h_iid']:.6f} "
                "bits per sample",
                highlight=False,
            )
        else:
            console.print("[red]not IID[/]: use the non-IID estimate above", highlight=False)
    if report is not None:
        console.print(f"report written to {report}", highlight=False)
