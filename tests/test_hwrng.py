"""The hwrng source (issue 14): /dev/hwrng where it exists, a FIFO stand-in everywhere."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from chaosmagnet.config import Config, SourceConfig
from chaosmagnet.engine import Engine
from chaosmagnet.sources.hwrng import DEFAULT_DEVICE, HwrngSource, current_device_name
from chaosmagnet.sources.registry import SourceOptions, build_source


class FifoWriter(threading.Thread):
    """Writes random bytes into a FIFO until stopped (a stand-in for a hardware RNG)."""

    def __init__(self, path: Path, pattern: bytes | None = None) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.pattern = pattern
        self.stopping = threading.Event()

    def run(self) -> None:
        # Like a real producer, reopen when the reader goes away: availability()
        # opens and closes the FIFO once before start() opens it for good.
        while not self.stopping.is_set():
            with open(self.path, "wb", buffering=0) as fifo:
                while not self.stopping.is_set():
                    try:
                        fifo.write(self.pattern * 256 if self.pattern else os.urandom(4096))
                    except BrokenPipeError:
                        break


@pytest.fixture
def fifo(tmp_path: Path):
    path = tmp_path / "hwrng.fifo"
    os.mkfifo(path)
    writer = FifoWriter(path)
    writer.start()
    yield path
    writer.stopping.set()
    os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))  # unblock a writer waiting for a reader
    writer.join(timeout=5)


async def _run_engine(source: HwrngSource, config: Config, seconds: float) -> dict:
    engine = Engine([source], config)
    await engine.start()
    try:
        await asyncio.sleep(seconds)
        return engine.snapshot()
    finally:
        await engine.stop()


def test_the_fifo_stand_in_is_read_health_tested_and_credited_zero(fifo: Path) -> None:
    source = build_source("hwrng", SourceOptions(extra={"hwrng": {"device": str(fifo)}}))
    assert isinstance(source, HwrngSource) and source.info.conditioned
    snapshot = asyncio.run(_run_engine(source, Config(), 1.5))
    (row,) = snapshot["sources"]
    assert row["name"] == "hwrng" and row["state"] == "ok"
    assert row["samples"] > 1000, row
    assert row["credited_bits"] == 0  # conditioned: mixed with zero credit
    assert snapshot["pool"]["raw_bytes"] >= row["samples"]


def test_configured_credit_is_given_and_a_stuck_device_is_quarantined(tmp_path: Path, fifo: Path) -> None:
    config = Config(sources={"hwrng": SourceConfig(credit_h=4.0)})
    source = HwrngSource(device=fifo)
    (row,) = asyncio.run(_run_engine(source, config, 1.5))["sources"]
    assert row["credited_bits"] > 0

    stuck = tmp_path / "stuck.fifo"
    os.mkfifo(stuck)
    writer = FifoWriter(stuck, pattern=b"\x42" * 16)
    writer.start()
    try:
        (row,) = asyncio.run(_run_engine(HwrngSource(device=stuck), config, 1.5))["sources"]
    finally:
        writer.stopping.set()
        os.close(os.open(stuck, os.O_RDONLY | os.O_NONBLOCK))
        writer.join(timeout=5)
    assert row["state"] in ("quarantined", "failed") and row["rct_failures"] > 0
    assert row["credited_bits"] == 0


def test_absent_device_is_unavailable_with_the_reason(tmp_path: Path) -> None:
    source = HwrngSource(device=tmp_path / "no-such-hwrng")
    availability = source.availability()
    assert not availability.available and "does not exist" in availability.reason


def test_the_kernel_device_name_comes_from_sysfs(tmp_path: Path) -> None:
    sysfs = tmp_path / "rng_current"
    sysfs.write_text("tpm-rng-0\n")
    assert current_device_name(sysfs) == "tpm-rng-0"
    sysfs.write_text("none\n")
    assert current_device_name(sysfs) == ""
    assert current_device_name(tmp_path / "missing") == ""


def test_real_dev_hwrng() -> None:
    source = HwrngSource()
    availability = source.availability()
    if not DEFAULT_DEVICE.exists():
        pytest.skip("this machine has no /dev/hwrng")
    if not availability.available:
        pytest.skip(f"/dev/hwrng is here but not readable: {availability.reason}")
    assert source.kernel_name == current_device_name()
    assert source.kernel_name in source.info.description
    asyncio.run(source.start())
    try:
        data = source.read(4096)
    finally:
        asyncio.run(source.stop())
    assert data.size > 0 and np.unique(data).size > 100
