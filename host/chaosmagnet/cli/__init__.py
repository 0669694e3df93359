"""`chaos-host`: a thin command line over the chaosmagnet API.

Each command lives in its own module and registers itself on ``app``.  This is
the one place where errors become exit codes: a ChaosError or a command-line
usage error becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys

import click

from chaosmagnet.cli.app import app
from chaosmagnet.errors import ChaosError

# Command modules: importing one registers its commands on `app`.
from chaosmagnet.cli import core_commands  # noqa: E402,F401  (run, sources, sample, random, bench)

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        result = app(args=argv, prog_name="chaos-host", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        # `chaos-host` alone: show the help, which is what the user wants.
        print(exc.ctx.get_help() if exc.ctx else "", file=sys.stderr)
        sys.exit(2)
    except click.ClickException as exc:
        print(f"chaos-host: error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code if exc.exit_code else 2)
    except click.exceptions.Abort:
        print("chaos-host: aborted", file=sys.stderr)
        sys.exit(130)
    except ChaosError as exc:
        print(f"chaos-host: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("chaos-host: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
