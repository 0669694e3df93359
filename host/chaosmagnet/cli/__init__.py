"""`chaos-host`: a thin command line over the chaosmagnet API.

Each command lives in its own module and registers itself on ``app``.  This is
the one place where a ChaosError becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys

from chaosmagnet.cli.app import app
from chaosmagnet.errors import ChaosError

# Command modules: importing one registers its commands on `app`.
from chaosmagnet.cli import core_commands  # noqa: E402,F401  (run, sources, sample, random, bench)

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    try:
        app(standalone_mode=True)
    except ChaosError as exc:
        print(f"chaos-host: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("chaos-host: interrupted", file=sys.stderr)
        sys.exit(130)
