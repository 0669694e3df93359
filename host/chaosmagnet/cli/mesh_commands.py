"""Mesh commands: `mesh init|add|broker`, `collector`, and `run --mesh` (a run hook).

Thin: the work is in chaosmagnet.mesh; this module parses options, prints
what happened and turns the mesh into a run hook like the dashboard's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from chaosmagnet.cli.app import app
from chaosmagnet.errors import MeshError, UsageError

mesh_app = typer.Typer(
    help="Many hosts through an MQTT broker: set up a broker, its certificates and clients (docs/mesh.md).",
    no_args_is_help=True,
)
app.add_typer(mesh_app, name="mesh")

MeshDirOpt = typer.Option(None, "--dir", help="Mesh folder (default: $CHAOS_HOME/mesh or ./mesh).")


def _setup(folder: Path | None) -> Any:
    from chaosmagnet.mesh.setup import MeshSetup
    from chaosmagnet.mqtt.credentials import mesh_dir

    return MeshSetup(folder or mesh_dir())


@mesh_app.command("init")
def mesh_init(
    name: str = typer.Option("default", "--name", help="The mesh name (part of every topic)."),
    host: Optional[list[str]] = typer.Option(None, "--host", help="A host's label (repeatable)."),
    collector: Optional[list[str]] = typer.Option(
        None, "--collector", help="A collector's label (repeatable; default: one named 'collector')."
    ),
    broker_name: Optional[list[str]] = typer.Option(
        None, "--broker-name", help="A DNS name or address clients use for the broker (repeatable; localhost always)."
    ),
    port: int = typer.Option(8883, "--port", help="The broker's TLS port."),
    bind: str = typer.Option("0.0.0.0", "--bind", help="The address mosquitto listens on."),
    folder: Optional[Path] = MeshDirOpt,
) -> None:
    """Write a CA, broker and client certificates, a TLS-only mosquitto configuration, passwords and an ACL."""
    from chaosmagnet.mesh.setup import init_mesh

    setup = init_mesh(
        _setup(folder).root,
        mesh=name,
        hosts=list(host or []),
        collectors=list(collector) if collector else ["collector"],
        broker_names=list(broker_name or []),
        port=port,
        bind=bind,
    )
    print(f"mesh {name!r} written to {setup.root}")
    print(f"  broker:  {setup.config_file}  (run it: chaos-host mesh broker)")
    for client in setup.clients():
        print(f"  {client.role:<9} {client.label}: {client.folder}")
    print("copy each host's folder to that host as $CHAOS_HOME/mesh/client (it holds its password and key)")


@mesh_app.command("add")
def mesh_add(
    label: str = typer.Argument(..., help="The new client's label."),
    collector: bool = typer.Option(False, "--collector", help="A collector (reads everything) instead of a host."),
    node: bool = typer.Option(False, "--node", help="A Wi-Fi node (publishes only its own frames) instead of a host."),
    host: Optional[str] = typer.Option(
        None, "--host", help="With --node: the host that holds the node's key and reads it."
    ),
    folder: Optional[Path] = MeshDirOpt,
) -> None:
    """Add a host, collector or Wi-Fi node to an existing mesh (a running broker reloads on SIGHUP)."""
    from chaosmagnet.mesh.setup import add_client

    if collector and node:
        raise UsageError("--collector and --node exclude each other")
    if host is not None and not node:
        raise UsageError("--host goes with --node")
    role = "collector" if collector else "node" if node else "host"
    client = add_client(_setup(folder), label, role, owner=host)
    owner = f" (read by host {client.owner})" if client.owner else ""
    print(f"{client.role} {client.label}: {client.folder}{owner}")
    if node:
        print(f"deploy it: chaos-host nodes deploy --link wifi --label {label} --ssid SSID --port PORT --board BOARD")


@mesh_app.command("move-node")
def mesh_move_node(
    label: str = typer.Argument(..., help="The Wi-Fi node's label."),
    host: str = typer.Option(..., "--host", help="The host that reads the node from now on."),
    folder: Optional[Path] = MeshDirOpt,
) -> None:
    """Give a Wi-Fi node to another host: the ACL lets only that host read and command it
    (a running broker reloads on SIGHUP).  Move the node's key too (docs/mesh.md)."""
    from chaosmagnet.mesh.setup import assign_node

    client = assign_node(_setup(folder), label, host)
    print(f"node {client.label} is now read by host {client.owner}; reload the broker (SIGHUP)")


@mesh_app.command("broker")
def mesh_broker(folder: Optional[Path] = MeshDirOpt) -> None:
    """Run mosquitto with this mesh's configuration in the foreground (Ctrl-C stops it)."""
    from chaosmagnet.mesh.setup import mosquitto_command

    setup = _setup(folder)
    settings = setup.settings()
    command = mosquitto_command(setup)
    print(
        f"mesh {settings['mesh']!r}: mosquitto on {settings['bind']}:{settings['port']} (TLS only)",
        file=sys.stderr,
        flush=True,
    )
    try:
        os.execv(command[0], command)
    except OSError as exc:
        raise MeshError(f"cannot run {command[0]}: {exc.strerror}") from None


def _retention_seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    try:
        number = float(value[:-1]) * units[value[-1]] if value and value[-1] in units else float(value)
    except ValueError:
        raise UsageError(f"--retention must be a duration like 3600, 90m, 24h or 7d, not {text!r}") from None
    if not 60 <= number <= 10 * 366 * 86400:
        raise UsageError("--retention must be between one minute and ten years")
    return number


@app.command()
def collector(
    mesh: str = typer.Option(..., "--mesh", help="The broker: mqtts://HOST:PORT."),
    db: Path = typer.Option(..., "--db", help="SQLite database for the fleet's time series (created if missing)."),
    mesh_client: Optional[Path] = typer.Option(
        None, "--mesh-client", help="The collector's credentials folder (default: $CHAOS_HOME/mesh/client)."
    ),
    listen: str = typer.Option("127.0.0.1:8766", "--listen", help="Fleet page address HOST:PORT."),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Let the fleet page listen on a non-loopback address."
    ),
    retention: str = typer.Option("7d", "--retention", help="Keep rows this long (e.g. 3600, 90m, 24h, 7d)."),
    offline_after: float = typer.Option(
        30.0, "--offline-after", min=1.0, help="Show a host as stale after this many seconds without a status."
    ),
    seconds: Optional[float] = typer.Option(None, "--seconds", min=0.0, help="Stop after this many seconds."),
    verify_workers: Optional[int] = typer.Option(
        None,
        "--verify-workers",
        min=0,
        max=64,
        help="Processes that verify signatures (default: one per core; 0: verify in the collector itself).",
    ),
) -> None:
    """Collect every host's signed status and events into SQLite and serve the fleet page (docs/mesh.md)."""
    import asyncio

    from chaosmagnet.cli.common import check_writable
    from chaosmagnet.mesh.collector.store import FleetStore
    from chaosmagnet.mqtt.credentials import load_client
    from chaosmagnet.mqtt.url import parse_broker_url
    from chaosmagnet.websecurity import check_listen, parse_listen

    url = parse_broker_url(mesh)
    keep = _retention_seconds(retention)
    address = parse_listen(listen)
    warning = check_listen(address, allow_remote)
    credentials = load_client(_client_folder(mesh_client))
    if credentials.role != "collector":
        raise UsageError(f"{credentials.folder} is a {credentials.role}'s folder, not a collector's")
    if not db.exists():
        check_writable(db)
    store = FleetStore(db, retention_seconds=keep)
    from chaosmagnet.mesh.collector.service import default_verify_workers

    workers = default_verify_workers() if verify_workers is None else verify_workers
    asyncio.run(_collect(credentials, url, store, address, warning, offline_after, seconds, workers))


async def _collect(
    credentials: Any,
    url: Any,
    store: Any,
    address: Any,
    warning: str | None,
    offline_after: float,
    seconds: float | None,
    verify_workers: int = 0,
) -> None:
    import asyncio
    import contextlib
    import signal

    from chaosmagnet.mesh.collector.service import Collector
    from chaosmagnet.mesh.collector.web import FleetServer

    service = Collector(credentials, url, store, offline_after=offline_after, verify_workers=verify_workers)
    server = FleetServer(service, address)
    try:
        await server.start()
    except BaseException:
        store.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    if warning:
        print(warning, file=sys.stderr)
    print(f"collector: mesh {credentials.mesh} via {url}, database {store.path}", file=sys.stderr, flush=True)
    print(f"fleet page: {server.control_url}", file=sys.stderr, flush=True)
    print("  (the link holds the control token: forgetting a host needs it)", file=sys.stderr, flush=True)
    try:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
    finally:
        await server.stop()
        await service.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _client_folder(given: Path | None) -> Path:
    from chaosmagnet.mqtt.credentials import mesh_dir

    return given if given is not None else mesh_dir() / "client"


async def mesh_run_hook(engine: Any, options: dict[str, Any]) -> Any:
    """Join the mesh when `run` was given --mesh; returns the agent's stop coroutine."""
    url_text = options.get("mesh")
    if not url_text:
        if options.get("mesh_client"):
            raise UsageError("--mesh-client needs --mesh mqtts://HOST:PORT")
        return None
    from chaosmagnet.audit import keys_dir
    from chaosmagnet.mesh.agent import AgentSettings, HostAgent
    from chaosmagnet.mesh.keys import load_mesh_keys
    from chaosmagnet.mqtt.credentials import load_client
    from chaosmagnet.mqtt.url import parse_broker_url

    url = parse_broker_url(url_text)
    credentials = load_client(_client_folder(options.get("mesh_client")))
    if credentials.role != "host":
        raise UsageError(f"{credentials.folder} is a {credentials.role}'s folder, not a host's")
    settings = AgentSettings.from_table(engine.config.extra.get("mesh"))
    keys = load_mesh_keys(keys_dir())
    agent = HostAgent(engine, credentials, url, keys, settings)
    await agent.start()
    print(
        f"mesh: host {credentials.label} in mesh {credentials.mesh} via {url} "
        f"(identity {keys.identity.fingerprint[:16]})",
        file=sys.stderr,
        flush=True,
    )
    return agent.stop


def _register() -> None:
    from chaosmagnet.cli.core_commands import RUN_HOOKS

    if mesh_run_hook not in RUN_HOOKS:
        RUN_HOOKS.append(mesh_run_hook)


_register()
