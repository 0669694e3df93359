"""Feeding the kernel (issue 14): the credit rule with a recording kernel, the real
ioctl as root, and the one-line refusal without the capability."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from chaosmagnet.config import Config
from chaosmagnet.engine import Engine
from chaosmagnet.errors import ConfigError
from chaosmagnet.kernelfeed import FeedSettings, KernelFeeder, KernelRandom
from source_helpers import ScriptedSource, uniform


class RecordingKernel:
    """Stands in for /dev/random: records what would be written and credited."""

    def __init__(self, count: int = 256) -> None:
        self.count = count
        self.writes: list[tuple[bytes, int]] = []

    def entropy_count(self) -> int:
        return self.count

    def add_entropy(self, data: bytes, credit_bits: int) -> None:
        assert 0 <= credit_bits <= 8 * len(data)
        self.writes.append((data, credit_bits))

    def close(self) -> None:
        pass


def _engine(*names: str, conditioned: bool = False) -> Engine:
    """An engine whose pool is full, its credit shared evenly by the named sources."""
    engine = Engine([ScriptedSource(name, [], declared_h=4.0, conditioned=conditioned) for name in names], Config())
    for seed in range(4):  # interleaved, so the capped ledger holds every source's share
        for i, name in enumerate(names):
            engine.ingest(name, uniform(4096, seed=seed + 10 * i))
    return engine


def _feeder(engine: Engine, kernel: RecordingKernel, **settings: int) -> KernelFeeder:
    feeder = KernelFeeder(engine, FeedSettings(**settings), kernel_factory=lambda: kernel)  # type: ignore[arg-type]
    feeder._kernel = kernel  # type: ignore[assignment]
    return feeder


def test_the_kernel_gets_no_more_than_healthy_credit_debited() -> None:
    engine = _engine("a", "b")
    assert engine.healthy_credited_bits() == pytest.approx(512)
    kernel = RecordingKernel(count=256)
    feeder = _feeder(engine, kernel, budget_bytes=16, refill_bytes=32, watermark_bits=128)
    before = engine.pool.stats.drawn_bits
    credited = feeder.feed_once()
    assert kernel.writes and len(kernel.writes[0][0]) == 16
    assert credited == kernel.writes[0][1] == 128
    assert engine.pool.stats.drawn_bits - before == pytest.approx(128)
    # below the watermark the refill is added
    kernel.count = 10
    feeder.feed_once()
    assert len(kernel.writes[1][0]) == 16 + 32
    assert feeder.stats.bytes_fed == 64 and feeder.stats.bits_credited == sum(c for _, c in kernel.writes)
    # the pool's credit is spent: nothing more is written until sources refill it
    assert engine.healthy_credited_bits() < 8
    assert feeder.feed_once() == 0 and len(kernel.writes) == 2 and feeder.stats.skipped_no_credit == 1


def test_a_pool_without_credit_feeds_nothing() -> None:
    engine = _engine("os", conditioned=True)  # conditioned: mixed with zero credit
    assert engine.healthy_credited_bits() == 0
    kernel = RecordingKernel()
    feeder = _feeder(engine, kernel)
    assert feeder.feed_once() == 0
    assert kernel.writes == [] and feeder.stats.skipped_no_credit == 1


def test_credit_of_a_quarantined_source_is_never_passed_on() -> None:
    engine = _engine("good", "bad")
    # "bad" goes stuck: the RCT trips and the source is quarantined with its credit still in the ledger
    engine.ingest("bad", np.full(4096, 7, dtype=np.uint8))
    assert engine.source_states()["bad"]["state"] in ("quarantined", "failed")
    ledger = engine.pool.credited_by_source()
    assert ledger["bad"] > 0
    kernel = RecordingKernel()
    feeder = _feeder(engine, kernel, budget_bytes=64)
    feeder.feed_once()
    ((data, credit),) = kernel.writes
    share_good = ledger["good"] / sum(ledger.values())
    assert credit <= int(8 * len(data) * share_good) + 1
    assert credit < 8 * len(data)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"interval": 0}, "interval"),
        ({"budget_bytes": -1}, "budget_bytes"),
        ({"budget_bytes": 1.5}, "budget_bytes"),
        ({"budegt_bytes": 1}, "unknown key"),
        ("fast", "must be a table"),
    ],
)
def test_bad_feed_settings_are_one_clear_error(table: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FeedSettings.from_table(table)


def _has_cap_sys_admin() -> bool:
    try:
        kernel = KernelRandom()
    except OSError:
        return False
    try:
        kernel.add_entropy(b"", 0)
        return True
    except OSError:
        return False
    finally:
        kernel.close()


def test_run_feeds_the_real_kernel_as_root(tmp_path: Path) -> None:
    if not _has_cap_sys_admin():
        pytest.skip("needs CAP_SYS_ADMIN (root) to call RNDADDENTROPY")
    env = dict(os.environ, CHAOS_HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "chaosmagnet", "run", "--feed-kernel", "--source", "cpu-jitter", "--seconds", "4", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    feed = last["outputs"]["kernel_feed"]
    assert feed["writes"] > 0 and feed["bytes_fed"] > 0
    assert 0 < feed["bits_credited"] <= 8 * feed["bytes_fed"]
    assert feed["last_error"] == ""
    assert isinstance(feed["entropy_count"], int) and feed["entropy_count"] >= 0
    credited_by_sources = sum(s["credited_bits"] for s in last["sources"])
    assert feed["bits_credited"] <= credited_by_sources
    assert "kernel feed:" in result.stderr  # the summary


def test_without_the_capability_run_refuses_in_one_line(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root without setpriv cannot drop CAP_SYS_ADMIN here")
        prefix = [setpriv, "--bounding-set", "-sys_admin"]
    else:
        prefix = []
    env = dict(os.environ, CHAOS_HOME=str(tmp_path))
    result = subprocess.run(
        prefix + [sys.executable, "-m", "chaosmagnet", "run", "--feed-kernel", "--seconds", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "chaos-host: error: --feed-kernel needs CAP_SYS_ADMIN to credit the kernel (run as root, or install "
        "the service: chaos-host service install --system)"
    ]
    assert result.stdout == ""
