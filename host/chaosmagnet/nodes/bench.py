"""Node benchmarks: many simulated nodes into one aggregator; the parser alone.

The aggregator side is the real thing (serial links on ptys, parsers, node
sources, the engine with health tests, estimates and the pool).  The nodes are
a frame pump in a separate process: 64 copies of the firmware's pure-Python
sampling loop would need more CPU than this benchmark measures, so the pump
answers each connection's hello with a real handshake and then sends frames
tagged under that session's key, with pre-generated noise at each node's rate.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from chaosmagnet.config import Config
from chaosmagnet.engine import Engine
from chaosmagnet.nodes.parser import FrameParser
from chaosmagnet.nodes.ports import process_start
from chaosmagnet.nodes.protocol import derive_session, encode_frame, encode_handshake
from chaosmagnet.nodes.registry import NodeRecord, new_key, new_node_id
from chaosmagnet.nodes.simulator import PtyEndpoint
from chaosmagnet.nodes.sources import build_node_sources

TICK = 0.1  # s between a node's frame bursts
# per tick and node: (source id, bits, samples); 1638 bytes of frames = 16 KB/s
BURST = ((1, 12, 300), (2, 8, 300), (3, 8, 498))
DECLARED = {"adc": {"h": 1.0}, "rng": {"h": 7.0}, "jitter": {"h": 0.2}}


def _payloads(rng: np.random.Generator, count: int) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {1: [], 2: [], 3: []}
    for _ in range(count):
        adc = np.clip(np.rint(2048 + rng.normal(0, 3.0, 300)), 0, 4095).astype("<u2")
        out[1].append(adc.tobytes())
        out[2].append(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
        out[3].append((rng.geometric(0.05, 498) & 0xFF).astype(np.uint8).tobytes())
    return out


def run_feeder(spec: dict[str, Any]) -> None:
    """The frame pump: one pty per node, frames paced at each node's rate, until SIGTERM."""
    rng = np.random.default_rng(1)
    payloads = _payloads(rng, 16)
    nodes: list[dict[str, Any]] = []
    for n in spec["nodes"]:
        endpoint = PtyEndpoint(Path(n["link"]))
        nodes.append(
            {
                "key": bytes.fromhex(n["key"]),
                "id": bytes.fromhex(n["node_id"]),
                "boot_nonce": os.urandom(8),
                "session": None,
                "inbox": bytearray(),
                "seq": 0,
                "samples": {1: 0, 2: 0, 3: 0},
                "ep": endpoint,
                "pending": bytearray(),
                "started": False,
            }
        )
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    next_tick = time.monotonic()
    ticks = 0
    by_master = {n["ep"].master: n for n in nodes}
    while not stop:
        now = time.monotonic()
        if now >= next_tick:
            for n in nodes:
                if not n["started"]:
                    continue
                for sid, bits, count in BURST:
                    n["samples"][sid] += count
                    session_key, session_id = n["session"]
                    n["pending"] += encode_frame(
                        session_key,
                        n["id"],
                        session_id,
                        n["seq"],
                        1,
                        int(now * 1000),
                        sid,
                        bits,
                        0,
                        n["samples"][sid],
                        0,
                        0,
                        payloads[sid][ticks % 16],
                    )
                    n["seq"] += 1
            ticks += 1
            next_tick += TICK
        writers = [n["ep"].master for n in nodes if n["pending"]]
        readable, writable, _ = select.select(
            list(by_master), writers, [], max(0.0, min(0.01, next_tick - now))
        )
        for fd in readable:  # the host's hello: answer it, start a session, stream
            try:
                data = os.read(fd, 4096)
            except OSError:
                continue
            n = by_master[fd]
            n["inbox"] += data
            while b"\n" in n["inbox"]:
                line, _, rest = bytes(n["inbox"]).partition(b"\n")
                n["inbox"] = bytearray(rest)
                words = line.split()
                if len(words) == 2 and words[0] == b"hello":
                    challenge, link_nonce = bytes.fromhex(words[1].decode()), os.urandom(8)
                    n["pending"] += encode_handshake(
                        n["key"], n["id"], challenge, n["boot_nonce"], link_nonce, 1
                    )
                    n["session"] = derive_session(
                        n["key"], n["id"], challenge, n["boot_nonce"], link_nonce, 1
                    )
                    n["seq"] = 0
                    n["started"] = True
        for fd in writable:
            n = by_master[fd]
            try:
                written = os.write(fd, n["pending"][:65536])
            except (BlockingIOError, InterruptedError):
                continue
            del n["pending"][:written]
    backlog = sum(len(n["pending"]) for n in nodes)
    for n in nodes:
        n["ep"].close()
    print(json.dumps({"feeder_backlog_bytes": backlog}), flush=True)


async def _aggregate(records: list[NodeRecord], seconds: float, warmup: float) -> dict[str, Any]:
    sources = []
    for record in records:
        sources += build_node_sources(record, boot_store=None)
    engine = Engine(sources, Config(assessment_enabled=False))
    connections = {id(s.connection): s.connection for s in sources}.values()  # type: ignore[attr-defined]
    proc = psutil.Process()
    await engine.start()
    try:
        await asyncio.sleep(warmup)
        frames0 = sum(c.parser.frames_accepted for c in connections)
        bytes0 = sum(c.parser.bytes_accepted for c in connections)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        peak_rss = 0
        end = t0 + seconds
        while time.monotonic() < end:
            await asyncio.sleep(0.5)
            peak_rss = max(peak_rss, proc.memory_info().rss)
        t1 = time.monotonic()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        frames = sum(c.parser.frames_accepted for c in connections) - frames0
        nbytes = sum(c.parser.bytes_accepted for c in connections) - bytes0
        drops = sum(sum(c.parser.drops.values()) for c in connections)
        lost = sum(c.parser.lost_frames for c in connections)
        overflows = sum(c.queue_overflows for c in connections)
        links_open = sum(1 for c in connections if c.link.is_open)
        snapshot = engine.snapshot()
        credited = sum(s["credited_bits"] for s in snapshot["sources"])
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        elapsed = t1 - t0
        return {
            "nodes": len(records),
            "links_open": links_open,
            "seconds": round(elapsed, 2),
            "frames_per_s": round(frames / elapsed, 1),
            "mb_per_s": round(nbytes / elapsed / 1e6, 3),
            "frames_dropped": drops,
            "frames_lost": lost,
            "queue_overflows": overflows,
            "cpu_percent_of_one_core": round(100 * cpu / elapsed, 1),
            "rss_mb": round(peak_rss / 2**20, 1),
            "credited_bits_total": round(credited, 1),
        }
    finally:
        await engine.stop()


def aggregator_benchmark(
    nodes: int = 64, seconds: float = 20.0, warmup: float = 3.0
) -> dict[str, Any]:
    """Run the pump in a child process and the aggregator here; return the figures."""
    with tempfile.TemporaryDirectory(prefix="chaos-bench-nodes-") as tmp:
        records = [
            NodeRecord(
                f"b{i:02d}",
                new_node_id(),
                new_key(),
                "um_feathers3",
                str(Path(tmp) / f"node{i:02d}"),
                True,
                DECLARED,
            )
            for i in range(nodes)
        ]
        spec = {
            "nodes": [
                {"link": r.link, "key": r.key.hex(), "node_id": r.node_id.hex()} for r in records
            ]
        }
        feeder = subprocess.Popen(
            [sys.executable, "-m", "chaosmagnet.nodes.bench", "feeder"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert feeder.stdin is not None and feeder.stdout is not None
        feeder.stdin.write(json.dumps(spec))
        feeder.stdin.close()
        feeder.stdin = None  # communicate() must not flush it again
        if feeder.stdout.readline().strip() != "ready":
            raise RuntimeError("frame pump did not start")
        started = process_start(feeder.pid)  # the feeder holds the ptys: the port guard checks it
        records = [
            replace(r, simulator_pid=feeder.pid, simulator_started=started) for r in records
        ]
        try:
            result = asyncio.run(_aggregate(records, seconds, warmup))
        finally:
            feeder.send_signal(signal.SIGTERM)
            out, _ = feeder.communicate(timeout=30)
        for line in out.splitlines():
            if line.startswith("{"):
                result.update(json.loads(line))
        return result


def parser_benchmark(
    megabytes: int = 64, payload: int = 1024, chunk: int = 65536
) -> dict[str, Any]:
    """Throughput of FrameParser alone on valid session frames fed in chunks (after a handshake)."""
    key, node_id, boot_nonce, link_nonce = new_key(), new_node_id(), os.urandom(8), os.urandom(8)
    challenge = os.urandom(16)
    session_key, session_id = derive_session(key, node_id, challenge, boot_nonce, link_nonce, 1)
    rng = np.random.default_rng(2)
    body = rng.integers(0, 256, payload, dtype=np.uint8).tobytes()
    count = megabytes * 2**20 // (payload + 80)
    stream = b"".join(
        encode_frame(session_key, node_id, session_id, i, 1, i, 2, 8, 2, i, 0, 0, body)
        for i in range(count)
    )
    parser = FrameParser({node_id: key})
    parser.session(node_id).hello(challenge)
    parser.feed(encode_handshake(key, node_id, challenge, boot_nonce, link_nonce, 1))
    t0 = time.perf_counter()
    frames = 0
    for pos in range(0, len(stream), chunk):
        frames += len(parser.feed(stream[pos : pos + chunk]))
    elapsed = time.perf_counter() - t0
    return {
        "frame_bytes": payload + 80,
        "frames": frames,
        "drops": sum(parser.drops.values()),
        "mb_per_s": round(len(stream) / elapsed / 1e6, 1),
        "frames_per_s": round(frames / elapsed),
    }


if __name__ == "__main__" and sys.argv[1:] == ["feeder"]:
    run_feeder(json.loads(sys.stdin.read()))
