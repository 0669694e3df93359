"""`chaos-host assess-restart` and `assess-conditioning`: the restart tests
(SP 800-90B §3.1.4) and the conditioning calculation (§3.1.5).

A thin layer over chaosmagnet.assessment.restart and .conditioning: validate
the arguments, run, print a table or one JSON object.  assess-restart exits 1
when the sanity check or the validation fails (no entropy is awarded), 0 when
both pass, 2 for bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from chaosmagnet.assessment.noniid import ESTIMATORS
from chaosmagnet.assessment.restart import RESTARTS, RestartResult, assess_restart, check_restart_input
from chaosmagnet.assessment.samples import load_samples
from chaosmagnet.cli.app import app
from chaosmagnet.cli.assess import _progress_bar

__all__ = ["assess_restart_command"]


def _restart_table(result: RestartResult) -> Table:
    table = Table()
    table.add_column("§")
    table.add_column("Estimator")
    table.add_column("rows\n(bits/sample)", justify="right")
    table.add_column("columns\n(bits/sample)", justify="right")

    def cell(value: float | None, best: float | None) -> str:
        if value is None:
            return "[dim]n/a[/]"
        text = f"{value:.6f}"
        return f"[bold red]{text}[/]" if best is not None and abs(value - best) < 1e-12 else text

    for key, (section, label) in ESTIMATORS.items():
        if key not in result.rows and key not in result.cols:
            continue
        table.add_row(
            section, label, cell(result.rows.get(key), result.h_r), cell(result.cols.get(key), result.h_c)
        )
    return table


@app.command("assess-restart")
def assess_restart_command(
    matrix: Path = typer.Argument(
        ...,
        metavar="MATRIX",
        help="Restart matrix: 1,000 restarts x 1,000 samples, one sample per byte, row after row.",
    ),
    bits: int | None = typer.Option(
        None, "--bits", "-b", help="Bits per sample, 1..8 (default: the smallest width holding every value)."
    ),
    h_initial: float = typer.Option(
        ..., "--h-initial", help="H_I: the initial entropy estimate, bits per sample (from `assess`)."
    ),
    iid: bool = typer.Option(
        False, "--iid", help="IID track: the MCV estimate on rows and columns, and the IID tests on each."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> int:
    """SP 800-90B §3.1.4 restart tests: sanity check, h_r, h_c, min(H_I, h_r, h_c)."""
    loaded = load_samples(matrix, bits)
    for warning in loaded.warnings:
        if "SP 800-90B asks for" not in warning:  # the size is checked by the assessment itself
            print(f"chaos-host assess-restart: warning: {warning}", file=sys.stderr)
    check_restart_input(loaded.samples, loaded.bits, h_initial)  # before the progress bar
    err = Console(stderr=True)
    with _progress_bar(err, "restart tests") as update:
        result = assess_restart(loaded.samples, loaded.bits, h_initial, iid=iid, progress=update)
    result = RestartResult(**{**result.__dict__, "file": str(matrix)})
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return 0 if result.passed else 1
    console = Console()
    s = result.sanity
    console.print(
        f"[bold]{matrix}[/]: {RESTARTS:,} restarts x {RESTARTS:,} samples of {result.bits} bits, "
        f"{result.alphabet} distinct values; H_I = {result.h_initial:.6f}",
        highlight=False,
    )
    console.print(
        f"sanity check (§3.1.4.3): alpha = {s.alpha:.6g}, X_cutoff = {s.x_cutoff}, "
        f"X_max = {s.x_max} (rows {s.x_rows}, columns {s.x_cols}): "
        + ("[green]passed[/]" if s.passed else "[bold red]FAILED[/]"),
        highlight=False,
    )
    if result.h_r is not None and result.h_c is not None:
        console.print(_restart_table(result))
        if result.iid_tests is not None:
            for which, verdict in result.iid_tests.items():
                console.print(
                    f"IID tests on the {'row' if which == 'rows' else 'column'} dataset: "
                    + ("[green]IID[/]" if verdict["iid"] else "[red]not IID[/]"),
                    highlight=False,
                )
        console.print(f"h_r = {result.h_r:.6f}   h_c = {result.h_c:.6f}   H_I = {result.h_initial:.6f}", highlight=False)
    colour = "green" if result.passed else "bold red"
    console.print(f"[{colour}]{result.verdict}[/]", highlight=False)
    return 0 if result.passed else 1


@app.command("assess-conditioning")
def assess_conditioning_command(
    n_in: int = typer.Argument(..., metavar="N_IN", help="Input bits per conditioned output."),
    n_out: int = typer.Argument(..., metavar="N_OUT", help="Output bits."),
    nw: int = typer.Argument(..., metavar="NW", help="Narrowest internal width of the conditioning function, bits."),
    h_in: float = typer.Argument(..., metavar="H_IN", help="Min-entropy of the n_in input bits."),
    non_vetted: bool = typer.Option(
        False, "--non-vetted", help="The conditioning component is not a vetted function (§3.1.5.2)."
    ),
    h_prime: float | None = typer.Option(
        None, "--h-prime", help="Non-vetted only: entropy per bit measured on the component's output."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """SP 800-90B §3.1.5 output entropy h_out of a conditioning component."""
    from chaosmagnet.assessment.conditioning import FULL_ENTROPY_MARGIN, assess_conditioning

    result = assess_conditioning(n_in, n_out, nw, h_in, vetted=not non_vetted, h_prime=h_prime)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    print(f"n_in = {n_in}, n_out = {n_out}, nw = {nw} (effective {min(nw, n_in)}), h_in = {h_in:g}")
    print(f"Output_Entropy(n_in, n_out, nw, h_in) = {result.output_entropy:.15g}")
    if non_vetted:
        print(f"0.999 x n_out = {0.999 * n_out:.15g}; h' x n_out = {(h_prime or 0.0) * n_out:.15g}")
        print(f"(non-vetted) h_out = {result.h_out:.15g} bits")
        return
    print(f"(vetted) h_out = {result.h_out:.15g} bits")
    if result.full_entropy:
        print(f"full entropy: h_in >= n_out + {FULL_ENTROPY_MARGIN}")
    else:
        print(f"not full entropy: that needs h_in >= n_out + {FULL_ENTROPY_MARGIN} = {n_out + FULL_ENTROPY_MARGIN}")
