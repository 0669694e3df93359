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
from rich.progress import BarColumn, TextColumn
from rich.table import Table

from chaosmagnet.assessment.noniid import ESTIMATORS
from chaosmagnet.assessment.restart import RESTARTS, RestartResult, assess_restart, check_restart_input
from chaosmagnet.assessment.samples import load_samples
from chaosmagnet.cli.app import app
from chaosmagnet.cli.assess_run import _progress_bars

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
        table.add_row(section, label, cell(result.rows.get(key), result.h_r), cell(result.cols.get(key), result.h_c))
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
    with _progress_bars(err, "restart tests") as (update,):
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
        console.print(
            f"h_r = {result.h_r:.6f}   h_c = {result.h_c:.6f}   H_I = {result.h_initial:.6f}", highlight=False
        )
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


@app.command("restart-campaign")
def restart_campaign_command(
    source: str = typer.Argument(
        ..., metavar="SOURCE", help="A local source (see `chaos-host sources`) or node:LABEL:adc|rng|jitter."
    ),
    restarts: int = typer.Option(RESTARTS, "--restarts", help="Number of restarts (the standard: 1,000)."),
    samples: int = typer.Option(1000, "--samples", help="Samples kept after each restart (the standard: 1,000)."),
    out: Path = typer.Option(..., "--out", "-o", help="The matrix file (one restart per row)."),
    bits: int | None = typer.Option(None, "--bits", "-b", help="Keep the low B bits (default: the source's width)."),
    restart_timeout: float = typer.Option(
        120.0,
        "--restart-timeout",
        help="Seconds one restart may take (a node: its reboots, redone ones included) before the campaign stops.",
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help="chaos.toml (default: ./chaos.toml if present)."),
) -> int:
    """Collect a restart matrix unattended: restart SOURCE, keep its first samples, repeat (resumable)."""
    import asyncio

    from rich.progress import MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    from chaosmagnet.campaign.local import LocalRestarter
    from chaosmagnet.campaign.node import NodeRestarter, parse_node_source
    from chaosmagnet.campaign.runner import (
        CampaignPlan,
        Restarter,
        campaign_files,
        completed_restarts,
        run_campaign,
    )
    from chaosmagnet.cli.common import check_writable, load, source_options
    from chaosmagnet.errors import UsageError, escape_device_text
    from chaosmagnet.nodes.registry import NodeRegistry
    from chaosmagnet.sources.registry import build_source, known_sources

    if not restart_timeout > 0:
        raise UsageError("--restart-timeout must be positive")
    restarter: Restarter
    if source.startswith("node:"):
        label, node_source = parse_node_source(source)
        width = bits or 8  # node samples are the low 8 bits (ADC: of each 12-bit reading)
        plan = CampaignPlan(source=source, kind="node", restarts=restarts, samples=samples, bits=width)
        plan.check()
        check_writable(out)
        record = NodeRegistry().get(label)
        restarter = NodeRestarter.for_record(record, node_source, timeout=restart_timeout)
    else:
        if source not in known_sources():
            raise UsageError(f"unknown source {source!r} (known: {', '.join(known_sources())}, or node:LABEL:SRC)")
        cfg = load(config)
        width = bits or build_source(source, source_options(cfg)).info.bits_per_sample
        plan = CampaignPlan(source=source, kind="local", restarts=restarts, samples=samples, bits=width)
        plan.check()
        check_writable(out)
        restarter = LocalRestarter(source, width, config=cfg.path, timeout=restart_timeout)
    files = campaign_files(out)
    err = Console(stderr=True)
    if files.log.exists() and not out.exists():
        err.print(f"resuming the campaign recorded in {files.log}", highlight=False)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(f"restarting {source}", total=restarts)
        if isinstance(restarter, NodeRestarter):
            restarter.notice = lambda text: bar.console.print(
                f"chaos-host restart-campaign: {escape_device_text(text)}", highlight=False, markup=False
            )
        first: list[int] = []

        def progress(done: int, total: int) -> None:
            if not first:
                first.append(done)
                bar.reset(task, total=total, completed=done)  # the ETA counts this run's pace only
            bar.update(task, completed=done)

        try:
            result = asyncio.run(run_campaign(plan, restarter, out, progress=progress))
        except KeyboardInterrupt:
            bar.stop()
            done = completed_restarts(files, plan)
            print(
                f"chaos-host restart-campaign: interrupted after {done} of {restarts} restarts; "
                "run the same command again to resume",
                file=sys.stderr,
            )
            return 130
    resumed = f" (resumed at restart {result.resumed_at})" if result.resumed_at else ""
    print(
        f"wrote {out}: {restarts:,} restarts x {samples:,} samples of {width} bits from {source}{resumed}; "
        f"restart times in {files.log}"
    )
    if restarts == RESTARTS and samples == 1000:
        print(f"next: chaos-host assess-restart {out} --bits {width} --h-initial H_I")
    return 0
