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
    from chaosmagnet.mesh.setup import MeshSetup, mesh_dir

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
    folder: Optional[Path] = MeshDirOpt,
) -> None:
    """Add a host or collector to an existing mesh (a running broker reloads on SIGHUP)."""
    from chaosmagnet.mesh.setup import add_client

    client = add_client(_setup(folder), label, "collector" if collector else "host")
    print(f"{client.role} {client.label}: {client.folder}")


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


def _client_folder(given: Path | None) -> Path:
    from chaosmagnet.mesh.setup import mesh_dir

    return given if given is not None else mesh_dir() / "client"


async def mesh_run_hook(engine: Any, options: dict[str, Any]) -> Any:
    """Join the mesh when `run` was given --mesh; returns the agent's stop coroutine."""
    url_text = options.get("mesh")
    if not url_text:
        if options.get("mesh_client"):
            raise UsageError("--mesh-client needs --mesh mqtts://HOST:PORT")
        return None
    from chaosmagnet.audit import keys_dir
    from chaosmagnet.mesh.agent import HostAgent
    from chaosmagnet.mesh.credentials import load_client
    from chaosmagnet.mesh.keys import load_mesh_keys
    from chaosmagnet.mesh.url import parse_broker_url

    url = parse_broker_url(url_text)
    credentials = load_client(_client_folder(options.get("mesh_client")))
    if credentials.role != "host":
        raise UsageError(f"{credentials.folder} is a {credentials.role}'s folder, not a host's")
    keys = load_mesh_keys(keys_dir())
    agent = HostAgent(engine, credentials, url, keys)
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
