"""The typer application object that every command module registers on.

``app`` is made on first use (``from chaosmagnet.cli.app import app``), so that
`chaos-host --help`, which does not need it, does not import typer.
"""

from __future__ import annotations

from typing import Any

__all__ = ["APP_EPILOG", "APP_HELP", "EXAMPLES", "app", "plain_help", "version_text"]

#: What `chaos-host --help` says the program is.
APP_HELP = "ChaosMagnet aggregator: harvest, health-test, assess and pool entropy; mint PQC keys."
#: Said at the foot of `chaos-host --help`.
APP_EPILOG = (
    "First steps: `chaos-host sources` (what this machine has), `chaos-host run` (the live view), "
    "`chaos-host random --bytes 32 -o r.bin`, `chaos-host mint`. Every command has --help; "
    "the docs/ folder has the guides."
)
VERSION_HELP = "Print the version, commit and PQC backends, and exit."


def _make_app() -> Any:
    import typer

    made = typer.Typer(
        name="chaos-host",
        help=APP_HELP,
        epilog=APP_EPILOG,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # Plain help text: rich's help renderer alone takes longer to import
        # than the whole `chaos-host --help` may (docs/pipeline.md, start-up).
        rich_markup_mode=None,
    )

    def show_version(value: bool) -> None:
        if value:
            print(version_text())
            raise typer.Exit()

    # A group even when only one command module is loaded (chaosmagnet.cli.load_commands
    # loads just the one a command needs): without a callback, typer would run a
    # lone command directly and take its name for an argument.  It also takes --version.
    @made.callback()
    def _group(
        version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True, help=VERSION_HELP),
    ) -> None:
        pass

    return made


def __getattr__(name: str) -> Any:
    if name == "app":
        made = globals()["app"] = _make_app()
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def version_text() -> str:
    """`chaos-host --version`: the package version, the commit where known, the PQC backends."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version
    from pathlib import Path

    try:
        text = f"chaos-host {version('chaosmagnet')}"
    except PackageNotFoundError:
        text = "chaos-host (not installed)"
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / ".git").exists():
        try:
            commit = subprocess.run(
                ["git", "-C", str(checkout), "describe", "--always", "--dirty"],
                capture_output=True, text=True, timeout=5,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = ""
        if commit:
            text += f" (commit {commit})"
    from chaosmagnet.pqc.registry import backend_status

    backends = ", ".join(f"{name} {'yes' if ok else 'no'}" for name, ok, _ in backend_status())
    return f"{text}\nPQC backends: {backends}"


# -- help that reads like a manual ----------------------------------------------
# typer prints each option's Python type (<bool>, <list[str]>, <float range>
# [x>=0.0]) and wraps required arguments in braces.  plain_help() gives every
# parameter a metavar a person would write in a manual instead: FILE, N,
# SECONDS, NAME..., and ranges as "1 to 8".  It runs once on the built command
# tree, so new commands get it without doing anything.
_METAVARS = {
    "seconds": "SECONDS",
    "timeout": "SECONDS",
    "interval": "SECONDS",
    "count": "N",
    "n_bytes": "N",
    "bits": "B",
    "rate": "PER_SECOND",
    "listen": "HOST:PORT",
    "source": "NAME",
    "source_name": "SOURCE",
    "node": "LABEL",
    "camera": "DEVICE",
    "audio_device": "DEVICE",
    "keys": "DIR",
    "out_dir": "DIR",
    "mesh": "URL",
    "kem": "ALGORITHM",
    "sign_keypair": "ALGORITHM",
    "board": "BOARD",
    "port": "PORT",
    "baud": "BAUD",
}


def _describe_range(low: object, high: object) -> str | None:
    def text(value: object) -> str:
        if isinstance(value, (int, float)) and float(value).is_integer():
            return f"{int(value):,}"
        return f"{value:g}" if isinstance(value, float) else str(value)

    if low is not None and high is not None:
        return f"{text(low)} to {text(high)}"
    if low is not None:
        return f"at least {text(low)}"
    if high is not None:
        return f"at most {text(high)}"
    return None


def _metavar_for(param: object) -> str:
    name = getattr(param, "name", "") or ""
    if name in _METAVARS:
        return _METAVARS[name]
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None:
        return name.upper().replace("_", "-") or "VALUE"
    if getattr(descriptor, "is_choice", False):
        return "|".join(str(getattr(c, "value", c)) for c in descriptor.choices or ())
    if getattr(descriptor, "is_path", False):
        return "DIR" if name.endswith(("dir", "folder", "keys")) else "FILE"
    annotation = getattr(descriptor, "annotation", None)
    element = (getattr(annotation, "__args__", None) or (annotation,))[0]
    if element is int:
        return "N"
    if element is float:
        return "NUMBER"
    return name.upper().replace("_", "-") or "VALUE"


# Examples shown at the foot of the main commands' help (command path -> text).
EXAMPLES = {
    "run": "Examples: chaos-host run | chaos-host run --seconds 60 --json | chaos-host run --dashboard | "
    "chaos-host run --node sim | sudo chaos-host run --feed-kernel",
    "sample": "Examples: chaos-host sample cpu-jitter --count 1000000 --out jitter.bin, then "
    "chaos-host assess jitter.bin",
    "assess": "Examples: chaos-host assess jitter.bin | chaos-host assess jitter.bin --iid --json | "
    "chaos-host sample cpu-jitter -n 1000000 -o - | chaos-host assess -",
    "random": "Examples: chaos-host random --bytes 32 -o key.bin | chaos-host random --bytes 1048576 | xxd | head",
    "mint": "Examples: chaos-host mint | chaos-host mint --kem ML-KEM-1024 --sign-keypair ML-DSA-87 | "
    "chaos-host verify keys/bundle-*.json",
    "nodes simulate": "Examples: chaos-host nodes simulate --label sim, then in another terminal "
    "chaos-host run --node sim",
    "nodes deploy": "Examples: chaos-host nodes deploy --port /dev/ttyACM0 --board um_feathers3 --label desk",
}


def plain_help(command: object) -> object:
    """Give every parameter of the command tree a plain metavar (see above) and the main
    commands their examples; returns the command."""
    seen: set[int] = set()

    def walk(cmd: object, path: str = "") -> None:
        if id(cmd) in seen:
            return
        seen.add(id(cmd))
        if path in EXAMPLES and not getattr(cmd, "epilog", None):
            cmd.epilog = EXAMPLES[path]  # type: ignore[attr-defined]
        for param in getattr(cmd, "params", []):
            is_argument = getattr(param, "param_type_name", "") == "argument"
            if getattr(param, "is_flag", False) or getattr(param, "count", False):
                param.display_type_rich = lambda ctx: ""  # a flag takes no value
            else:
                metavar = param.metavar or _metavar_for(param)
                repeat = "..." if getattr(param, "multiple", False) or getattr(param, "nargs", 1) != 1 else ""
                shown = metavar if metavar.endswith("...") or not repeat else metavar + repeat
                param.display_type_rich = lambda ctx, shown=shown, arg=is_argument: "" if arg else shown
                if is_argument:
                    param.metavar = shown
                    param._rich_display_name = lambda shown=shown: shown
                    param._usage_display_name = (
                        lambda shown=shown, required=param.required: shown if required else f"[{shown}]"
                    )
            low, high = getattr(param, "min", None), getattr(param, "max", None)
            param._get_number_range_help_str = lambda low=low, high=high: _describe_range(low, high)
        original = getattr(cmd, "get_help_option", None)
        if original is not None:

            def help_option(ctx: object, original: object = original) -> object:
                option = original(ctx)  # type: ignore[operator]
                if option is not None:
                    option.display_type_rich = lambda ctx: ""
                return option

            cmd.get_help_option = help_option  # type: ignore[attr-defined]
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(command)
    return command
