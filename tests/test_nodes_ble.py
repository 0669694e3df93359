"""Nodes over Bluetooth LE, against a real BLE stack without a kernel adapter.

Both ends run on Google's bumble over its virtual link: the simulated node is a
bumble GATT peripheral driving the firmware's Node and BLE service state
machine (chaosnode.ble), and the host is the production code (BleLink,
scan_nodes, NodeConnection, the one parser and handshake) through bleak's
public API, with bleak's ``backend=`` hook bound to a bumble central.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from chaosmagnet.config import Config
from chaosmagnet.engine import Engine
from chaosmagnet.nodes.ble import COMMAND_UUID, SERVICE_UUID, STREAM_UUID, BleLink, scan_nodes
from chaosmagnet.nodes.boards import load_board
from chaosmagnet.nodes.registry import NodeRecord, new_key, new_node_id
from chaosmagnet.nodes.simulator import node_config
from chaosmagnet.nodes.sources import NodeSource, build_node_sources
from chaosmagnet.sources.base import Source, SourceInfo
from source_helpers import uniform

pytest.importorskip("bumble")
from chaosmagnet.nodes.ble_bumble import BlePeripheral, VirtualRadio  # noqa: E402

pytestmark = pytest.mark.slow


class SteadySource(Source):
    """A healthy local source: a batch of uniform bytes every 50 ms."""

    def __init__(self, name: str) -> None:
        self.info = SourceInfo(name=name, kind="test", bits_per_sample=8, declared_h=2.0)

    async def batches(self) -> AsyncIterator[np.ndarray]:
        seed = 0
        while True:
            seed += 1
            yield uniform(2048, seed)
            await asyncio.sleep(0.05)


def _node(radio: VirtualRadio, label: str, fault: str | None = None) -> tuple[BlePeripheral, NodeRecord]:
    board = load_board("um_feathers3")
    node_id, key = new_node_id(), new_key()
    peripheral = BlePeripheral(radio, node_config(node_id, key, board, label), fault=fault)
    record = NodeRecord(
        label, node_id, key, board.name, f"ble:{peripheral.address}", True, board.node_sources_config()
    )
    return peripheral, record


def _link_factory(central: Any) -> Any:
    client, scanner = central.backends()
    return functools.partial(BleLink, client_backend=client, scanner_backend=scanner)


async def _until(predicate: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.02)


def test_host_and_firmware_agree_on_the_uuids() -> None:
    from chaosmagnet.nodes.simulator import firmware_modules

    firmware_modules()
    import chaosnode.ble as fw

    assert (fw.SERVICE_UUID, fw.STREAM_UUID, fw.COMMAND_UUID) == (SERVICE_UUID, STREAM_UUID, COMMAND_UUID)


def test_scan_lists_an_advertising_node() -> None:
    async def main() -> None:
        radio = VirtualRadio()
        peripheral, record = _node(radio, "blue1")
        task = asyncio.create_task(peripheral.run())
        central = radio.central()
        try:
            found = await scan_nodes(1.0, scanner_backend=central.backends()[1])
        finally:
            peripheral.stop()
            await task
        assert [(a.address, a.label) for a in found] == [(peripheral.address, "blue1")]
        assert found[0].rssi < 0

    asyncio.run(main())


def test_run_credits_a_ble_node_and_it_relinks_after_going_away() -> None:
    """Credit rises over BLE; when the peripheral goes away the node shows lost and the
    other source keeps its credit; when it comes back it is linked again (delay printed)."""

    async def main() -> None:
        radio = VirtualRadio()
        peripheral, record = _node(radio, "blue2")
        task = asyncio.create_task(peripheral.run())
        central = radio.central()
        sources = build_node_sources(record, link_factory=_link_factory(central), boot_store=None)
        local = SteadySource("local")
        engine = Engine([*sources, local], Config(assessment_enabled=False, min_samples=512))
        await engine.start()
        try:
            conn = sources[0].connection if isinstance(sources[0], NodeSource) else None
            assert conn is not None
            await _until(
                lambda: engine.source_states()["node:blue2:adc"]["credited_bits"] > 0, what="credit"
            )
            assert conn.link_state == "linked" and conn.verified
            local_before = engine.source_states()["local"]["credited_bits"]
            await peripheral.set_present(False)
            await _until(lambda: conn.link_state == "lost", what="lost")
            await asyncio.sleep(0.5)
            away = engine.source_states()
            assert away["local"]["state"] == "ok" and away["local"]["credited_bits"] > local_before
            came_back = time.monotonic()
            await peripheral.set_present(True)
            await _until(lambda: conn.link_state == "linked", what="relinked")
            print(f"relinked {time.monotonic() - came_back:.2f} s after the node came back")
            before = engine.source_states()["node:blue2:adc"]["credited_bits"]
            await _until(
                lambda: engine.source_states()["node:blue2:adc"]["credited_bits"] > before,
                what="credit after relink",
            )
            assert conn.summary()["drops"] == {} or "replay" not in conn.summary()["drops"]
        finally:
            await engine.stop()
            peripheral.stop()
            await task

    asyncio.run(main())


def test_replaying_a_recorded_ble_session_into_a_new_connection_credits_nothing() -> None:
    """Record what a node notified over one connection; a peripheral that plays it back
    to the next connection (whatever the challenge) earns 0 bits, and its frames are dropped."""

    async def main() -> None:
        radio = VirtualRadio()
        peripheral, record = _node(radio, "blue3")
        task = asyncio.create_task(peripheral.run())
        central = radio.central()
        client, scanner = central.backends()
        recorded = bytearray()

        def recording_link(address: str, on_bytes: Any, **kwargs: Any) -> BleLink:
            def tap(data: bytes) -> None:
                recorded.extend(data)
                on_bytes(data)

            return BleLink(address, tap, client_backend=client, scanner_backend=scanner, **kwargs)

        sources = build_node_sources(record, link_factory=recording_link, boot_store=None)
        engine = Engine(sources, Config(assessment_enabled=False, min_samples=512))
        await engine.start()
        try:
            await _until(
                lambda: engine.source_states()["node:blue3:adc"]["credited_bits"] > 0, what="credit"
            )
        finally:
            await engine.stop()
            peripheral.stop()
            await task
        assert len(recorded) > 2048

        # the replayer: the same node's address and GATT service, answering every write with the recording
        replayer = BlePeripheral(radio, peripheral.config, address=peripheral.address)
        replayer.outbox.capacity = len(recorded) + 1

        def replay(_data: bytes) -> None:
            replayer.outbox.write(bytes(recorded))

        replayer.service.on_write = replay  # type: ignore[method-assign]
        replay_task = asyncio.create_task(replayer.run())
        fresh = build_node_sources(record, link_factory=_link_factory(central), boot_store=None)
        engine = Engine(fresh, Config(assessment_enabled=False, min_samples=512))
        await engine.start()
        try:
            conn = fresh[0].connection  # type: ignore[attr-defined]
            await _until(lambda: conn.parser.drops, what="replayed frames dropped")
            await asyncio.sleep(1.5)
            states = engine.source_states()
            assert sum(states[f"node:blue3:{s}"]["credited_bits"] for s in ("adc", "rng", "jitter")) == 0
            assert sum(states[f"node:blue3:{s}"]["samples"] for s in ("adc", "rng", "jitter")) == 0
            assert not conn.verified
            print("replayed session drops:", conn.summary()["drops"])
        finally:
            await engine.stop()
            replayer.stop()
            await replay_task

    asyncio.run(main())


def _cli(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaosmagnet", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_cli_scan_and_run_against_nodes_simulate_link_ble(tmp_path) -> None:
    """`nodes simulate --link ble` in one process; `nodes scan` and `run --node` in others,
    through the virtual adapter it serves (CHAOS_BLE_HCI)."""
    env = dict(os.environ, CHAOS_HOME=str(tmp_path))
    env.pop("CHAOS_NODES", None)
    env.pop("CHAOS_BLE_HCI", None)
    sim = subprocess.Popen(
        [sys.executable, "-m", "chaosmagnet", "nodes", "simulate", "--link", "ble", "--label", "bcli"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert sim.stdout is not None
        lines = [sim.stdout.readline() for _ in range(3)]
        spec = re.search(r"tcp-client:[0-9.]+:\d+", "".join(lines))
        assert spec, lines
        address = re.search(r"address: (\S+)", "".join(lines)).group(1)  # type: ignore[union-attr]
        host_env = dict(env, CHAOS_BLE_HCI=spec.group(0))
        scan = _cli(["nodes", "scan", "--seconds", "1.5", "--json"], host_env)
        assert scan.returncode == 0, scan.stderr
        rows = json.loads(scan.stdout)["nodes"]
        assert {"label": "bcli", "address": address, "rssi": rows[0]["rssi"], "registered": "bcli"} in rows
        run = _cli(["run", "--node", "bcli", "--source", "os-rng", "--seconds", "5", "--json"], host_env)
        assert run.returncode == 0, run.stderr
        summary = json.loads(run.stdout.strip().splitlines()[-1])
        credited = {src["name"]: src["credited_bits"] for src in summary["sources"]}
        assert credited["node:bcli:adc"] > 0 and credited["node:bcli:jitter"] > 0
        print("credited over the virtual BLE link:", credited)
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.communicate(timeout=20)


def test_cli_without_bluetooth_says_so_in_one_line(tmp_path) -> None:
    env = dict(os.environ, CHAOS_HOME=str(tmp_path), DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={tmp_path}/none")
    env.pop("CHAOS_BLE_HCI", None)
    scan = _cli(["nodes", "scan", "--seconds", "1"], env)
    assert scan.returncode == 2
    assert scan.stderr.count("\n") == 1 and "Bluetooth LE is not available" in scan.stderr
    assert "Traceback" not in scan.stderr


def test_nodes_add_ble_registers_a_ble_link(tmp_path) -> None:
    env = dict(os.environ, CHAOS_HOME=str(tmp_path))
    env.pop("CHAOS_NODES", None)
    key_file = tmp_path / "key"
    key_file.write_text("ab" * 32)
    args = ["nodes", "add", "--label", "radio1", "--node-id", "01" * 8, "--board", "um_feathers3"]
    ok = _cli([*args, "--ble", "c0:00:00:00:00:09", "--key-file", str(key_file)], env)
    assert ok.returncode == 0, ok.stderr
    listed = json.loads(_cli(["nodes", "list", "--json"], env).stdout)
    assert [n["link"] for n in listed["nodes"]] == ["ble:C0:00:00:00:00:09"]
    bad = _cli([*args, "--ble", "nonsense", "--key-file", str(key_file)], env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    both = _cli([*args, "--ble", "c0:00:00:00:00:09", "--port", "/dev/x", "--key-file", str(key_file)], env)
    assert both.returncode == 2 and "exactly one" in both.stderr


BLE_MAIN = """
import sys
sys.path.append('/lib')
sys.path.append('/mp')
import ble_scenario
print(ble_scenario.main(open('/data/config.json').read(), {hello!r}, {mtu}))
"""


def test_firmware_ble_service_under_micropython_and_cpython(tmp_path) -> None:
    """Chunks never exceed MTU - 3; failed notifications are retried, not lost; the
    concatenated notifications are a stream the host's one parser verifies whole;
    advertising fits 31 bytes; a disconnect ends the session and advertises again."""
    from chaosmagnet.nodes.parser import Drop, FrameParser
    from chaosmagnet.nodes.protocol import FrameType
    from nodes_helpers import FIRMWARE_LIB, MP_DIR, run_micropython

    board = load_board("um_feathers3")
    node_id, key = bytes(range(8)), bytes(range(32))
    config = node_config(node_id, key, board, "n1")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "config.json").write_text(json.dumps(config))
    mtu = 100
    results = {}
    for interpreter in ("micropython", "cpython"):
        parser = FrameParser({node_id: key})
        hello = parser.session(node_id).hello(bytes(range(16)))
        code = BLE_MAIN.format(hello=hello.hex(), mtu=mtu)
        if interpreter == "micropython":
            out = run_micropython(code, tmp_path, {FIRMWARE_LIB: "/lib", MP_DIR: "/mp", data_dir: "/data"})
            result = json.loads(out.decode())
        else:
            sys.path[:0] = [str(FIRMWARE_LIB), str(MP_DIR)]
            try:
                import ble_scenario

                result = json.loads(ble_scenario.main(json.dumps(config), hello.hex(), mtu))
            finally:
                sys.path.remove(str(FIRMWARE_LIB))
                sys.path.remove(str(MP_DIR))
        results[interpreter] = result
        assert result["states"] == ["advertising", "connected", "advertising"]
        assert result["after_disconnect"] == [True, False, 0]
        assert max(result["chunk_sizes"]) == mtu - 3 and result["notify_failures"] > 0
        assert result["pending_after"] == 0
        events = parser.feed(bytes.fromhex(result["stream"]))
        frames = [e for e in events if not isinstance(e, Drop)]
        assert not [e for e in events if isinstance(e, Drop)]
        assert frames[0].type is FrameType.HANDSHAKE
        assert sum(1 for f in frames if f.type is FrameType.DATA) >= 3
        assert [n for _, n in result["adv"]] == [25, 31]
        assert result["scan"][0] == [b"n1".hex(), "", b"n1".hex()]
        long_label = b"a-very-long-node-label-here"
        assert result["scan"][1] == ["", long_label[:8].hex(), long_label.hex()]
    assert results["micropython"]["chunk_sizes"] == results["cpython"]["chunk_sizes"]


@pytest.mark.hardware
def test_real_adapter_node_handshakes_and_streams(ble_node: str) -> None:
    """With --ble-node LABEL: through BlueZ (bleak's own backend), the node verifies our
    challenge and reports its status."""
    from chaosmagnet.nodes.registry import NodeRegistry
    from chaosmagnet.nodes.sources import NodeConnection

    record = NodeRegistry().get(ble_node)
    assert record.link.startswith("ble:")

    async def main() -> None:
        conn = NodeConnection(record, boot_store=None)  # the production link: BlueZ
        token = object()
        await conn.acquire(token)
        try:
            await _until(lambda: conn.verified and conn.status is not None, timeout=30, what="handshake")
            await _until(lambda: conn.parser.frames_accepted > 10, timeout=10, what="frames")
            assert conn.summary()["link"] == "linked"
        finally:
            await conn.release(token)

    asyncio.run(main())


def test_garbage_on_the_ble_stream_is_dropped_with_reasons_and_credit_continues() -> None:
    async def main() -> None:
        radio = VirtualRadio()
        peripheral, record = _node(radio, "blue5", fault="garbage")
        task = asyncio.create_task(peripheral.run())
        sources = build_node_sources(record, link_factory=_link_factory(radio.central()), boot_store=None)
        engine = Engine(sources, Config(assessment_enabled=False, min_samples=512))
        await engine.start()
        try:
            conn = sources[0].connection  # type: ignore[attr-defined]
            await _until(
                lambda: {"bad_magic", "bad_tag"} <= set(conn.summary()["drops"])
                and engine.source_states()["node:blue5:adc"]["credited_bits"] > 0,
                what="drops and credit",
            )
        finally:
            await engine.stop()
            peripheral.stop()
            await task

    asyncio.run(main())


def test_without_an_adapter_a_ble_node_waits_and_says_why() -> None:
    """A scanner backend that finds no adapter (as BlueZ does without one): the link waits,
    retries, and the node's details say why in one line; nothing is credited."""
    from bleak.backends.scanner import BaseBleakScanner
    from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason

    class NoAdapter(BaseBleakScanner):
        def __init__(self, detection_callback: Any, service_uuids: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(detection_callback, service_uuids)

        async def start(self) -> None:
            raise BleakBluetoothNotAvailableError(
                "No Bluetooth adapters found.", BleakBluetoothNotAvailableReason.NO_BLUETOOTH
            )

        async def stop(self) -> None:
            return None

    async def main() -> None:
        radio = VirtualRadio()
        _peripheral, record = _node(radio, "blue6")
        factory = functools.partial(BleLink, client_backend=None, scanner_backend=NoAdapter, use_env=False)
        sources = build_node_sources(record, link_factory=factory, boot_store=None)
        engine = Engine(sources, Config(assessment_enabled=False, min_samples=512))
        await engine.start()
        try:
            conn = sources[0].connection  # type: ignore[attr-defined]
            await _until(lambda: conn.summary()["link_error"] != "", what="link error")
            summary = conn.summary()
            assert summary["link"] == "waiting" and conn.link_state == "waiting"
            assert summary["link_error"].startswith("Bluetooth LE is not available here")
            assert "\n" not in summary["link_error"]
            assert engine.source_states()["node:blue6:adc"]["samples"] == 0
        finally:
            await engine.stop()

    asyncio.run(main())


def test_outbox_chunks_are_the_stream_whatever_the_writes_and_failures() -> None:
    """Property: any writes, any MTU changes, any notification failures: the notified
    chunks concatenate to exactly the bytes the outbox accepted, none over MTU - 3."""
    from chaosmagnet.nodes.simulator import firmware_modules
    from hypothesis import given, settings
    from hypothesis import strategies as st

    firmware_modules()
    import chaosnode.ble as fw

    steps = st.lists(
        st.one_of(
            st.tuples(st.just("write"), st.binary(min_size=1, max_size=600)),
            st.tuples(st.just("mtu"), st.integers(0, 600)),
            st.tuples(st.just("pump"), st.lists(st.booleans(), min_size=1, max_size=20)),
        ),
        max_size=60,
    )

    @settings(max_examples=300, deadline=None)
    @given(steps, st.integers(64, 2048))
    def check(script: list, capacity: int) -> None:
        outbox = fw.Outbox(capacity)
        accepted = bytearray()
        sent: list[bytes] = []
        for op, arg in script:
            if op == "write":
                n = outbox.write(arg)
                assert 0 <= n <= len(arg)
                accepted += arg[:n]
            elif op == "mtu":
                outbox.chunk = min(max(arg, fw.DEFAULT_MTU), fw.MAX_MTU) - 3
            else:
                for ok in arg:
                    chunk = outbox.peek()
                    if not chunk:
                        break
                    assert len(chunk) <= outbox.chunk
                    if ok:
                        sent.append(chunk)
                        outbox.sent(len(chunk))
            assert outbox.pending() <= capacity and len(outbox.buf) <= capacity
        while outbox.pending():
            chunk = outbox.peek()
            sent.append(chunk)
            outbox.sent(len(chunk))
        assert b"".join(sent) == bytes(accepted)

    check()


def test_a_node_that_drops_the_first_connections_is_linked_after_backoff() -> None:
    """The peripheral hangs up on the first two connections at once; the link backs off,
    tries again and links on the third; credit follows."""

    async def main() -> None:
        radio = VirtualRadio()
        peripheral, record = _node(radio, "blue7")
        refused = [0]

        def hang_up(connection: Any) -> None:
            if refused[0] < 2:
                refused[0] += 1
                asyncio.get_running_loop().create_task(connection.disconnect())

        peripheral.device.on(peripheral.device.EVENT_CONNECTION, hang_up)
        task = asyncio.create_task(peripheral.run())
        sources = build_node_sources(record, link_factory=_link_factory(radio.central()), boot_store=None)
        engine = Engine(sources, Config(assessment_enabled=False, min_samples=512))
        await engine.start()
        try:
            conn = sources[0].connection  # type: ignore[attr-defined]
            await _until(
                lambda: engine.source_states()["node:blue7:adc"]["credited_bits"] > 0, what="credit"
            )
            assert refused[0] == 2 and conn.link_state == "linked"
            print(f"linked after {refused[0]} refused connections; link connects {conn.link.connects}")
        finally:
            await engine.stop()
            peripheral.stop()
            await task

    asyncio.run(main())
