"""scripts/run and scripts/test: a start with nothing changed installs nothing (issue 10),
and everything they say about installing goes to stderr."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _installed_for(extras: str) -> subprocess.CompletedProcess[str]:
    """Whether install_package would skip (exit 0) - asked without installing anything."""
    return subprocess.run(
        ["bash", "-c", f'source scripts/_env.sh && installed_for "{extras}"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_an_unchanged_checkout_is_not_reinstalled() -> None:
    if not (ROOT / ".venv" / ".chaosmagnet-installed-test").is_file():
        pytest.skip("the suite was not started through scripts/test (no install fingerprint)")
    for extras in ("test", ""):  # scripts/test, then scripts/run: the test install covers both
        result = _installed_for(extras)
        assert result.returncode == 0, "scripts/run would reinstall an unchanged checkout"
        assert result.stdout == "" and result.stderr == "", result.stderr


def test_the_fingerprint_follows_the_c_sources_and_new_modules(tmp_path: Path) -> None:
    def fingerprint() -> str:
        out = subprocess.run(
            ["bash", "-c", "source scripts/_env.sh && source_fingerprint"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    before = fingerprint()
    assert before == fingerprint()
    extra = ROOT / "host" / "chaosmagnet" / "_fingerprint_probe.py"
    try:
        extra.write_text('"""A module the fingerprint must notice."""\n')
        assert fingerprint() != before
    finally:
        extra.unlink()
    assert fingerprint() == before
