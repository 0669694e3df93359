"""The typer application object that every command module registers on.

``app`` is made on first use (``from chaosmagnet.cli.app import app``), so that
`chaos-host --help`, which does not need it, does not import typer.
"""

from __future__ import annotations

from typing import Any

__all__ = ["APP_HELP", "app"]

#: What `chaos-host --help` says the program is.
APP_HELP = "ChaosMagnet aggregator: harvest, health-test, assess and pool entropy; mint PQC keys."


def _make_app() -> Any:
    import typer

    made = typer.Typer(
        name="chaos-host",
        help=APP_HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # Plain help text: rich's help renderer alone takes longer to import
        # than the whole `chaos-host --help` may (docs/pipeline.md, start-up).
        rich_markup_mode=None,
    )

    # A group even when only one command module is loaded (chaosmagnet.cli.load_commands
    # loads just the one a command needs): without a callback, typer would run a
    # lone command directly and take its name for an argument.
    @made.callback()
    def _group() -> None:
        pass

    return made


def __getattr__(name: str) -> Any:
    if name == "app":
        made = globals()["app"] = _make_app()
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
