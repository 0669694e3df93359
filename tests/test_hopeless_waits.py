"""Waits that cannot succeed are refused at once (issue 15): when no enabled source can
earn credit, `random` and `mint` say so, name the sources that could, and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HINT = "no enabled source can earn credit: os-rng is conditioned (credited 0 unless chaos.toml grants credit_h)"


def _chaos(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CHAOS_HOME=str(home), CHAOS_PASSPHRASE="hopeless waits passphrase")
    return subprocess.run([sys.executable, "-m", "chaosmagnet", *args], cwd=home, env=env,
                          capture_output=True, text=True, timeout=100)


def test_random_with_only_os_rng_refuses_at_once(tmp_path: Path) -> None:
    result = _chaos(tmp_path, "random", "--bytes", "16", "--source", "os-rng", "--out", "r.bin", "--timeout", "90")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"chaos-host: error: {HINT}")
    assert "Sources that could: cpu-jitter" in line
    assert not (tmp_path / "r.bin").exists()


def test_mint_with_only_zero_credit_sources_refuses_at_once(tmp_path: Path) -> None:
    (tmp_path / "chaos.toml").write_text('[sources]\nenabled = ["os-rng"]\n')
    result = _chaos(tmp_path, "mint", "--timeout", "90")
    assert result.returncode == 2, result.stderr
    assert HINT in result.stderr and "cpu-jitter" in result.stderr
    assert not list((tmp_path / "keys").glob("bundle-*.json"))


def test_granted_credit_makes_the_wait_hopeful(tmp_path: Path) -> None:
    (tmp_path / "chaos.toml").write_text("[sources.os-rng]\ncredit_h = 8\n")
    result = _chaos(tmp_path, "random", "--bytes", "16", "--source", "os-rng", "--out", "r.bin")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r.bin").stat().st_size == 16
