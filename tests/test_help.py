"""Help that reads like a manual (issue 15): plain metavars on every command, examples on
the main ones, and `--version`."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer
from chaosmagnet.cli import app
from chaosmagnet.cli.app import EXAMPLES


def _command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]

    def walk(cmd: object, prefix: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


def _help(args: list[str]) -> str:
    result = subprocess.run([sys.executable, "-m", "chaosmagnet", *args, "--help"],
                            capture_output=True, text=True, timeout=60, env={"COLUMNS": "100", "PATH": ""})
    assert result.returncode == 0, result.stderr
    return result.stdout


TYPE_SIGNATURES = re.compile(r"<(bool|str|int|float|path|list\[[^\]]*\]|float range|int range)>|\[x[<>]=|\{[A-Z]")


@pytest.mark.parametrize("args", _command_paths(), ids=lambda a: " ".join(a) or "chaos-host")
def test_no_help_reads_like_a_type_signature(args: list[str]) -> None:
    text = _help(args)
    assert not TYPE_SIGNATURES.search(text), TYPE_SIGNATURES.search(text).group(0)  # type: ignore[union-attr]


def test_main_commands_show_examples() -> None:
    for path, example in EXAMPLES.items():
        text = " ".join(_help(path.split()).split())
        assert " ".join(example.split())[:40] in text, path


def test_metavars_and_ranges_are_plain() -> None:
    text = _help(["sample"])
    flat = " ".join(text.split())
    assert "--count N" in flat and "[1 to 1,000,000,000; required]" in flat
    assert "--out FILE" in flat and "--bits B" in flat and "[1 to 8]" in flat
    assert "Usage: chaos-host sample [OPTIONS] SOURCE" in text


def test_version() -> None:
    result = subprocess.run([sys.executable, "-m", "chaosmagnet", "--version"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    first, backends = result.stdout.strip().splitlines()
    assert re.match(r"chaos-host \d+\.\d+\.\d+", first)
    assert backends.startswith("PQC backends: ") and "cryptography yes" in backends
