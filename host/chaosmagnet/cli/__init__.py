"""`chaos-host`: a thin command line over the chaosmagnet API.

Each command lives in its own module and registers itself on ``app``.  This is
the one place where errors become exit codes: a ChaosError or a command-line
usage error becomes one line on stderr and exit status 2.

The command modules load on first use of ``app`` (or when ``main`` runs a
command), not on import: ``chaos-host --help`` prints the command list from
``COMMANDS`` without importing them (tests/test_startup.py holds that list
equal to what the loaded commands print, and holds the modules --help may
import).
"""

from __future__ import annotations

import errno
import importlib
import io
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

# The submodule that holds the Typer object.  Importing it binds the package
# attribute "app" to the module; that binding is dropped here so that
# `from chaosmagnet.cli import app` reaches __getattr__ below and gets the
# Typer object with every command registered.
import chaosmagnet.cli.app as _app_module
from chaosmagnet.errors import ChaosError

del globals()["app"]

if TYPE_CHECKING:
    import typer

__all__ = ["COMMANDS", "COMMAND_MODULES", "app", "load_commands", "main"]

#: Command modules: importing one registers its commands (and run/bench hooks) on the app.
COMMAND_MODULES: tuple[str, ...] = (
    "chaosmagnet.cli.assess",  # assess
    "chaosmagnet.cli.core_commands",  # run, sources, sample, random, bench
    "chaosmagnet.cli.dashboard_hook",  # run --dashboard
    "chaosmagnet.cli.keys_commands",  # backends, mint, verify, export, identity, audit
    "chaosmagnet.cli.mesh_commands",  # mesh ..., collector, run --mesh
    "chaosmagnet.cli.nodes_commands",  # nodes ..., run --node
    "chaosmagnet.cli.restart_commands",  # assess-restart, assess-conditioning, restart-campaign
    "chaosmagnet.cli.service_commands",  # service ..., run --feed-kernel
)

#: Every top-level command and its help, in the order the modules register them:
#: what `chaos-host --help` lists without importing the command modules.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("assess", "SP 800-90B entropy assessment of a sample file (the ten non-IID estimators of §6.3)."),
    ("run", "Harvest entropy: live view of every source and the pool (Ctrl-C stops with a summary)."),
    ("sources", "List every source this program knows, and whether it can run here."),
    ("sample", "Write raw samples for offline SP 800-90B assessment (the NIST tools' format)."),
    ("random", "Write N conditioned random bytes (seeded from >= 256 credited bits: a 255-bit min-entropy seed)."),
    ("bench", "Print throughput figures: Keccak vs hashlib, RCT+APT, pool ingest, and more."),
    ("backends", "List PQC algorithms, the backend serving each, and whether keygen is seeded from the pool."),
    ("mint", "Mint key bundles from credited pool entropy, signed by the host identity."),
    ("verify", "Verify bundles: format, every signature, the audit-chain entry.  Exit 0 only if all hold."),
    ("export", "Export a bundle's public key, or with --secret its secret key (verified first), for other tools."),
    ("collector", "Collect every host's signed status and events into SQLite and serve the fleet page (docs/mesh.md)."),
    ("assess-restart", "SP 800-90B §3.1.4 restart tests: sanity check, h_r, h_c, min(H_I, h_r, h_c)."),
    ("assess-conditioning", "SP 800-90B §3.1.5 output entropy h_out of a conditioning component."),
    (
        "restart-campaign",
        "Collect a restart matrix unattended: restart SOURCE, keep its first samples, repeat (resumable).",
    ),
    ("identity", "The host identity that signs bundles and the audit trail."),
    ("audit", "The signed audit trail (logs/audit.jsonl)."),
    ("mesh", "Many hosts through an MQTT broker: set up a broker, its certificates and clients (docs/mesh.md)."),
    ("nodes", "ESP32-S3 feather nodes: list, add, remove, status, flash, deploy, simulate."),
    ("service", "Run chaos-host as a systemd service (Type=notify, watchdog, kernel feed)."),
)


#: The module that registers each command; `run` and `bench` take hooks from every module.
_MODULE_OF: dict[str, str] = {
    "assess": "chaosmagnet.cli.assess",
    "sources": "chaosmagnet.cli.core_commands",
    "sample": "chaosmagnet.cli.core_commands",
    "random": "chaosmagnet.cli.core_commands",
    "backends": "chaosmagnet.cli.keys_commands",
    "mint": "chaosmagnet.cli.keys_commands",
    "verify": "chaosmagnet.cli.keys_commands",
    "export": "chaosmagnet.cli.keys_commands",
    "identity": "chaosmagnet.cli.keys_commands",
    "audit": "chaosmagnet.cli.keys_commands",
    "nodes": "chaosmagnet.cli.nodes_commands",
    "mesh": "chaosmagnet.cli.mesh_commands",
    "collector": "chaosmagnet.cli.mesh_commands",
    "service": "chaosmagnet.cli.service_commands",
    "assess-restart": "chaosmagnet.cli.restart_commands",
    "assess-conditioning": "chaosmagnet.cli.restart_commands",
    "restart-campaign": "chaosmagnet.cli.restart_commands",
}


def load_commands(command: str | None = None) -> typer.Typer:
    """Import the command modules (each registers on the app) and return the app.

    With ``command``, only the module that registers it (every module for
    `run`, `bench` and names not known here), so that `chaos-host mint` does not
    import the node or dashboard code.
    """
    module = _MODULE_OF.get(command or "")
    for name in (module,) if module else COMMAND_MODULES:
        importlib.import_module(name)
    return _app_module.app


def __getattr__(name: str) -> Any:
    if name == "app":
        return load_commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def top_level_help() -> str:
    """The text of `chaos-host --help`, from COMMANDS, without loading any command."""
    from chaosmagnet.cli.helptext import render_top_level_help

    return render_top_level_help(
        "chaos-host",
        _app_module.APP_HELP,
        COMMANDS,
        options=(("--version", _app_module.VERSION_HELP),),
        epilog=_app_module.APP_EPILOG,
    )


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


def _exit_for_stdout(exc: OSError) -> NoReturn:
    """A write to standard output failed: one line and exit 2; a reader that went away is not an error."""
    _detach_stdout()
    if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
        sys.exit(0)
    print(f"chaos-host: error: cannot write to standard output: {exc.strerror or exc}", file=sys.stderr)
    sys.exit(2)


def _exit_with(message: str, status: int) -> NoReturn:
    """One line on stderr, standard output let go, exit ``status``."""
    print(message, file=sys.stderr)
    _detach_stdout()
    sys.exit(status)


def _finish(status: int = 0) -> NoReturn:
    """Exit ``status``, unless writing standard output failed (then its own one line)."""
    failure = _stdout_failure()
    if failure is not None:
        _exit_for_stdout(failure)
    sys.exit(status)


def _assess_without_typer(args: list[str]) -> None:
    """Run a plain `assess` command line without loading typer (and the pydantic it
    imports): most of `chaos-host assess`'s start-up.  Returns (for typer to parse)
    when the line is anything but plain; else exits as main would."""
    from chaosmagnet.cli.assess_run import parse_assess_args, run_assess

    options = parse_assess_args(args)
    if options is None:
        return
    try:
        run_assess(options)
    except ChaosError as exc:
        _exit_with(f"chaos-host: error: {exc}", 2)
    except KeyboardInterrupt:
        _exit_with("chaos-host: interrupted", 130)
    except (StandardOutputError, BrokenPipeError) as exc:
        _exit_for_stdout(exc)
    _finish()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    _wrap_stdout()
    if args in ([], ["--help"]):
        sys.stdout.write(top_level_help())
        _finish()
    if args[:1] == ["assess"]:
        _assess_without_typer(args)
    import typer

    command = next((arg for arg in args if not arg.startswith("-")), None)
    app = load_commands(command)
    try:
        from chaosmagnet.cli.app import plain_help

        group = plain_help(typer.main.get_command(app))
        result = group.main(args=args or ["--help"], prog_name="chaos-host", standalone_mode=False)
    except typer.Abort:
        _exit_with("chaos-host: aborted", 130)
    except typer.TyperException as exc:  # typer's (vendored click) usage and parameter errors
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and args[-1:] != ["--help"] and "\n" in message.strip():
            _exit_with(message, 2)  # a group called without a command: its help
        command = ctx.command_path if ctx is not None else "chaos-host"
        _exit_with(f"{command}: error: {' '.join(message.split())}", 2)
    except ChaosError as exc:
        _exit_with(f"chaos-host: error: {exc}", 2)
    except KeyboardInterrupt:
        _exit_with("chaos-host: interrupted", 130)
    except (StandardOutputError, BrokenPipeError) as exc:
        _exit_for_stdout(exc)
    if result == 130 and _stdout_failure() is None:  # typer turns Ctrl-C inside a command into Exit(130)
        print("chaos-host: interrupted", file=sys.stderr)
    _finish(result if isinstance(result, int) else 0)
