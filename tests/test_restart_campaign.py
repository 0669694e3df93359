"""`chaos-host restart-campaign`: a local source restarted in fresh processes, interrupted, resumed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from chaosmagnet.campaign.runner import (
    CampaignPlan,
    Restarter,
    RestartRecord,
    campaign_files,
    completed_restarts,
    run_campaign,
)
from chaosmagnet.errors import UsageError

CHAOS = [sys.executable, "-m", "chaosmagnet"]


def _env(cwd: Path) -> dict[str, str]:
    return dict(os.environ, CHAOS_HOME=str(cwd), COLUMNS="120")


def _records(log: Path) -> list[dict]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert "campaign" in lines[0]
    return lines[1:]


def test_local_campaign_of_100_restarts_survives_an_interruption(tmp_path: Path) -> None:
    out = tmp_path / "matrix.bin"
    files = campaign_files(out)
    args = [*CHAOS, "restart-campaign", "os-rng", "--restarts", "100", "--samples", "64", "--out", str(out)]
    proc = subprocess.Popen(
        args,
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Ctrl-C must reach it even when the test run itself ignores SIGINT (a background job)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if files.log.exists() and len(_records(files.log)) >= 15:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)  # Ctrl-C, in the middle of a restart or between two
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert b"interrupted after" in err and b"again to resume" in err and b"Traceback" not in err
    assert not out.exists() and files.partial.exists()  # the matrix only ever exists complete
    stopped_at = len(_records(files.log))
    assert 15 <= stopped_at < 100
    assert files.partial.stat().st_size in (64 * stopped_at, 64 * (stopped_at + 1))

    resumed = subprocess.run(args, cwd=tmp_path, env=_env(tmp_path), capture_output=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert b"resuming the campaign" in resumed.stderr
    assert f"resumed at restart {stopped_at}".encode() in resumed.stdout
    assert out.stat().st_size == 100 * 64 and not files.partial.exists()
    records = _records(files.log)
    assert [r["restart"] for r in records] == list(range(100))  # each restart once, in order
    times = [r["time"] for r in records]
    assert times == sorted(times)
    assert all(r["boot_counter"] is None and r["seconds"] >= 0 for r in records)
    pids = {r["details"]["pid"] for r in records}
    assert len(pids) == 100  # a fresh process for every restart
    rows = np.fromfile(out, dtype=np.uint8).reshape(100, 64)
    assert len({row.tobytes() for row in rows}) == 100  # os-rng: no two restarts alike

    again = subprocess.run(args, cwd=tmp_path, env=_env(tmp_path), capture_output=True, timeout=60)
    assert again.returncode == 2 and b"already exists" in again.stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        (["nope"], b"unknown source"),
        (["node:n1:adc"], b"no node labelled"),
        (["os-rng", "--restarts", "0"], b"--restarts"),
        (["os-rng", "--bits", "9"], b"--bits"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, extra: list[str], message: bytes) -> None:
    result = subprocess.run(
        [*CHAOS, "restart-campaign", *extra, "--out", str(tmp_path / "m.bin")],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2 and message in result.stderr and result.stderr.count(b"\n") == 1, result.stderr
    assert not (tmp_path / "m.bin").exists() and not (tmp_path / "m.bin.restarts.jsonl").exists()


class CountingRestarter(Restarter):
    """Row i is filled with the value i (checks which rows end up where)."""

    kind = "test"

    def __init__(self) -> None:
        self.calls: list[int] = []

    async def restart_and_collect(self, index: int, samples: int) -> RestartRecord:
        self.calls.append(index)
        return RestartRecord(np.full(samples, index % 256, dtype=np.uint8), boot_counter=index + 7)


PLAN = CampaignPlan(source="test", kind="test", restarts=6, samples=5, bits=8)


def test_runner_repairs_a_torn_end_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "m.bin"
    files = campaign_files(out)
    first = CountingRestarter()
    result = asyncio.run(run_campaign(PLAN, first, out, stop_after=3))
    assert not result.finished and result.completed == 3 and first.calls == [0, 1, 2]
    # A crash after restart 3's row was written but before its record, and a torn record line.
    with open(files.partial, "ab") as fh:
        fh.write(bytes([3] * 5))
    with open(files.log, "a") as fh:
        fh.write('{"restart": 3, "ti')
    assert completed_restarts(files, PLAN) == 3
    assert files.partial.stat().st_size == 15
    second = CountingRestarter()
    result = asyncio.run(run_campaign(PLAN, second, out))
    assert result.finished and result.resumed_at == 3 and second.calls == [3, 4, 5]
    rows = np.fromfile(out, dtype=np.uint8).reshape(6, 5)
    assert rows[:, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert [r["boot_counter"] for r in _records(files.log)] == [7, 8, 9, 10, 11, 12]


def test_runner_drops_a_record_whose_row_is_missing(tmp_path: Path) -> None:
    out = tmp_path / "m.bin"
    files = campaign_files(out)
    asyncio.run(run_campaign(PLAN, CountingRestarter(), out, stop_after=4))
    with open(files.partial, "r+b") as fh:
        fh.truncate(12)  # rows 0, 1 and part of 2
    assert completed_restarts(files, PLAN) == 2
    assert len(_records(files.log)) == 2 and files.partial.stat().st_size == 10


def test_runner_refuses_to_resume_another_campaign(tmp_path: Path) -> None:
    out = tmp_path / "m.bin"
    asyncio.run(run_campaign(PLAN, CountingRestarter(), out, stop_after=2))
    other = CampaignPlan(source="test", kind="test", restarts=6, samples=10, bits=8)
    with pytest.raises(UsageError, match="another campaign"):
        asyncio.run(run_campaign(other, CountingRestarter(), out))


def test_runner_masks_to_the_bit_width(tmp_path: Path) -> None:
    out = tmp_path / "m.bin"
    plan = CampaignPlan(source="test", kind="test", restarts=300, samples=2, bits=3)
    asyncio.run(run_campaign(plan, CountingRestarter(), out))
    assert int(np.fromfile(out, dtype=np.uint8).max()) == 7


def test_a_second_campaign_on_the_same_matrix_is_refused(tmp_path: Path) -> None:
    import fcntl

    out = tmp_path / "m.bin"
    files = campaign_files(out)
    with open(files.lock, "w") as held:  # another campaign is writing out
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        restarter = CountingRestarter()
        with pytest.raises(UsageError, match="another restart-campaign is writing"):
            asyncio.run(run_campaign(PLAN, restarter, out))
        assert restarter.calls == [] and not files.log.exists() and not files.partial.exists()
    result = asyncio.run(run_campaign(PLAN, CountingRestarter(), out))
    assert result.finished and not files.lock.exists()  # the lock goes with the campaign
