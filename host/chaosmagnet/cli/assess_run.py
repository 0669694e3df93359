"""The `chaos-host assess` command without the command-line framework.

`run_assess` is the whole command: load and validate the file (or standard
input, "-"), run the non-IID estimators (and, with --iid, the IID track) with a
progress bar on stderr when it is a terminal, then print a table, one JSON
object, and/or write an HTML report.  Every output names the data's SHA-256
and sample count, so that a result can be tied to the data it came from.

cli/assess.py declares the command's options for typer and calls
`run_assess`.  `parse_assess_args` reads the common, well-formed command lines
itself, so that `chaos-host assess FILE --json` starts without typer (and the
pydantic it loads) and without rich; anything it does not recognise goes to
typer, which stays the one authority on errors and help.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from chaosmagnet.errors import UsageError

if TYPE_CHECKING:  # numpy, the estimators and rich load when the command runs
    from rich.console import Console
    from rich.table import Table

    from chaosmagnet.assessment.noniid import NonIidResult

__all__ = ["AssessOptions", "parse_assess_args", "run_assess"]


@dataclass(frozen=True)
class AssessOptions:
    """The arguments of `chaos-host assess`, as typer would pass them."""

    file: Path
    bits: int | None = None
    as_json: bool = False
    iid: bool = False
    iid_full: bool = False
    report: Path | None = None


_FLAGS = {"--json": "as_json", "--iid": "iid", "--iid-full": "iid_full"}
_VALUED = {"--bits": "bits", "-b": "bits", "--report": "report"}


def parse_assess_args(args: list[str]) -> AssessOptions | None:
    """The options of a plain `assess FILE [--bits N] [--json] [--iid] [--iid-full] [--report PATH]`
    command line, or None for anything else (help, an unknown or repeated option, a value
    that is not a number): typer then parses it and reports what is wrong."""
    if not args or args[0] != "assess":
        return None
    found: dict[str, Any] = {}
    file: str | None = None
    rest = iter(args[1:])
    for arg in rest:
        name, value = arg, None
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
        if name in _FLAGS and value is None:
            key, parsed = _FLAGS[name], True
        elif name in _VALUED:
            if value is None:
                value = next(rest, None)
            if value is None or value.startswith("-") or value == "":
                return None
            key = _VALUED[name]
            if key == "bits":
                if not value.isdigit() or not value.isascii():
                    return None
                parsed = int(value)
            else:
                parsed = Path(value)
        elif arg == "-" or not arg.startswith("-"):
            if file is not None:
                return None
            file = arg
            continue
        else:
            return None
        if key in found:
            return None
        found[key] = parsed
    if file is None:
        return None
    return AssessOptions(file=Path(file), **found)


@contextmanager
def _stderr_progress(*whats: str) -> Iterator[list[Callable[[int, int, str], None] | None]]:
    """Progress bars on stderr, one per ``what``, when it is a terminal (rich loads only then);
    else a None for each."""
    stream = sys.stderr
    if stream is None or not stream.isatty():
        yield [None for _ in whats]
        return
    from rich.console import Console

    with _progress_bars(Console(stderr=True), *whats) as updates:
        yield list(updates)


@contextmanager
def _progress_bars(console: Console, *whats: str) -> Iterator[list[Callable[[int, int, str], None]]]:
    """Transient progress bars on stderr, one per ``what``, each driven by its
    progress(done, total, description) (callable from any thread)."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:

        def updater(what: str) -> Callable[[int, int, str], None]:
            task = progress.add_task(what, total=None)

            def update(done: int, total: int, description: str) -> None:
                progress.update(task, completed=done, total=total, description=f"{what}: {description}")

            return update

        yield [updater(what) for what in whats]


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

    table.add_column("Why", overflow="fold")

    previous = [""]

    def row(label: str, test: dict[str, Any], detail: str = "") -> None:
        from rich.markup import escape

        status = test.get("status", "undecided")
        note = test.get("note") or ""
        # The note repeats the status word ("not applicable: ...", "undecided: ..."); keep the reason.
        for prefix in ("not applicable: ", "undecided: "):
            if note.startswith(prefix):
                note = note[len(prefix) :]
        shown = "[dim]same as above[/]" if note and note == previous[0] else escape(note or detail)
        previous[0] = note
        table.add_row(label, _STATUS_TEXT.get(status, status), shown)

    chi = data.get("chi_square", {})
    for key in ("independence", "goodness_of_fit"):
        if key in chi:
            test = chi[key]
            detail = ""
            if test.get("p_value") is not None:
                p = test["p_value"]
                shown_p = f"p = {p:.3g}" if p > 0 else "p < 1e-300"
                detail = f"χ² = {test['statistic']:.2f}, df = {test['df']}, {shown_p}"
            row(f"chi-square {key.replace('_', ' ')}", test, detail)
    if "lrs" in data:
        lrs = data["lrs"]
        detail = ""
        if lrs.get("probability") is not None:
            detail = f"longest repeat {lrs['length']}, Pr(X ≥ 1) = {lrs['probability']:.3g}"
        row("longest repeated substring", lrs, detail)
    for name, test in data.get("permutation", {}).get("tests", {}).items():
        row(f"permutation: {name}", test)
    return table


_STATUS_TEXT = {
    "passed": "[green]pass[/]",
    "failed": "[red]fail[/]",
    "undecided": "[yellow]undecided[/]",
    "not_applicable": "[yellow]not applicable[/]",
}


def _read_input(file: Path, bits: int | None) -> Any:
    """The samples of FILE, or of standard input when FILE is "-"."""
    from chaosmagnet.assessment.samples import load_samples, samples_from_bytes

    if str(file) != "-":
        return load_samples(file, bits)
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError(
            "standard input is a terminal; pipe the samples in "
            "(e.g. chaos-host sample cpu-jitter -n 1000000 -o - | chaos-host assess -)"
        )
    return samples_from_bytes(sys.stdin.buffer.read(), bits, "-")




def run_assess(options: AssessOptions) -> None:
    """`chaos-host assess`: assess options.file and print or write the results."""
    file, bits, as_json = options.file, options.bits, options.as_json
    iid, iid_full, report = options.iid, options.iid_full, options.report
    # Nothing here multiplies matrices: one BLAS thread (numpy's import then starts
    # no spinning helper threads), and the estimators' buffers go back to the system.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from chaosmagnet.assessment._kernel import prefer_mmap

    prefer_mmap()
    from chaosmagnet.assessment.noniid import assess_noniid

    iid = iid or iid_full

    if report is not None:
        from chaosmagnet.cli.common import check_writable

        check_writable(report)
    iid_module: ModuleType | None = None
    if iid:
        try:
            from chaosmagnet.assessment import iid as iid_module
        except ImportError:
            raise UsageError(
                "the IID track (chaosmagnet.assessment.iid) is not available in this build"
            ) from None
    loaded = _read_input(file, bits)
    for warning in loaded.warnings:
        print(f"chaos-host assess: warning: {warning}", file=sys.stderr)

    iid_result = None
    if iid_module is None:
        with _stderr_progress("non-IID estimators") as (update,):
            result = assess_noniid(loaded.data, loaded.bits, progress=update)
    else:
        from chaosmagnet.assessment.tracks import assess_both

        # The IID track runs in a thread beside the non-IID estimators.
        with _stderr_progress("non-IID estimators", "IID tests") as (update, update_iid):
            result, iid_result = assess_both(
                loaded.samples,
                loaded.bits,
                stop_early=not iid_full,
                noniid_progress=update,
                iid_progress=update_iid,
            )
    result = replace(result, file=str(file), warnings=tuple(loaded.warnings), sha256=loaded.sha256)

    if report is not None:
        from chaosmagnet.assessment.report import render_html
        from chaosmagnet.cli.common import atomic_output

        page = render_html(result, loaded.samples, iid_result)
        with atomic_output(report) as handle:
            handle.write(page.encode("utf-8"))

    if as_json:
        obj = result.to_json()
        if iid_result is not None:
            obj["iid"] = iid_result.to_json()
        sys.stdout.write(json.dumps(obj, indent=2) + "\n")
        return

    from rich.console import Console
    from rich.markup import escape

    console = Console()
    name = "standard input" if str(file) == "-" else str(file)
    console.print(
        f"[bold]{escape(name)}[/]: {result.samples:,} samples of {result.bits} bits, "
        f"{result.alphabet} distinct values",
        highlight=False,
    )
    console.print(f"SHA-256: {loaded.sha256}", highlight=False)
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
        verdict = data.get("verdict")
        if verdict == "iid":
            console.print(
                f"[green]IID[/]: entropy estimate (most common value) = {data['h_iid']:.6f} "
                "bits per sample",
                highlight=False,
            )
        elif verdict == "not_proven":
            missing = len(iid_result.not_applicable)
            tests = "test" if missing == 1 else "tests"
            console.print(
                f"[yellow]IID not proven[/]: {missing} {tests} not applicable to this data "
                "(too few samples); a test not run is not a pass, so use the non-IID estimate above",
                highlight=False,
            )
        else:
            console.print("[red]not IID[/]: use the non-IID estimate above", highlight=False)
        if any(t.status == "undecided" for t in iid_result.permutation_tests):
            console.print(
                "undecided tests stopped early because the verdict was already certain; "
                "--iid-full runs each to its own verdict",
                highlight=False,
            )
    if report is not None:
        console.print(f"report written to {report}", highlight=False)
