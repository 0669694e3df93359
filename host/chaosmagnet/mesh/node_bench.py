"""Wi-Fi node benchmark: N simulated nodes at R bytes/s each through one mosquitto into M hosts.

Each host is its own process: a real Engine whose node sources read through
MqttLinks on one broker connection (the host's mesh credentials), the one
parser and handshake, health tests, estimates and the pool.  The nodes are
frame pumps in F feeder processes, one TLS MQTT connection per node with the
node's own mesh credentials (ACL: only its own prefix): each answers its
host's hello with a real handshake under the node key and then publishes
frames tagged under that session, every 100 ms (staggered), at the node's rate.
(256 copies of the firmware's pure-Python sampling loop, health tests
included, would need more CPU than this 2-core benchmark machine has; the
firmware's own MQTT link is what `nodes simulate --link mqtt` and the tests run.)

Latency is node to credit: the frame's timestamp (the pump's CLOCK_MONOTONIC
in ms, shared by every process on the machine) to the moment the engine has
credited the batch and asks its source for the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np

MESH = "bench"
TICK = 0.1  # s between a node's messages


def _split(rate: int) -> tuple[tuple[int, int, int], ...]:
    """(source id, bits, samples) per tick for ``rate`` payload bytes/s: half ADC words, a quarter RNG, jitter."""
    per_tick = max(8, int(rate * TICK))
    adc = per_tick // 4  # 2 bytes each: half the bytes
    rest = (per_tick - 2 * adc) // 2
    return ((1, 12, adc), (2, 8, rest), (3, 8, per_tick - 2 * adc - rest))


# -- the node side: frame pumps over paho, one connection per node -------------------------
def run_feeder(spec: dict[str, Any]) -> None:
    """Pump frames for spec["nodes"] through the broker until SIGTERM."""
    import paho.mqtt.client as paho

    from chaosmagnet.mqtt.credentials import load_client
    from chaosmagnet.nodes.mqtt import node_topic
    from chaosmagnet.nodes.protocol import derive_session, encode_frame, encode_handshake

    rng = np.random.default_rng(os.getpid())
    burst = _split(int(spec["rate"]))
    payloads = {
        sid: [
            rng.integers(0, 4096 if bits > 8 else 256, count, dtype="<u2" if bits > 8 else np.uint8).tobytes()
            for _ in range(8)
        ]
        for sid, bits, count in burst
    }
    nodes: list[dict[str, Any]] = []
    stop = False
    refresh = {"sockets": True}
    for i, n in enumerate(spec["nodes"]):
        creds = load_client(Path(n["folder"]))
        client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"{creds.label}-{os.getpid()}", protocol=paho.MQTTv311
        )
        client.username_pw_set(creds.username, creds.password)
        client.tls_set_context(creds.tls_context())
        state = node_topic(MESH, creds.label, "state")
        client.will_set(state, b"offline", 0, True)
        node = {
            "label": creds.label,
            "key": bytes.fromhex(n["key"]),
            "id": bytes.fromhex(n["node_id"]),
            "boot_nonce": os.urandom(8),
            "client": client,
            "frames": node_topic(MESH, creds.label, "frames"),
            "session": None,
            "seq": 0,
            "samples": {1: 0, 2: 0, 3: 0},
            "next": time.monotonic() + TICK * (i / max(1, len(spec["nodes"]))),
        }

        def on_message(_c: Any, node: dict[str, Any], message: Any) -> None:
            words = bytes(message.payload).split()
            if len(words) == 2 and words[0] == b"hello":
                challenge, link_nonce = bytes.fromhex(words[1].decode()), os.urandom(8)
                frame = encode_handshake(node["key"], node["id"], challenge, node["boot_nonce"], link_nonce, 1)
                node["session"] = derive_session(node["key"], node["id"], challenge, node["boot_nonce"], link_nonce, 1)
                node["seq"] = 0
                node["client"].publish(node["frames"], frame, 0)

        def on_connect(client: Any, node: dict[str, Any], _f: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                return
            client.subscribe(node_topic(MESH, node["label"], "cmd"), 0)
            client.publish(node_topic(MESH, node["label"], "state"), b"online " + os.urandom(8).hex().encode(), 0, True)

        def on_disconnect(_c: Any, node: dict[str, Any], _f: Any, reason: Any, _p: Any) -> None:
            node["session"] = None
            node["disconnects"] += 0 if stop else 1
            refresh["sockets"] = True
            node["retry"] = time.monotonic() + 1.0
            if not stop and sum(n["disconnects"] for n in nodes) <= 3:
                print(f"feeder: {node['label']} disconnected ({reason})", file=sys.stderr, flush=True)

        node["disconnects"] = 0
        node["retry"] = 0.0
        client.user_data_set(node)
        client.on_message = on_message
        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.connect(spec["host"], spec["port"], 60)
        nodes.append(node)

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    published = 0
    misc_at = 0.0
    by_sock: dict[Any, dict[str, Any]] = {}
    socks: list[Any] = []
    while not stop:
        now = time.monotonic()
        soonest = now + TICK
        for n in nodes:
            if n["session"] is not None and now >= n["next"]:
                session_key, session_id = n["session"]
                stamp = int(now * 1000) & 0xFFFFFFFF
                message = bytearray()
                k = int(now / TICK) % 8
                for sid, bits, count in burst:
                    n["samples"][sid] += count
                    message += encode_frame(
                        session_key, n["id"], session_id, n["seq"], 1, stamp, sid, bits, 0,
                        n["samples"][sid], 0, 0, payloads[sid][k],
                    )  # fmt: skip
                    n["seq"] += 1
                n["client"].publish(n["frames"], bytes(message), 0)
                published += 1
                n["next"] += TICK
                if n["next"] < now:
                    n["next"] = now + TICK
            soonest = min(soonest, n["next"])
        if now >= misc_at or refresh["sockets"]:  # keepalives and reconnects: once a second is plenty
            refresh["sockets"] = False
            misc_at = now + 1.0
            by_sock = {}
            for n in nodes:
                n["client"].loop_misc()
                sock = n["client"].socket()
                if sock is not None and sock.fileno() >= 0:
                    by_sock[sock] = n
                elif now >= n["retry"]:
                    n["retry"] = now + 2.0
                    with contextlib.suppress(OSError):
                        n["client"].reconnect()
            socks = list(by_sock)
        writers = [s for s in socks if by_sock[s]["client"].want_write()]
        try:
            readable, writable, _ = select.select(socks, writers, [], max(0.0, min(0.02, soonest - time.monotonic())))
        except (OSError, ValueError):  # a connection closed since the last refresh
            misc_at = 0.0
            continue
        for s in readable:
            by_sock[s]["client"].loop_read()
        for s in writable:
            by_sock[s]["client"].loop_write()
    for n in nodes:
        n["client"].publish(node_topic(MESH, n["label"], "state"), b"offline", 0, True)
        n["client"].loop_write()
        n["client"].disconnect()
    print(
        json.dumps({"published_messages": published, "disconnects": sum(n["disconnects"] for n in nodes)}), flush=True
    )


# -- the host side: a real engine per host -------------------------------------------------
class _Latency:
    """Frame timestamps per (connection, source), popped when the engine asks for the next batch."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.arrivals: list[float] = []  # node stamp -> the host's parser verified the frame
        self.record = False

    def wrap(self, source: Any) -> None:
        connection = source.connection
        stamps: deque[tuple[int, int]] = deque()  # (node timestamp, samples) per DATA frame
        latency = self
        if not hasattr(connection, "_bench_stamps"):
            connection._bench_stamps = {}
            on_frame = connection._on_frame

            def tapped(frame: Any) -> None:
                queue = connection._bench_stamps.get(frame.source)
                if queue is not None and frame.type.name == "DATA":
                    queue.append((frame.timestamp_ms, len(frame.payload) // frame.sample_width))
                    if latency.record:
                        now = int(time.monotonic() * 1000) & 0xFFFFFFFF
                        latency.arrivals.append(((now - frame.timestamp_ms) & 0xFFFFFFFF) / 1000)
                on_frame(frame)

            connection._on_frame = tapped
        connection._bench_stamps[source.source_id] = stamps
        batches = source.batches

        async def timed() -> AsyncIterator[Any]:
            async for batch in batches():
                frames = []  # the frames this batch holds (queued frames come merged)
                samples = 0
                while stamps and samples < len(batch):
                    stamp, n = stamps.popleft()
                    frames.append(stamp)
                    samples += n
                yield batch  # the engine health-tests, estimates, credits and pools it, then resumes us
                if latency.record:
                    now = int(time.monotonic() * 1000) & 0xFFFFFFFF
                    latency.samples.extend(((now - stamp) & 0xFFFFFFFF) / 1000 for stamp in frames)

        source.batches = timed


async def _host(spec: dict[str, Any]) -> dict[str, Any]:
    from chaosmagnet.config import Config
    from chaosmagnet.engine import Engine
    from chaosmagnet.mqtt.credentials import load_client
    from chaosmagnet.mqtt.url import parse_broker_url
    from chaosmagnet.nodes.mqtt import MqttLink, MqttNodeBus
    from chaosmagnet.nodes.registry import NodeRecord
    from chaosmagnet.nodes.sources import build_node_sources

    bus = MqttNodeBus(load_client(Path(spec["folder"])), parse_broker_url(spec["url"]))

    def factory(address: str, on_bytes: Callable[[bytes], None], **kw: Any) -> MqttLink:
        return MqttLink(address, on_bytes, bus=bus, **kw)

    latency = _Latency()
    sources = []
    for n in spec["nodes"]:
        record = NodeRecord(
            n["label"], bytes.fromhex(n["node_id"]), bytes.fromhex(n["key"]), "um_feathers3", f"mqtt:{n['label']}",
            True,
            {"adc": {"h": 1.0}, "rng": {"h": 7.0}, "jitter": {"h": 0.2}},
        )  # fmt: skip
        for source in build_node_sources(record, link_factory=factory, boot_store=None):
            latency.wrap(source)
            sources.append(source)
    connections = list({id(s.connection): s.connection for s in sources}.values())  # type: ignore[attr-defined]
    engine = Engine(sources, Config(assessment_enabled=False))
    await engine.start()
    try:
        deadline = time.monotonic() + spec["warmup"] + 30
        while sum(c.verified for c in connections) < len(connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(spec["warmup"])
        frames0 = sum(c.parser.frames_accepted for c in connections)
        sched0 = _schedstat()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        latency.record = True
        await asyncio.sleep(spec["seconds"])
        latency.record = False
        t1 = time.monotonic()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        sched1 = _schedstat()
        frames = sum(c.parser.frames_accepted for c in connections) - frames0
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        lat = sorted(latency.samples)
        arr = sorted(latency.arrivals)
        return {
            "nodes": len(connections),
            "verified": sum(c.verified for c in connections),
            "frames_per_s": round(frames / (t1 - t0), 1),
            "cpu_percent_of_one_core": round(100 * cpu / (t1 - t0), 1),
            # time the host was ready to run but waited for a CPU (the machine is shared)
            "runqueue_wait_percent": round(100 * (sched1 - sched0) / (t1 - t0), 1) if sched0 >= 0 else None,
            "latency_ms": [round(1000 * x, 2) for x in lat[:: max(1, len(lat) // 2000)]],
            "arrival_ms": [round(1000 * x, 2) for x in arr[:: max(1, len(arr) // 2000)]],
            "drops": sum(sum(c.parser.drops.values()) for c in connections),
            "lost_frames": sum(c.parser.lost_frames for c in connections),
            "queue_overflows": sum(c.queue_overflows for c in connections),
            "credited_bits": round(sum(s["credited_bits"] for s in engine.snapshot()["sources"]), 1),
            "bus_drops": dict(bus.drops),
        }
    finally:
        await engine.stop()


def _schedstat() -> float:
    """Seconds this process's main thread has waited on a run queue (Linux), or -1."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return -1.0


def run_host(spec: dict[str, Any]) -> None:
    """One host process: print its figures as JSON."""
    import faulthandler

    faulthandler.register(signal.SIGUSR1)  # a stuck host shows where it is
    print(json.dumps(asyncio.run(_host(spec))), flush=True)


# -- the driver ---------------------------------------------------------------------------
def nodes_benchmark(
    nodes: int = 64,
    hosts: int = 2,
    rate: int = 4096,
    feeders: int = 2,
    seconds: float = 15.0,
    warmup: float = 5.0,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Set up a mesh, run mosquitto, F feeders and M host processes; return the figures."""
    import psutil

    from chaosmagnet.mesh.bench import percentile  # here: the feeder and host children do not need it
    from chaosmagnet.mesh.setup import add_client, init_mesh, mosquitto_command, write_broker_files
    from chaosmagnet.nodes.registry import new_key, new_node_id

    tmp = Path(tempfile.mkdtemp(prefix="chaosmagnet-bench-nodes-"))
    processes: list[subprocess.Popen[str]] = []
    feeder_procs: list[subprocess.Popen[str]] = []
    broker: subprocess.Popen[bytes] | None = None
    try:
        with contextlib.closing(__import__("socket").socket()) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        host_labels = [f"host-{i}" for i in range(hosts)]
        progress(f"mesh init: {hosts} hosts, {nodes} node clients")
        setup = init_mesh(tmp / "mesh", mesh=MESH, hosts=host_labels, collectors=[], port=port, bind="127.0.0.1")
        node_specs = []
        for i in range(nodes):
            label = f"n{i:03d}"
            owner = host_labels[i % hosts]
            add_client(setup, label, "node", rewrite=False, owner=owner)
            node_specs.append({"label": label, "owner": owner, "key": new_key().hex(), "node_id": new_node_id().hex(),
                               "folder": str(setup.clients_dir / label)})  # fmt: skip
        write_broker_files(setup)
        conf = (
            setup.config_file.read_text()
            .replace("log_type notice\n", "")
            .replace("connection_messages true", "connection_messages false")
        )
        setup.config_file.write_text(conf)
        log = open(tmp / "mosquitto.log", "wb")  # noqa: SIM115 (closed with the process)
        broker = subprocess.Popen(mosquitto_command(setup), stdout=log, stderr=subprocess.STDOUT)
        time.sleep(0.5)
        url = f"mqtts://127.0.0.1:{port}"  # loopback by address: no name lookup
        progress(f"{hosts} host processes")
        for label in host_labels:
            spec = {"folder": str(setup.clients_dir / label), "url": url, "seconds": seconds, "warmup": warmup,
                    "nodes": [n for n in node_specs if n["owner"] == label]}  # fmt: skip
            processes.append(_child("host", spec))
        time.sleep(1.0)
        progress(f"{feeders} feeder processes, {nodes} nodes at {rate} B/s each")
        for f in range(feeders):
            spec = {"host": "127.0.0.1", "port": port, "rate": rate, "nodes": node_specs[f::feeders]}
            proc = _child("feeder", spec)
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a feeder did not start")
            feeder_procs.append(proc)
        t_feed = time.monotonic()
        progress(f"measuring for {seconds:g} s after a {warmup:g} s warm-up")
        broker_ps = psutil.Process(broker.pid)
        feeder_ps = [psutil.Process(p.pid) for p in feeder_procs]
        hosts_out = []
        cpu_b0 = sum(broker_ps.cpu_times()[:2])
        cpu_f0 = sum(sum(p.cpu_times()[:2]) for p in feeder_ps)
        t0 = time.monotonic()
        for proc in processes:
            out, _ = proc.communicate(timeout=seconds + warmup + 120)
            hosts_out.append(json.loads(out.strip().splitlines()[-1]))
        elapsed = time.monotonic() - t0
        cpu_b = sum(broker_ps.cpu_times()[:2]) - cpu_b0
        cpu_f = sum(sum(p.cpu_times()[:2]) for p in feeder_ps) - cpu_f0
        feeder_disconnects = 0
        feeder_published = 0
        feeding_s = time.monotonic() - t_feed
        for proc in feeder_procs:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
            for line in out.splitlines():
                if line.startswith("{"):
                    feeder_disconnects += json.loads(line).get("disconnects", 0)
                    feeder_published += json.loads(line).get("published_messages", 0)
        latencies = [x for h in hosts_out for x in h["latency_ms"]]
        arrivals = [x for h in hosts_out for x in h["arrival_ms"]]
        return {
            "nodes": nodes,
            "hosts": hosts,
            "load_average_1min": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
            "rate_bytes_per_s_per_node": rate,
            "feeders": feeders,
            "verified_nodes": sum(h["verified"] for h in hosts_out),
            "frames_per_s": round(sum(h["frames_per_s"] for h in hosts_out), 1),
            "latency_p50_ms": round(percentile(latencies, 0.5), 1),
            "latency_p90_ms": round(percentile(latencies, 0.9), 1),
            "latency_p99_ms": round(percentile(latencies, 0.99), 1),
            "arrival_p50_ms": round(percentile(arrivals, 0.5), 1),
            "arrival_p99_ms": round(percentile(arrivals, 0.99), 1),
            "host_cpu_percent_of_one_core": [h["cpu_percent_of_one_core"] for h in hosts_out],
            "host_runqueue_wait_percent": [h["runqueue_wait_percent"] for h in hosts_out],
            "target_latency_p99_ms": 100.0,
            "target_host_cpu_percent": 50.0,
            "broker_cpu_percent_of_one_core": round(100 * cpu_b / elapsed, 1),
            "feeders_cpu_percent_of_one_core": round(100 * cpu_f / elapsed, 1),
            "drops": sum(h["drops"] for h in hosts_out),
            "lost_frames": sum(h["lost_frames"] for h in hosts_out),
            "queue_overflows": sum(h["queue_overflows"] for h in hosts_out),
            "node_disconnects": feeder_disconnects,
            "feeder_messages_per_s": round(feeder_published / feeding_s, 1),
            "target_messages_per_s": round(nodes / TICK, 1),
            "credited_bits": round(sum(h["credited_bits"] for h in hosts_out), 1),
        }
    finally:
        for proc in processes + feeder_procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if broker is not None and broker.poll() is None:
            broker.terminate()
            broker.wait(10)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _child(role: str, spec: dict[str, Any]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaosmagnet.mesh.node_bench", role],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(spec))
    proc.stdin.close()
    proc.stdin = None
    return proc


if __name__ == "__main__" and sys.argv[1:2] == ["feeder"]:
    run_feeder(json.loads(sys.stdin.read()))
elif __name__ == "__main__" and sys.argv[1:2] == ["host"]:
    run_host(json.loads(sys.stdin.read()))
