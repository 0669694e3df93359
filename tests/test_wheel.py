"""The built wheel works outside the checkout (issue 10).

A wheel is built from this checkout and unpacked into a folder of its own
(its dependencies are this environment's); chaos-host then runs from a working
directory outside the checkout, with the checkout out of reach, so firmware/
and boards/ can only come from the wheel's package data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the package as `pip install <wheel>` lays it out."""
    base = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(base / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (base / "dist").glob("chaosmagnet-*.whl")
    target = base / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return target


def _env(installed: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CHAOS_SOURCE_ROOT"}
    env["PYTHONPATH"] = str(installed)  # ahead of the editable install of the checkout
    env["CHAOS_HOME"] = str(home)
    return env


def _chaos(installed: Path, home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaosmagnet", *args],
        cwd=home,
        env=_env(installed, home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_wheel_carries_firmware_and_boards(installed: Path, tmp_path: Path) -> None:
    where = _chaos(installed, tmp_path, "--help")
    assert where.returncode == 0, where.stderr
    probe = subprocess.run(
        [sys.executable, "-c", "import chaosmagnet.nodes.boards as b; print(b.project_root())"],
        cwd=tmp_path,
        env=_env(installed, tmp_path),
        capture_output=True,
        text=True,
    )
    root = Path(probe.stdout.strip())
    assert root.is_relative_to(installed), f"firmware taken from {root}, not from the wheel"
    assert (root / "firmware" / "lib" / "chaosnode" / "node.py").is_file()
    assert sorted(p.name for p in (root / "boards").glob("*.toml")) == sorted(
        p.name for p in (ROOT / "boards").glob("*.toml")
    )
    boards = _chaos(installed, tmp_path, "nodes", "boards")
    assert boards.returncode == 0 and "um_feathers3" in boards.stdout, boards.stderr


def test_flash_and_deploy_dry_runs_work_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    image = tmp_path / "micropython.bin"
    image.write_bytes(b"\xe9" + bytes(128 * 1024))
    flash = _chaos(
        installed, tmp_path, "nodes", "flash", "--port", "/dev/ttyACM0", "--firmware", str(image),
        "--board", "um_feathers3", "--dry-run",
    )
    assert flash.returncode == 0, flash.stderr
    assert "write-flash" in flash.stdout
    deploy = _chaos(
        installed, tmp_path, "nodes", "deploy", "--port", "/dev/ttyACM0", "--board", "um_feathers3",
        "--label", "w1", "--dry-run",
    )
    assert deploy.returncode == 0, deploy.stderr
    assert "mpremote" in deploy.stdout


def test_a_simulated_node_streams_and_is_credited_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    env = _env(installed, tmp_path)
    sim = subprocess.Popen(
        [sys.executable, "-m", "chaosmagnet", "nodes", "simulate", "--label", "x", "--seconds", "60", "--link", str(tmp_path / "x.tty")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert sim.stdout is not None
        deadline = time.monotonic() + 60
        while "harvest it" not in (line := sim.stdout.readline()):
            assert line and time.monotonic() < deadline, "the simulator did not start"
        run = _chaos(installed, tmp_path, "run", "--node", "x", "--seconds", "10", "--json", timeout=90)
        assert run.returncode == 0, run.stderr[-2000:]
        last = json.loads(run.stdout.strip().splitlines()[-1])
        credited = {s["name"]: s["credited_bits"] for s in last["sources"]}
        assert credited["node:x:adc"] > 0, credited
    finally:
        sim.terminate()
        sim.wait(timeout=30)
