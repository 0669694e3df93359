"""Core commands: run, sources, sample, random, bench."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from chaosmagnet.cli.app import app
from chaosmagnet.errors import SourceUnavailable, UsageError

if TYPE_CHECKING:  # numpy, the engine, the sources and rich load when a command runs
    import numpy as np
    from rich.console import Console
    from rich.progress import Progress

    from chaosmagnet.engine import Engine

ConfigOpt = typer.Option(None, "--config", help="Configuration file (default: ./chaos.toml if present).")
SourceOpt = typer.Option(None, "--source", "-s", help="Run only this source (repeatable).")
CameraOpt = typer.Option(None, "--camera", help="OpenCV capture for the video source: device index or path/URL.")
AudioOpt = typer.Option(None, "--audio-device", help="PortAudio input device (name or index) for the audio source.")

# Hooks that other modules (control socket, dashboard, nodes) register to take
# part in `run`: each is awaited with (engine, options dict) inside the event
# loop after the engine starts, and returns an optional async cleanup callable.
RunCleanup = Callable[[], Awaitable[None]]
RunHook = Callable[["Engine", dict[str, Any]], Awaitable[Optional[RunCleanup]]]
RUN_HOOKS: list[RunHook] = []


def _engine_for(
    config_path: Path | None,
    names: list[str] | None,
    camera: str | None,
    audio_device: str | None,
    *,
    assess: bool = False,
) -> Engine:
    from chaosmagnet.engine import Engine
    from chaosmagnet.eventlog import JsonLineLog, logs_dir
    from chaosmagnet.sources.selection import build_sources, load, selected_source_names, source_options

    config = load(config_path)
    chosen = selected_source_names(config, names)
    sources = build_sources(config, chosen, source_options(config, camera, audio_device))
    return Engine(sources, config, health_log=JsonLineLog(logs_dir() / "health.jsonl"), assess=assess)


def _json_interval(snapshot: dict[str, Any]) -> str:
    keep = (
        "name",
        "kind",
        "state",
        "reason",
        "samples",
        "rate",
        "credited_bits",
        "pool_bits",
        "h_shannon",
        "h_min",
        "h_collision",
        "h_assessed",
        "credit_h",
        "rct_failures",
        "apt_failures",
        "dependence",
        "anomaly",
    )
    from chaosmagnet.cli.view import node_links

    sources = [{k: s.get(k) for k in keep} for s in snapshot["sources"]]
    pool_keys = ("credited_bits", "capacity_bits", "fill", "raw_bytes", "extraction_ratio", "drawn_bits", "fingerprint")
    interval = {
        "time": snapshot["time"],
        "uptime": snapshot["uptime"],
        "sources": sources,
        "nodes": node_links(snapshot),
        "pool": {k: snapshot["pool"][k] for k in pool_keys},
    }
    if snapshot.get("outputs"):
        interval["outputs"] = snapshot["outputs"]
    dependence = snapshot.get("dependence") or {}
    interval["dependence"] = {"groups": dependence.get("groups", []), "schedule": dependence.get("schedule", {})}
    return json.dumps(interval, sort_keys=True)


def _reload(engine: Engine, config_path: Path | None) -> None:
    """SIGHUP: re-read chaos.toml and apply it; a broken file keeps the running settings."""
    from chaosmagnet.errors import ChaosError
    from chaosmagnet.sources.selection import load

    try:
        changes = engine.reload(load(config_path))
    except ChaosError as exc:
        print(f"chaos-host: reload refused, keeping the running settings: {exc}", file=sys.stderr, flush=True)
        return
    what = "; ".join(changes) if changes else "nothing changed"
    print(f"chaos-host: configuration reloaded: {what}", file=sys.stderr, flush=True)


async def _run(engine: Engine, seconds: float | None, as_json: bool, options: dict[str, Any]) -> dict[str, Any]:
    import asyncio
    import contextlib
    import signal

    from rich.console import Console
    from rich.live import Live

    from chaosmagnet.cli.view import render, status_line
    from chaosmagnet.service import sd_notify, watchdog_interval

    stop = asyncio.Event()
    reload_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload_requested.set)
    console = Console()
    cleanups = []
    await engine.start()
    try:
        for hook in RUN_HOOKS:
            cleanup = await hook(engine, options)
            if cleanup is not None:
                cleanups.append(cleanup)
        sd_notify("READY=1", f"STATUS={status_line(engine.snapshot()).strip()}")
        watchdog = watchdog_interval()
        last_ping = loop.time()
        deadline = None if seconds is None else loop.time() + seconds
        live = None
        if not as_json and console.is_terminal:
            live = Live(render(engine.snapshot(), console.width), console=console, auto_refresh=False, transient=False)
            live.start()
        try:
            while not stop.is_set():
                timeout = 1.0 if deadline is None else max(0.0, min(1.0, deadline - loop.time()))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout)
                if reload_requested.is_set():
                    reload_requested.clear()
                    sd_notify("RELOADING=1")
                    _reload(engine, options.get("config"))
                    sd_notify("READY=1")
                snapshot = engine.snapshot()
                if as_json:
                    print(_json_interval(snapshot), flush=True)
                elif live is not None:
                    live.update(render(snapshot, console.width), refresh=True)
                else:  # not a terminal (a pipe, a log file): one plain line per interval
                    print(status_line(snapshot), flush=True)
                if watchdog is not None and loop.time() - last_ping >= watchdog:
                    sd_notify("WATCHDOG=1", f"STATUS={status_line(snapshot).strip()}")
                    last_ping = loop.time()
                if deadline is not None and loop.time() >= deadline:
                    break
        finally:
            if live is not None:
                live.stop()
    finally:
        sd_notify("STOPPING=1")
        for cleanup in reversed(cleanups):
            await cleanup()
        final = engine.snapshot()  # before stopping: the summary shows the links as they were
        await engine.stop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    return final


@app.command()
def run(
    seconds: Optional[float] = typer.Option(
        None, "--seconds", min=0.0, help="Stop after this many seconds (default: until Ctrl-C)."
    ),
    source: Optional[list[str]] = SourceOpt,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per second instead of the live view."),
    config: Optional[Path] = ConfigOpt,
    camera: Optional[str] = CameraOpt,
    audio_device: Optional[str] = AudioOpt,
    dashboard: bool = typer.Option(
        False, "--dashboard", help="Also serve the live web dashboard and /metrics (docs/dashboard.md)."
    ),
    listen: Optional[str] = typer.Option(
        None, "--listen", help="Dashboard address HOST:PORT (default 127.0.0.1:8765)."
    ),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Let the dashboard listen on a non-loopback address."
    ),
    node: Optional[list[str]] = typer.Option(
        None,
        "--node",
        help="Read this node: LABEL, its PORT, or LABEL@PORT (repeatable; default: every registered node).",
    ),
    feed_kernel: bool = typer.Option(
        False,
        "--feed-kernel",
        help="Also feed the kernel's random pool (RNDADDENTROPY; needs CAP_SYS_ADMIN; docs/kernel-feed.md).",
    ),
    mesh: Optional[str] = typer.Option(
        None, "--mesh", help="Join a mesh through this broker: mqtts://HOST:PORT (docs/mesh.md)."
    ),
    mesh_client: Optional[Path] = typer.Option(
        None, "--mesh-client", help="This host's mesh credentials folder (default: $CHAOS_HOME/mesh/client)."
    ),
) -> None:
    """Harvest entropy: live view of every source and the pool (Ctrl-C stops with a summary).

    SIGTERM stops cleanly with the summary; SIGHUP re-reads chaos.toml.
    """
    if feed_kernel:
        from chaosmagnet.kernelfeed import check_capability

        check_capability()  # refuse before any source starts
    import asyncio

    from chaosmagnet.cli.view import summary_lines

    engine = _engine_for(config, source, camera, audio_device, assess=True)
    options = {
        "config": config,
        "dashboard": dashboard,
        "listen": listen,
        "allow_remote": allow_remote,
        "nodes": node,
        "sources": source,
        "feed_kernel": feed_kernel,
        "mesh": mesh,
        "mesh_client": mesh_client,
    }
    final = asyncio.run(_run(engine, seconds, as_json, options))
    out = sys.stderr if as_json else sys.stdout
    for line in summary_lines(final):
        print(line, file=out)


@app.command()
def sources(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
    config: Optional[Path] = ConfigOpt,
    camera: Optional[str] = CameraOpt,
    audio_device: Optional[str] = AudioOpt,
) -> None:
    """List every source this program knows, and whether it can run here."""
    from chaosmagnet.cli.common import output_console
    from chaosmagnet.sources.registry import build_source, known_sources
    from chaosmagnet.sources.selection import load, source_options

    cfg = load(config)
    options = source_options(cfg, camera, audio_device)
    rows = []
    for name in known_sources():
        src = build_source(name, options)
        availability = src.availability()
        info = src.info
        rows.append(
            {
                "name": name,
                "kind": info.kind,
                "bits_per_sample": info.bits_per_sample,
                "declared_h": cfg.source(name).declared_h or info.declared_h,
                "conditioned": info.conditioned,
                "available": availability.available,
                "reason": availability.reason,
                "description": info.description,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    console = output_console()
    from rich.table import Table

    table = Table()
    for col in ("source", "kind", "bits", "declared H", "conditioned", "available here"):
        table.add_column(col)
    for r in rows:
        avail = "[green]yes[/]" if r["available"] else f"[red]no[/]: {r['reason']}"
        table.add_row(
            r["name"],
            r["kind"],
            str(r["bits_per_sample"]),
            f"{r['declared_h']:g}",
            "yes" if r["conditioned"] else "no",
            avail,
        )
    console.print(table)
    console.print(
        "[dim]`chaos-host sources --json` adds a description of each; "
        "docs/pipeline.md and docs/sources-av-hid.md explain them.[/]"
    )


def _progress(console: Console, credit: bool = False) -> Progress:
    """A progress bar on stderr; ``credit`` adds the rate credit arrives at (waits for credit)."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    from chaosmagnet.cli.common import credit_rate_column

    columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn()]
    if credit:
        columns.append(credit_rate_column())
    return Progress(*columns, TimeRemainingColumn(), console=console, transient=True)


async def _collect(source_name: str, count: int, options, console: Console) -> np.ndarray:
    import numpy as np

    from chaosmagnet.sources.registry import build_source

    src = build_source(source_name, options)
    availability = src.availability()
    if not availability.available:
        raise SourceUnavailable(f"source {source_name} is unavailable: {availability.reason}")
    await src.start()
    chunks: list[np.ndarray] = []
    got = 0
    try:
        with _progress(console) as progress:
            task = progress.add_task(f"sampling {source_name}", total=count)
            async for batch in src.batches():
                chunks.append(np.asarray(batch, dtype=np.uint8))
                got += len(batch)
                progress.update(task, completed=min(got, count))
                if got >= count:
                    break
    finally:
        await src.stop()
    if got < count:
        raise SourceUnavailable(f"source {source_name} stopped after {got} of {count} samples")
    return np.concatenate(chunks)[:count]


@app.command()
def sample(
    source_name: str = typer.Argument(..., metavar="SOURCE", help="Source to sample (see `chaos-host sources`)."),
    count: int = typer.Option(..., "--count", "-n", min=1, max=1_000_000_000, help="Number of samples."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file: one sample per byte."),
    bits: Optional[int] = typer.Option(
        None, "--bits", min=1, max=8, help="Keep the low B bits (default: the source's width)."
    ),
    rate: Optional[float] = typer.Option(
        None,
        "--rate",
        min=1.0,
        max=1e8,
        metavar="PER_SECOND",
        help="Samples per second for a polled source (default: its configured rate; cpu-jitter can do millions).",
    ),
    config: Optional[Path] = ConfigOpt,
    camera: Optional[str] = CameraOpt,
    audio_device: Optional[str] = AudioOpt,
) -> None:
    """Write raw samples for offline SP 800-90B assessment (the NIST tools' format)."""
    import asyncio

    import numpy as np
    from rich.console import Console

    from chaosmagnet.cli.common import atomic_output, check_writable
    from chaosmagnet.sources.registry import build_source, known_sources
    from chaosmagnet.sources.selection import load, source_options

    cfg = load(config)
    if source_name not in known_sources():
        raise UsageError(f"unknown source {source_name!r} (known: {', '.join(known_sources())})")
    check_writable(out)
    console = Console(stderr=True)
    options = source_options(cfg, camera, audio_device)
    if rate is not None:
        options.rates[source_name] = rate
    data = asyncio.run(_collect(source_name, count, options, console))
    width = bits or build_source(source_name, source_options(cfg, camera, audio_device)).info.bits_per_sample
    if width < 8:
        data = data & np.uint8((1 << width) - 1)
    with atomic_output(out) as handle:
        handle.write(data.tobytes())
    console.print(f"wrote {count:,} samples of {width} bits from {source_name} to {out}")


async def _random(
    engine: Engine, n_bytes: int, handle, timeout: float, console: Console, full_entropy: bool = False
) -> None:
    import asyncio

    from chaosmagnet.assessment.conditioning import pool_output_entropy
    from chaosmagnet.cli.common import waiting_printer
    from chaosmagnet.output import FULL_ENTROPY_SEED_BITS, SEED_BITS, OutputGenerator
    from chaosmagnet.quorum import quorum_from_config

    seed_bits = FULL_ENTROPY_SEED_BITS if full_entropy else SEED_BITS
    quorum = quorum_from_config(engine.config.extra) if full_entropy else None
    await engine.start()
    try:
        with _progress(console, credit=True) as progress:
            task = progress.add_task(f"waiting for {seed_bits} credited bits", total=seed_bits)
            await engine.wait_for_credit(
                seed_bits,
                timeout,
                lambda have, need: progress.update(task, completed=have),
                quorum=quorum,
                on_waiting=waiting_printer(console),
            )

        def quorum_met() -> bool:
            return quorum is None or quorum.status(engine.healthy_credit_by_source(fresh=True), seed_bits).met

        generator = OutputGenerator(engine.pool, seed_bits=seed_bits, can_seed=quorum_met)
        generator.seed()
        carried = pool_output_entropy(generator.seed_credit, 8 * 32)
        console.print(
            f"seeded from a pool holding {generator.seed_credit:.0f} credited bits: the 256-bit seed carries "
            f"{carried:.1f} bits of min-entropy (SP 800-90B §3.1.5)"
            + ("; full entropy" if full_entropy else ""),
            highlight=False,
        )
        chunk = bytearray(1 << 20)
        remaining = n_bytes
        while remaining > 0:
            view = memoryview(chunk)[: min(len(chunk), remaining)]
            generator.generate_into(view)
            await asyncio.to_thread(handle.write, view)
            remaining -= len(view)
    finally:
        await engine.stop()


@app.command("random")
def random_bytes(
    n_bytes: int = typer.Option(..., "--bytes", "-n", min=0, help="Number of bytes to write."),
    out: str = typer.Option("-", "--out", "-o", help="Output file, or - for standard output."),
    timeout: float = typer.Option(120.0, "--timeout", min=0.0, help="Seconds to wait for the first 256 credited bits."),
    full_entropy: bool = typer.Option(
        False,
        "--full-entropy",
        help="Seed only from 320 credited bits (256 + 64, SP 800-90B §3.1.5) from at least k "
        "independent healthy sources ([mint] quorum), so the seed has full entropy.",
    ),
    source: Optional[list[str]] = SourceOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Write N conditioned random bytes (seeded from >= 256 credited bits: a 255-bit min-entropy seed)."""
    import asyncio

    from rich.console import Console

    from chaosmagnet.cli.common import atomic_output, check_writable

    engine = _engine_for(config, source, None, None)
    console = Console(stderr=True)
    if out == "-":
        if sys.stdout is None:
            raise UsageError("standard output is closed: use --out FILE")
        if sys.stdout.isatty():
            raise UsageError("refusing to write binary data to a terminal: use --out FILE or a pipe")
        try:
            asyncio.run(_random(engine, n_bytes, sys.stdout.buffer, timeout, console, full_entropy))
            sys.stdout.buffer.flush()
        except OSError as exc:  # reader gone, disk full, I/O error on the file stdout goes to
            from chaosmagnet.cli import _exit_for_stdout

            _exit_for_stdout(exc)
        return
    path = Path(out)
    check_writable(path)
    with atomic_output(path) as handle:
        asyncio.run(_random(engine, n_bytes, handle, timeout, console, full_entropy))
    console.print(f"wrote {n_bytes:,} conditioned bytes to {path}")


@app.command()
def bench(
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON object."),
    size_mib: int = typer.Option(64, "--size-mib", min=1, max=1024, help="Data size for the extractor benchmark."),
    nist: Optional[Path] = typer.Option(
        None,
        "--nist",
        help="Folder holding NIST's ea_non_iid and ea_iid, for the side-by-side ratios "
        "(default: $CHAOS_NIST_TOOLS or PATH).",
    ),
    large: bool = typer.Option(False, "--large", help="Also assess 20M 8-bit samples (time and memory)."),
    no_assessment: bool = typer.Option(
        False, "--no-assessment", help="Leave out the assessment rows of the target table (they take minutes)."
    ),
) -> None:
    """Print throughput figures: Keccak vs hashlib, RCT+APT, pool ingest, and more."""
    from rich.console import Console

    from chaosmagnet.bench import run_benchmarks
    from chaosmagnet.bench_figures import figures_json, format_figures, measure_figures

    if nist is not None and not nist.is_dir():
        raise UsageError(f"{nist}: not a folder (--nist names the folder holding ea_non_iid and ea_iid)")
    console = Console(stderr=True)

    def say(msg: str) -> None:
        console.print(f"[dim]{msg}[/]", highlight=False)

    results = run_benchmarks(size_mib=size_mib, progress=say)
    rows = measure_figures(
        nist,
        large=large,
        assessment=not no_assessment,
        ingest=results.get("pool ingest"),
        mint=results.get("mint (one bundle)"),
        anomaly=results.get("anomaly scoring (engine tick hook)"),
        say=say,
    )
    if as_json:
        print(json.dumps({**results, "targets": figures_json(rows)}, indent=2, sort_keys=True))
        return
    from chaosmagnet.bench import format_results

    print(format_results(results))
    print()
    print("targets (issue 17), measured now on this machine:")
    print(format_figures(rows))
