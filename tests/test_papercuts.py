"""The first-ten-minutes papercuts of issue 15, each as a user meets it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def chaos(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CHAOS_HOME=str(home), CHAOS_PASSPHRASE="papercut test passphrase")
    return subprocess.run([sys.executable, "-m", "chaosmagnet", *args], cwd=home, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_piped_tables_are_not_truncated(tmp_path: Path) -> None:
    result = chaos(tmp_path, "backends")  # stdout is a pipe here
    assert result.returncode == 0
    assert "SPHINCS+-SHAKE-256s-simple" in result.stdout and "…" not in result.stdout
    sources = chaos(tmp_path, "sources")
    assert "…" not in sources.stdout


def test_sample_takes_a_rate(tmp_path: Path) -> None:
    result = chaos(tmp_path, "sample", "cpu-jitter", "--count", "200000", "--rate", "400000", "--out", "j.bin")
    assert result.returncode == 0, result.stderr
    assert np.fromfile(tmp_path / "j.bin", dtype=np.uint8).size == 200_000
    bad = chaos(tmp_path, "sample", "cpu-jitter", "--count", "10", "--rate", "0", "--out", "x.bin")
    assert bad.returncode == 2 and "--rate" in bad.stderr


def test_random_to_a_file_says_what_it_wrote(tmp_path: Path) -> None:
    result = chaos(tmp_path, "random", "--bytes", "64", "-o", "r.bin")
    assert result.returncode == 0, result.stderr
    assert "wrote 64 conditioned bytes to r.bin" in result.stderr


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[sources]\nenabeld = ["os-rng"]\n', "[sources]: unknown key 'enabeld'; did you mean 'enabled'?"),
        ("[sources.cpu-jiter]\nrate = 5\n", "[sources.cpu-jiter]: no such source; did you mean [sources.cpu-jitter]?"),
    ],
)
def test_a_misspelt_config_key_is_named_as_such(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "chaos.toml").write_text(toml)
    result = chaos(tmp_path, "run", "--seconds", "1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"chaos-host: error: chaos.toml: {message}"]


def test_deploy_to_a_missing_port_says_so(tmp_path: Path) -> None:
    result = chaos(tmp_path, "nodes", "deploy", "--port", "/dev/ttyNOPE0", "--board", "um_feathers3", "--label", "x")
    assert result.returncode == 2
    assert "/dev/ttyNOPE0: no such port" in result.stderr and "in use" not in result.stderr


def test_a_bad_kem_lists_only_kems(tmp_path: Path) -> None:
    result = chaos(tmp_path, "mint", "--kem", "ML-KEM-999")
    assert result.returncode == 2
    assert "unknown KEM 'ML-KEM-999' (known: ML-KEM-512, ML-KEM-768, ML-KEM-1024)" in result.stderr
    assert "ML-DSA" not in result.stderr
