"""`chaos-host`: a thin command line over the chaosmagnet API.

Each command lives in its own module and registers itself on ``app``.  This is
the one place where errors become exit codes: a ChaosError or a command-line
usage error becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import errno
import io
import os
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
    service_commands,  # noqa: E402,F401  (service ..., run --feed-kernel)
)
from chaosmagnet.cli.app import app
from chaosmagnet.errors import ChaosError

__all__ = ["app", "main"]


class StandardOutputError(OSError):
    """A write to the process's standard output failed (full disk, closed pipe, I/O error)."""


class _StandardOutput(io.RawIOBase):
    """File descriptor 1, raising StandardOutputError, so that a failed write to
    standard output is told apart from every other OSError by its type."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, data: bytes) -> int:  # type: ignore[override]
        try:
            return os.write(self._fd, data)
        except OSError as exc:
            raise StandardOutputError(exc.errno, exc.strerror) from None


def _wrap_stdout() -> None:
    """Replace the interpreter's stdout by the same descriptor behind _StandardOutput
    (only the real one: a test's captured stdout is left alone)."""
    stream = sys.stdout
    if stream is None or stream is not sys.__stdout__:
        return
    try:
        fd = stream.fileno()
        stream.flush()
    except (OSError, ValueError):
        return
    raw = _StandardOutput(fd)
    wrapped = io.TextIOWrapper(
        io.BufferedWriter(raw),
        encoding=stream.encoding,
        errors=stream.errors,
        line_buffering=stream.line_buffering,
        write_through=False,
    )
    sys.stdout = sys.__stdout__ = wrapped


def _stdout_failure() -> OSError | None:
    """Flush standard output; the error if it cannot take what was written to it."""
    stream = sys.stdout
    if stream is None:
        return None
    try:
        stream.flush()
    except OSError as exc:
        return exc
    except ValueError:  # closed by the command itself
        return None
    return None


def _detach_stdout() -> None:
    """Point file descriptor 1 at /dev/null so the interpreter's own flush at exit
    has nothing left to fail on (Python 3.11.2 otherwise prints 'Exception
    ignored in: <_io.TextIOWrapper name='<stdout>'...>' and exits 120)."""
    if sys.stdout is None:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _exit_for_stdout(exc: OSError) -> None:
    """A write to standard output failed: one line and exit 2; a reader that went away is not an error."""
    _detach_stdout()
    if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
        sys.exit(0)
    print(f"chaos-host: error: cannot write to standard output: {exc.strerror or exc}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    _wrap_stdout()
    try:
        result = app(args=args or ["--help"], prog_name="chaos-host", standalone_mode=False)
    except typer.Abort:
        print("chaos-host: aborted", file=sys.stderr)
        _detach_stdout()
        sys.exit(130)
    except typer.TyperException as exc:  # typer's (vendored click) usage and parameter errors
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and args[-1:] != ["--help"] and "\n" in message.strip():
            print(message, file=sys.stderr)  # a group called without a command: its help
        else:
            command = ctx.command_path if ctx is not None else "chaos-host"
            print(f"{command}: error: {' '.join(message.split())}", file=sys.stderr)
        _detach_stdout()
        sys.exit(2)
    except ChaosError as exc:
        print(f"chaos-host: error: {exc}", file=sys.stderr)
        _detach_stdout()
        sys.exit(2)
    except KeyboardInterrupt:
        print("chaos-host: interrupted", file=sys.stderr)
        _detach_stdout()
        sys.exit(130)
    except StandardOutputError as exc:
        _exit_for_stdout(exc)
    except BrokenPipeError as exc:
        _exit_for_stdout(exc)
    failure = _stdout_failure()
    if failure is not None:
        _exit_for_stdout(failure)
    sys.exit(result if isinstance(result, int) else 0)
