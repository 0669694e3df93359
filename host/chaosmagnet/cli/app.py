"""The typer application object that every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="chaos-host",
    help="ChaosMagnet aggregator: harvest, health-test, assess and pool entropy; mint PQC keys.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
