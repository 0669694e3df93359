"""One pool per home (issue 14): two `run`s in different CHAOS_HOMEs coexist, and
`mint` in each home draws from its own home's pool, never the other's."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
from chaosmagnet.control import default_socket_path, probe

PASS = "two homes test passphrase"


def _env(home: Path, runtime: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CHAOS_CONTROL_SOCKET"}
    env.update(CHAOS_HOME=str(home), XDG_RUNTIME_DIR=str(runtime), CHAOS_PASSPHRASE=PASS)
    return env


def _wait_for_run(home: Path, runtime: Path, proc: subprocess.Popen[str]) -> None:
    old = {k: os.environ.get(k) for k in ("CHAOS_HOME", "XDG_RUNTIME_DIR", "CHAOS_CONTROL_SOCKET")}
    os.environ.pop("CHAOS_CONTROL_SOCKET", None)
    os.environ.update(CHAOS_HOME=str(home), XDG_RUNTIME_DIR=str(runtime))
    try:
        path = default_socket_path()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    deadline = time.monotonic() + 60
    while asyncio.run(probe(path, timeout=1.0)) is None:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "run did not open its control socket"
        time.sleep(0.2)


@pytest.mark.slow
def test_two_homes_run_at_once_and_mint_from_their_own_pool(tmp_path: Path) -> None:
    runtime = Path(tempfile.mkdtemp(prefix="cm-rt-", dir="/tmp"))  # a socket path is at most 107 bytes
    homes = {"a": tmp_path / "a", "b": tmp_path / "b"}
    for home in homes.values():
        home.mkdir()
    # home a credits cpu-jitter only; home b credits the OS RNG only (configured); one source
    # each, so the key quorum is lowered to 1 (this test is about whose pool, not how many sources)
    (homes["a"] / "chaos.toml").write_text("[mint]\nquorum = 1\n")
    (homes["b"] / "chaos.toml").write_text("[mint]\nquorum = 1\n[sources.os-rng]\ncredit_h = 8\n")
    only = {"a": "cpu-jitter", "b": "os-rng"}
    runs = {}
    try:
        for name, home in homes.items():
            runs[name] = subprocess.Popen(
                [sys.executable, "-m", "chaosmagnet", "run", "--source", only[name], "--json", "--seconds", "120"],
                cwd=home,
                env=_env(home, runtime),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        for name, home in homes.items():
            _wait_for_run(home, runtime, runs[name])
        for name, home in homes.items():
            minted = subprocess.run(
                [sys.executable, "-m", "chaosmagnet", "mint", "--timeout", "60"],
                cwd=home,
                env=_env(home, runtime),
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert minted.returncode == 0, minted.stderr[-2000:]
            (bundle,) = (home / "keys").glob("bundle-*.json")
            draw = json.loads(bundle.read_text())["provenance"]["keys"]["kem"]["draw"]
            assert draw["via"] == "control-socket", draw
            paid = {source for source, row in draw["sources"].items() if row["credited_bits"] > 0}
            assert paid == {only[name]}, draw["sources"]
    finally:
        for proc in runs.values():
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(runtime, ignore_errors=True)
