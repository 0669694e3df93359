"""The BLE benchmark: frames/s and bytes/s through bumble's virtual link, host CPU.

The nodes run in a separate process (``serve``): the firmware's Node and BLE
service on bumble peripherals, on one virtual radio that serves an adapter
over TCP.  This process is the host as ``chaos-host run --node`` runs it:
BleLink through bleak (bumble backend over that adapter), the parser and
handshake, node sources and the engine.  Its CPU time includes bumble's
host stack in Python (BlueZ does that work in the kernel and bluetoothd on a
real machine), so it overstates a real host's cost.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from chaosmagnet.config import Config
from chaosmagnet.engine import Engine
from chaosmagnet.nodes.ble import BleLink
from chaosmagnet.nodes.boards import load_board
from chaosmagnet.nodes.registry import NodeRecord
from chaosmagnet.nodes.simulator import node_config
from chaosmagnet.nodes.sources import NodeConnection, NodeSource, build_node_sources

BENCH_RATES = {"adc": 4000, "rng": 1024, "jitter": 2000}  # 8 + 1 + 2 KB/s of samples per node
BOARD = "um_feathers3"


def _node_key(index: int) -> tuple[bytes, bytes]:
    return bytes([0xB1, index]) + bytes(6), bytes([index + 1]) * 32


def serve(count: int, port: int) -> None:
    """The nodes' side: count firmware nodes on one virtual radio, adapter on 127.0.0.1:port."""
    from chaosmagnet.nodes.ble_bumble import BlePeripheral, VirtualRadio

    board = load_board(BOARD)

    async def main() -> None:
        radio = VirtualRadio()
        await radio.serve_hci(f"tcp-server:127.0.0.1:{port}")
        peripherals = []
        for i in range(count):
            node_id, key = _node_key(i)
            config = node_config(node_id, key, board, f"bench{i}", BENCH_RATES)
            peripherals.append(BlePeripheral(radio, config, address=f"C0:00:00:00:01:{i:02X}"))
        loop = asyncio.get_running_loop()
        for p in peripherals:
            loop.add_signal_handler(signal.SIGTERM, p.stop)
        print("ready", flush=True)
        await asyncio.gather(*(p.run() for p in peripherals))
        await radio.close()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ble_benchmark(count: int, seconds: float = 10.0) -> dict[str, Any]:
    """Run count nodes through the virtual link for seconds; frames/s, bytes/s, host CPU."""
    from chaosmagnet.nodes.ble_bumble import central_for_hci

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaosmagnet.nodes.ble_bench", "serve", str(count), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the BLE node process did not start")
        client, scanner = central_for_hci(f"tcp-client:127.0.0.1:{port}").backends()
        factory = functools.partial(BleLink, client_backend=client, scanner_backend=scanner)
        board = load_board(BOARD)
        records = []
        for i in range(count):
            node_id, key = _node_key(i)
            records.append(
                NodeRecord(
                    f"bench{i}", node_id, key, board.name, f"ble:C0:00:00:00:01:{i:02X}", True,
                    board.node_sources_config(),
                )
            )
        return asyncio.run(_measure(records, factory, seconds))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _measure(records: list[NodeRecord], factory: Any, seconds: float) -> dict[str, Any]:
    sources = []
    for record in records:
        sources += build_node_sources(record, link_factory=factory, boot_store=None)
    connections: list[NodeConnection] = []
    for source in sources:
        if isinstance(source, NodeSource) and source.connection not in connections:
            connections.append(source.connection)
    engine = Engine(sources, Config(assessment_enabled=False))
    await engine.start()
    try:
        deadline = time.monotonic() + 30
        while not all(c.verified for c in connections):
            if time.monotonic() > deadline:
                raise RuntimeError("not every node linked within 30 s")
            await asyncio.sleep(0.1)
        link_setup_s = 30 - (deadline - time.monotonic())
        await asyncio.sleep(1.0)  # steady state

        def totals() -> tuple[int, int]:
            frames = sum(c.parser.frames_accepted for c in connections)
            received = sum(getattr(c.link, "bytes_received", 0) for c in connections)
            return frames, received

        drops0 = _drops(connections)
        frames0, bytes0 = totals()
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        frames1, bytes1 = totals()
        cpu1, wall1 = time.process_time(), time.monotonic()
        states = engine.source_states()
        drops = _drops(connections)
    finally:
        await engine.stop()
    wall = wall1 - wall0
    return {
        "nodes": len(records),
        "seconds": round(wall, 2),
        "link_setup_s": round(link_setup_s, 2),
        "frames_per_s": round((frames1 - frames0) / wall, 1),
        "bytes_per_s": round((bytes1 - bytes0) / wall),
        "bytes_per_s_per_node": round((bytes1 - bytes0) / wall / len(records)),
        "host_cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / wall, 1),
        "drops_while_measuring": {k: n - drops0.get(k, 0) for k, n in drops.items() if n > drops0.get(k, 0)},
        "drops_while_linking": drops0,
        "credited_bits": round(sum(s["credited_bits"] for s in states.values())),
    }


def _drops(connections: list[NodeConnection]) -> dict[str, int]:
    drops: dict[str, int] = {}
    for c in connections:
        for reason, n in c.parser.drops.items():
            drops[reason.value] = drops.get(reason.value, 0) + n
    return drops


def main(argv: list[str]) -> None:
    """``serve COUNT PORT`` (the nodes' process)."""
    if len(argv) == 3 and argv[0] == "serve":
        serve(int(argv[1]), int(argv[2]))
        return
    print("usage: python -m chaosmagnet.nodes.ble_bench serve COUNT PORT", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(sys.argv[1:])
