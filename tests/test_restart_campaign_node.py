"""`chaos-host restart-campaign node:LABEL:SRC` against a real simulated node.

The simulator runs the real firmware under CPython behind a pty; every restart
is its authenticated ``reboot`` command, the new boot's handshake (boot counter
+ 1) and the first samples of that boot.  End to end: a 100-restart campaign
of node:sim:adc interrupted by Ctrl-C and resumed.  In process: a node that
comes back with an unexpected boot counter, and one whose first frame of a
boot is lost, have that restart redone and say so.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from chaosmagnet.campaign.node import NodeRestarter, parse_node_source
from chaosmagnet.campaign.runner import CampaignPlan, campaign_files, run_campaign
from chaosmagnet.errors import SourceError, UsageError
from chaosmagnet.nodes.boards import load_board
from chaosmagnet.nodes.ports import process_start
from chaosmagnet.nodes.protocol import HEADER, FrameType, SourceId
from chaosmagnet.nodes.registry import NodeRecord, NodeRegistry
from chaosmagnet.nodes.simulator import Simulator, node_config
from chaosmagnet.nodes.sources import NodeConnection
from nodes_helpers import SimProcess, simulator_fixture

pytestmark = pytest.mark.slow

CHAOS = [sys.executable, "-m", "chaosmagnet"]
RESTARTS = 100
SAMPLES = 300  # two ADC frames of 256 samples, the second cut: the row is the boot's first 300


sim = simulator_fixture("sim")


def _records(log: Path) -> list[dict]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert lines[0]["campaign"]["kind"] == "node" and lines[0]["campaign"]["source"] == "node:sim:adc"
    return lines[1:]


def test_node_campaign_of_100_restarts_survives_an_interruption(home: Path, sim: SimProcess) -> None:
    started = time.monotonic()
    out = home / "sim-adc.bin"
    files = campaign_files(out)
    env = dict(os.environ, CHAOS_HOME=str(home), COLUMNS="120")
    args = [*CHAOS, "restart-campaign", "node:sim:adc", "--restarts", str(RESTARTS),
            "--samples", str(SAMPLES), "--out", str(out)]
    proc = subprocess.Popen(
        args, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if files.log.exists() and len(_records(files.log)) >= 20:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # Ctrl-C: between two restarts or in the middle of a reboot
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert b"interrupted after" in err and b"again to resume" in err and b"Traceback" not in err
    assert not out.exists()
    stopped_at = len(_records(files.log))
    assert 20 <= stopped_at < RESTARTS
    assert sim.proc.poll() is None  # the node kept running; the campaign goes on with it

    resumed = subprocess.run(args, cwd=home, env=env, capture_output=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert b"resuming the campaign" in resumed.stderr and b"doing this restart again" not in resumed.stderr
    assert f"resumed at restart {stopped_at}".encode() in resumed.stdout
    assert out.stat().st_size == RESTARTS * SAMPLES and not files.partial.exists()

    records = _records(files.log)
    assert [r["restart"] for r in records] == list(range(RESTARTS))
    boots = [r["boot_counter"] for r in records]
    # every row is the first boot after an authenticated reboot from the one before it
    assert all(r["boot_counter"] == r["details"]["from_boot"] + 1 for r in records)
    assert all("redone" not in r["details"] for r in records)
    assert boots[0] == 2  # the simulator starts at boot 1
    # strictly consecutive within each run; across the interruption the reboot Ctrl-C cut
    # short may have happened (the node is then one boot further, with no row for it)
    for i in range(1, RESTARTS):
        if i == stopped_at:
            assert records[i]["details"]["from_boot"] in (boots[i - 1], boots[i - 1] + 1)
        else:
            assert boots[i] == boots[i - 1] + 1, (i, boots[i - 1], boots[i])
    assert NodeRegistry().get("sim").boot_counter == boots[-1]  # the highest boot the host accepted
    times = [r["time"] for r in records]
    assert times == sorted(times)

    rows = np.fromfile(out, dtype=np.uint8).reshape(RESTARTS, SAMPLES)
    assert len({row.tobytes() for row in rows}) == RESTARTS  # a noisy ADC: no two boots alike
    assert len(np.unique(rows)) > 16  # low 8 bits of a reading with a few LSB of noise
    print(f"\n100-restart node campaign with an interruption: {time.monotonic() - started:.1f} s "
          f"(boots {boots[0]}..{boots[-1]})")


class FaultySimulator(Simulator):
    """The real simulator with two faults on chosen reboots: a double boot (a brown-out
    right after the reset: the counter moves by 2) and the first ADC frame of a boot lost."""

    def __init__(self, *args: object, double_at: int, lose_at: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.reboots = 0
        self.double_at = double_at
        self.lose_at = lose_at

    def _reboot(self, gap_seconds: float = 0.3) -> None:
        self.reboots += 1
        if self.reboots == self.double_at:
            self.hal.boots += 1  # one boot the host never sees
        super()._reboot(gap_seconds)
        if self.reboots == self.lose_at:
            wire_write = self.wire.write
            lost = [False]

            def write(frame: memoryview | bytes) -> None:
                fields = HEADER.unpack_from(bytes(frame))
                if not lost[0] and fields[2] == FrameType.DATA and fields[8] == SourceId.ADC:
                    lost[0] = True  # dropped on the cable
                    return
                wire_write(frame)

            self.node.write = write


def test_an_unexpected_boot_counter_or_a_lost_first_frame_redoes_the_restart(tmp_path: Path) -> None:
    board = load_board("um_feathers3")
    node_id, key = os.urandom(8), os.urandom(32)
    link = tmp_path / "port-faulty"
    simulator = FaultySimulator(node_config(node_id, key, board, "faulty"), link, double_at=3, lose_at=5)
    stop = threading.Event()
    thread = threading.Thread(target=simulator.run, kwargs={"until": stop.is_set}, daemon=True)
    thread.start()
    pid = os.getpid()  # the port guard opens a simulated node's pty while its simulator process lives
    record = NodeRecord("faulty", node_id, key, board.name, str(link), True, board.node_sources_config(),
                        simulator_pid=pid, simulator_started=process_start(pid))
    notices: list[str] = []
    restarter = NodeRestarter(NodeConnection(record, boot_store=None), "adc", notice=notices.append)
    plan = CampaignPlan(source="node:faulty:adc", kind="node", restarts=5, samples=SAMPLES, bits=8)
    out = tmp_path / "m.bin"
    try:
        result = asyncio.run(run_campaign(plan, restarter, out))
    finally:
        stop.set()
        thread.join(10)
    assert result.finished
    records = [json.loads(line) for line in campaign_files(out).log.read_text().splitlines()[1:]]
    # reboot 3 came back as boot 5 (expected 4): redone from 5; reboot 5 (boot 7) lost its first frame
    assert [r["boot_counter"] for r in records] == [2, 3, 6, 8, 9]
    assert all(r["boot_counter"] == r["details"]["from_boot"] + 1 for r in records)
    assert "boot counter 5, expected 4" in records[2]["details"]["redone"][0]
    assert "sample 512, expected 256" in records[3]["details"]["redone"][0]
    assert [len(r["details"].get("redone", [])) for r in records] == [0, 0, 1, 1, 0]
    assert len(notices) == 2 and all("doing this restart again" in n for n in notices)
    assert restarter.redone == 2
    assert np.fromfile(out, dtype=np.uint8).size == 5 * SAMPLES


def test_a_node_that_never_links_stops_the_campaign_with_a_reason(tmp_path: Path) -> None:
    board = load_board("um_feathers3")
    record = NodeRecord("ghost", os.urandom(8), os.urandom(32), board.name, str(tmp_path / "nothing"), False,
                        board.node_sources_config())
    restarter = NodeRestarter(NodeConnection(record, boot_store=None), "adc", timeout=1.0)
    plan = CampaignPlan(source="node:ghost:adc", kind="node", restarts=3, samples=10, bits=8)
    with pytest.raises(SourceError, match="no verified session within 1 s"):
        asyncio.run(run_campaign(plan, restarter, tmp_path / "m.bin"))
    assert not (tmp_path / "m.bin").exists()


@pytest.mark.parametrize(
    "spec, message",
    [("node:sim", "node:LABEL:SRC"), ("node::adc", "node:LABEL:SRC"), ("node:sim:temp", "unknown node source")],
)
def test_node_source_spec(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_node_source(spec)
    assert parse_node_source("node:lab1:jitter") == ("lab1", "jitter")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["node:nobody:adc"], b"no node labelled 'nobody'"),
        (["node:nobody:temp"], b"unknown node source"),
        (["node:nobody:adc", "--bits", "9"], b"--bits"),
    ],
)
def test_node_campaign_bad_input_is_one_line_and_exit_2(tmp_path: Path, extra: list[str], message: bytes) -> None:
    result = subprocess.run(
        [*CHAOS, "restart-campaign", *extra, "--out", str(tmp_path / "m.bin")],
        cwd=tmp_path, env=dict(os.environ, CHAOS_HOME=str(tmp_path)), capture_output=True, timeout=60,
    )
    assert result.returncode == 2 and message in result.stderr and result.stderr.count(b"\n") == 1, result.stderr
    assert not (tmp_path / "m.bin").exists() and not (tmp_path / "m.bin.restarts.jsonl").exists()


def test_node_campaign_over_ble_takes_the_same_path(tmp_path: Path) -> None:
    """The same campaign over a BLE link: `nodes simulate --link ble` (the firmware as a
    peripheral on bumble's virtual radio), reached through the adapter it serves."""
    pytest.importorskip("bumble")
    env = dict(os.environ, CHAOS_HOME=str(tmp_path))
    env.pop("CHAOS_NODES", None)
    env.pop("CHAOS_BLE_HCI", None)
    simulator = subprocess.Popen(
        [*CHAOS, "nodes", "simulate", "--link", "ble", "--label", "bsim"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert simulator.stdout is not None
        lines = "".join(simulator.stdout.readline() for _ in range(3))
        spec = re.search(r"tcp-client:[0-9.]+:\d+", lines)
        assert spec, lines
        out = tmp_path / "ble.bin"
        result = subprocess.run(
            [*CHAOS, "restart-campaign", "node:bsim:jitter", "--restarts", "10", "--samples", "600",
             "--out", str(out)],
            cwd=tmp_path, env=dict(env, CHAOS_BLE_HCI=spec.group(0)), capture_output=True, timeout=300,
        )
    finally:
        simulator.send_signal(signal.SIGTERM)
        simulator.communicate(timeout=20)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in campaign_files(out).log.read_text().splitlines()[1:]]
    assert [r["boot_counter"] for r in records] == list(range(2, 12))
    assert all(r["details"]["from_boot"] == r["boot_counter"] - 1 for r in records)
    assert out.stat().st_size == 10 * 600
