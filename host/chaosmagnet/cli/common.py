"""Helpers shared by the command modules: writable checks and atomic output (and the source selection)."""

from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from chaosmagnet.errors import UsageError
from chaosmagnet.securefile import atomic_file

# The source selection lives below the command line (chaosmagnet.sources.selection),
# where minting uses it too; re-exported for the command modules.
from chaosmagnet.sources.selection import build_sources, load, selected_source_names, source_options

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

__all__ = [
    "atomic_output",
    "build_sources",
    "check_writable",
    "load",
    "output_console",
    "selected_source_names",
    "source_options",
]


def check_writable(path: Path) -> None:
    """UsageError unless a file can be created at path (checked before any work)."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"{path}: is a directory")
    if not parent.is_dir():
        raise UsageError(f"{path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{path}: folder {parent} is not writable")


def atomic_output(path: Path, mode: int = 0o644) -> AbstractContextManager[BinaryIO]:
    """Write to a temporary file beside path and rename it into place on success.

    On any error the temporary file is removed and path is left untouched; a
    failed write (disk full, I/O error) becomes a UsageError naming the file.
    """
    check_writable(path)
    return atomic_file(path, mode=mode)


def output_console() -> Console:
    """A rich Console for standard output: the terminal's width on a terminal; when piped,
    wide enough that no table cell is cut (a pipe has no width to fit)."""
    from rich.console import Console

    if sys.stdout is not None and sys.stdout.isatty():
        return Console()
    return Console(width=1000, no_color=True)


def waiting_printer(console: Console) -> Callable[[str], None]:
    """Prints why a command still waits for entropy: one plain line (no markup, so a
    "[mint]" in the reason stays; no hard wrap, so a pipe gets one line per reason)."""

    def say(reason: str) -> None:
        console.print(f"waiting: {reason}", highlight=False, markup=False, soft_wrap=True)

    return say


def credit_rate_column() -> object:
    """A rich progress column with the rate credit arrives at (bits/s), '-' before it is known."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class CreditRateColumn(ProgressColumn):
        def render(self, task: object) -> Text:
            speed = getattr(task, "speed", None)
            return Text("- bits/s" if speed is None else f"{speed:,.0f} bits/s", style="progress.data.speed")

    return CreditRateColumn()
