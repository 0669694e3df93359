"""`chaos-host`: a thin command line over the chaosmagnet API.

Each command lives in its own module and registers itself on ``app``.  This is
the one place where errors become exit codes: a ChaosError or a command-line
usage error becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys

import typer

# Command modules: importing one registers its commands on `app`.
from chaosmagnet.cli import (
    assess,  # noqa: E402,F401  (assess)
    core_commands,  # noqa: E402,F401  (run, sources, sample, random, bench)
    dashboard_hook,  # noqa: E402,F401  (run --dashboard)
    keys_commands,  # noqa: E402,F401  (backends, mint, verify, export, identity, audit)
    mesh_commands,  # noqa: E402,F401  (mesh ..., collector, run --mesh)
    nodes_commands,  # noqa: E402,F401  (nodes ..., run --node)
)
from chaosmagnet.cli.app import app
from chaosmagnet.errors import ChaosError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result = app(args=args or ["--help"], prog_name="chaos-host", standalone_mode=False)
    except typer.Abort:
        print("chaos-host: aborted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as exc:  # typer's (vendored click) usage and parameter errors
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and args[-1:] != ["--help"] and "\n" in message.strip():
            print(message, file=sys.stderr)  # a group called without a command: its help
        else:
            command = ctx.command_path if ctx is not None else "chaos-host"
            print(f"{command}: error: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(2)
    except ChaosError as exc:
        print(f"chaos-host: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("chaos-host: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
