"""Port identity: a node's path is opened only while the device behind it is still that
node's (USB serial number, or the pty of the simulator that registered it).

USB cases run on an injected port lister (character devices stand in for boards); the
pty cases use real pty pairs and the real SerialLink, and check the master side for
any byte the host might have written.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from chaosmagnet.config import Config
from chaosmagnet.engine import Engine
from chaosmagnet.errors import ConfigError
from chaosmagnet.nodes.boards import load_board
from chaosmagnet.nodes.ports import (
    PortGuard,
    PortInfo,
    holds_pty_master,
    is_pty,
    list_serial_ports,
    process_start,
)
from chaosmagnet.nodes.registry import NodeRecord, NodeRegistry, registry_transaction
from chaosmagnet.nodes.sources import NodeConnection, build_node_sources

KEY = bytes(range(100, 132))


pytestmark = pytest.mark.usefixtures("home")  # every test in a private CHAOS_HOME


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    """A pty this test holds: (master fd, slave path).  Nothing else opened it."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def _record(link: str, **identity: object) -> NodeRecord:
    board = load_board("um_feathers3")
    return NodeRecord(
        "n1", bytes(range(8)), KEY, board.name, link, False, board.node_sources_config(), **identity
    )  # type: ignore[arg-type]


def _boards(tmp_path: Path) -> tuple[str, str]:
    """Two character devices that stand in for two plugged-in boards (not ptys)."""
    a, b = tmp_path / "ttyACM0", tmp_path / "ttyACM1"
    os.symlink("/dev/null", a)
    os.symlink("/dev/zero", b)
    return str(a), str(b)


def _lister(*ports: PortInfo):
    return lambda: list(ports)


def _written(master: int, wait: float = 0.3) -> bytes:
    """Whatever the host wrote to the slave side, read from the master."""
    out = b""
    while select.select([master], [], [], wait)[0]:
        try:
            chunk = os.read(master, 4096)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        out += chunk
        wait = 0.05
    return out


# -- the check, with an injected lister ------------------------------------------------


def test_usb_node_opens_only_the_device_with_its_serial_number(tmp_path: Path) -> None:
    acm0, acm1 = _boards(tmp_path)
    record = _record(acm0, serial_number="SN-DESK", usb_vid=0x303A, usb_pid=0x4001)
    desk = PortInfo(acm0, "SN-DESK", 0x303A, 0x4001, "Espressif", "S3", "/dev/serial/by-id/desk")
    other = PortInfo(acm0, "SN-OTHER", 0x303A, 0x4001)

    ok = PortGuard(record, _lister(desk)).check()
    assert ok.ok and ok.path == acm0 and ok.device is not None

    swapped = PortGuard(record, _lister(other)).check()
    assert not swapped.ok and swapped.reason == "port now belongs to another device"
    assert swapped.wrong_device

    clone = PortGuard(record, _lister(PortInfo(acm0, "SN-DESK", 0x1A86, 0x55D4))).check()
    assert not clone.ok  # same serial number, different VID:PID: not this board

    gone = PortGuard(replace(record, link=str(tmp_path / "ttyACM9")), _lister()).check()
    assert not gone.ok and gone.reason.startswith("not found") and not gone.wrong_device


def test_usb_node_is_re_resolved_by_serial_number_after_a_replug(tmp_path: Path) -> None:
    acm0, acm1 = _boards(tmp_path)
    record = _record(acm0, serial_number="SN-DESK")
    moved = PortGuard(
        record,
        _lister(PortInfo(acm0, "SN-OTHER"), PortInfo(acm1, "SN-DESK", by_id="")),
    ).check()
    assert moved.ok and moved.path == acm1  # the other board at the old path is left alone


def test_a_failing_lister_refuses(tmp_path: Path) -> None:
    acm0, _ = _boards(tmp_path)

    def broken() -> list[PortInfo]:
        raise OSError("sysfs unreadable")

    for record in (_record(acm0, serial_number="SN"), _record(acm0)):
        check = PortGuard(record, broken).check()
        assert not check.ok and check.reason == "cannot list the serial ports"


def test_usb_node_refuses_a_pty(pty_pair: tuple[int, str]) -> None:
    master, slave = pty_pair
    check = PortGuard(_record(slave, serial_number="SN"), _lister(PortInfo(slave, "SN"))).check()
    assert not check.ok and "pty" in check.reason


def test_path_bound_node_pins_the_serial_number_it_first_sees(tmp_path: Path) -> None:
    acm0, _ = _boards(tmp_path)
    ports = [PortInfo(acm0, "SN-A")]
    guard = PortGuard(_record(acm0), lambda: ports)
    assert guard.check().ok
    ports[:] = [PortInfo(acm0, "SN-B")]  # another board at the same path
    refused = guard.check()
    assert not refused.ok and refused.reason == "port now belongs to another device"
    unlisted = PortGuard(_record(acm0), _lister()).check()
    assert not unlisted.ok and "not a serial port" in unlisted.reason


def test_simulated_node_needs_the_registering_process_to_hold_the_pty(
    pty_pair: tuple[int, str], tmp_path: Path
) -> None:
    master, slave = pty_pair
    link = tmp_path / "sim-link"
    os.symlink(slave, link)
    me = os.getpid()
    assert is_pty(str(link)) and holds_pty_master(me, str(link))
    record = replace(
        _record(str(link)), simulated=True, simulator_pid=me, simulator_started=process_start(me)
    )
    assert PortGuard(record, _lister()).check().ok
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        other = replace(
            record, simulator_pid=sleeper.pid, simulator_started=process_start(sleeper.pid)
        )
        refused = PortGuard(other, _lister()).check()
        assert not refused.ok and "does not hold" in refused.reason
    finally:
        sleeper.kill()
        sleeper.wait()
    reused = PortGuard(replace(record, simulator_started=1), _lister()).check()
    assert not reused.ok and "gone" in reused.reason  # a pid reused by another process
    legacy = PortGuard(replace(record, simulator_pid=None, simulator_started=None), _lister())
    assert not legacy.check().ok


def test_list_serial_ports_runs_on_this_machine() -> None:
    for port in list_serial_ports():  # usually none here; never a pty
        assert isinstance(port, PortInfo) and not is_pty(port.device)


# -- nothing is written to a port that is not the node's -------------------------------


async def _open_for(connection: NodeConnection, seconds: float) -> None:
    token = object()
    await connection.acquire(token)
    try:
        await asyncio.sleep(seconds)
    finally:
        await connection.release(token)


def test_a_pty_the_simulator_did_not_register_is_never_written_to(
    pty_pair: tuple[int, str],
) -> None:
    """A node registered as a USB node (or by path) on a pty: no hello, no command."""
    master, slave = pty_pair
    for record in (_record(slave, serial_number="SN-DESK"), _record(slave)):
        connection = NodeConnection(record, port_lister=_lister(PortInfo(slave, "SN-DESK")))
        asyncio.run(_open_for(connection, 1.0))
        assert connection.link.connects == 0
        assert _written(master) == b""
        summary = connection.summary()
        assert connection.link_state == summary["link_state"] == "waiting"
        assert "another device" in summary["link_reason"]


def test_the_same_pty_registered_by_its_simulator_is_opened(
    pty_pair: tuple[int, str],
) -> None:
    """The control for the test above: the check, not the pty, is what keeps it silent."""
    master, slave = pty_pair
    me = os.getpid()
    record = replace(
        _record(slave), simulated=True, simulator_pid=me, simulator_started=process_start(me)
    )
    connection = NodeConnection(record, port_lister=_lister())
    asyncio.run(_open_for(connection, 1.0))
    assert connection.link.connects == 1
    assert _written(master).startswith(b"hello ")


def test_a_waiting_node_shows_its_sources_waiting_and_uncredited(
    pty_pair: tuple[int, str], home: Path
) -> None:
    master, slave = pty_pair
    record = _record(slave, serial_number="SN-DESK")

    async def main() -> tuple[dict, float]:
        engine = Engine(build_node_sources(record), Config(assessment_enabled=False))
        await engine.start()
        try:
            await asyncio.sleep(1.5)
            return engine.source_states(), engine.healthy_credited_bits()
        finally:
            await engine.stop()

    states, healthy = asyncio.run(main())
    assert _written(master) == b""
    for name in ("adc", "rng", "jitter"):
        state = states[f"node:n1:{name}"]
        assert state["state"] == "waiting", state
        assert "another device" in state["reason"]
        assert state["credited_bits"] == 0 and state["details"]["link_state"] == "waiting"
    assert healthy == 0


def test_run_json_never_touches_a_pty_added_with_nodes_add(
    pty_pair: tuple[int, str], home: Path
) -> None:
    """`nodes add --port <pty>` then `run --json`: the node waits, the pty gets nothing."""
    master, slave = pty_pair
    key_file = home / "k.hex"
    key_file.write_text(KEY.hex())
    env = dict(os.environ, CHAOS_HOME=str(home))
    add = subprocess.run(
        [sys.executable, "-m", "chaosmagnet", "nodes", "add", "--label", "stray",
         "--node-id", "0011223344556677", "--board", "um_feathers3", "--port", slave,
         "--key-file", str(key_file)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert add.returncode == 0, add.stderr
    assert "pty" in add.stderr  # told at once that this cannot work
    run = subprocess.run(
        [sys.executable, "-m", "chaosmagnet", "run", "--node", "stray", "--source", "os-rng",
         "--seconds", "2", "--json"],
        env=env, capture_output=True, text=True, timeout=90, cwd=home,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert _written(master) == b""
    last = json.loads(run.stdout.strip().splitlines()[-1])
    (node,) = last["nodes"]
    assert node["label"] == "stray" and node["link_state"] == "waiting"
    assert "another device" in node["link_reason"]
    states = {s["name"]: s["state"] for s in last["sources"]}
    assert states["node:stray:adc"] == "waiting" and states["os-rng"] == "ok"
    assert "node stray: link waiting" in run.stderr  # the end-of-run summary


# -- the registry ----------------------------------------------------------------------


def test_registry_keeps_port_identity_and_loads_older_entries(home: Path) -> None:
    path = home / "keys" / "nodes.json"
    path.parent.mkdir()
    old = {
        "version": 1,
        "nodes": [
            {"label": "old", "node_id": "00" * 8, "key": "11" * 32, "board": "um_feathers3",
             "link": "/dev/ttyACM0", "simulated": False, "declared": {}},
        ],
    }  # fmt: skip
    path.write_text(json.dumps(old))
    loaded = NodeRegistry().get("old")
    assert loaded.serial_number == "" and loaded.usb_vid is None and loaded.simulator_pid is None
    with registry_transaction() as reg:
        reg.put(
            _record("/dev/ttyACM1", serial_number="SN-1", usb_vid=0x303A, usb_pid=0x1001,
                    by_id="/dev/serial/by-id/usb-Espressif-if00")
        )  # fmt: skip
    again = NodeRegistry()
    assert again.get("old") == loaded
    new = again.get("n1")
    assert (new.serial_number, new.usb_vid, new.usb_pid) == ("SN-1", 0x303A, 0x1001)
    assert "simulator_pid" not in json.loads(path.read_text())["nodes"][1]
    doc = json.loads(path.read_text())
    doc["nodes"][1]["usb_vid"] = "303a"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="node registry"):
        NodeRegistry()


def test_a_device_swapped_between_check_and_open_gets_nothing(pty_pair: tuple[int, str]) -> None:
    """The link compares the device it opened with the one that was checked."""
    from chaosmagnet.nodes.link import SerialLink
    from chaosmagnet.nodes.ports import PortCheck

    master, slave = pty_pair
    connects: list[int] = []
    link = SerialLink(
        slave,
        lambda data: None,
        on_connect=lambda: connects.append(link.write(b"hello\n")),
        check_port=lambda: PortCheck(slave, "", (0, 0)),  # "checked" some other device
    )

    async def main() -> None:
        task = asyncio.create_task(link.run())
        await asyncio.sleep(0.8)
        link.close()
        await task

    asyncio.run(main())
    assert connects == [] and link.connects == 0
    assert link.refusal == "port now belongs to another device"
    assert _written(master) == b""
