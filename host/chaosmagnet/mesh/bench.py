"""Mesh benchmark: M real hosts and N simulated publishers through one mosquitto on loopback.

* ``broker_benchmark``: `mesh init` in a temporary folder, mosquitto, M
  `chaos-host run --mesh` processes (source os-rng only, so their CPU is the
  mesh's, not a busy-looping jitter source's), one `chaos-host collector`, and
  N simulated publishers in this process, each an MQTT client publishing
  signed statuses at a fixed rate (all under one benchmark identity: each
  label is pinned on its own).  Measured over a window after a warm-up:
  messages/s published and stored, latency publisher -> collector database
  (p50/p99 of ``received - sent``), CPU of every process in % of one core.
* ``collector_benchmark``: the collector's capacity: P publishers' statuses,
  signed before the clock starts (signing runs at a few hundred per second
  per core, far below what is measured), published as fast as one MQTT
  connection goes; status rows/s from the first row stored to the last, with
  every signature verified (by ``--verify-workers`` processes).
* ``store_benchmark``: the collector's SQLite path alone (status rows/s).
* ``verify_benchmark``: signing and verifying one status (ML-DSA-65).

Identities are made from a pool the benchmark credits itself with OS-RNG
bytes (labelled ``bench``); everything lives in a temporary folder.  Figures
only: nothing is asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from chaosmagnet.mesh.collector.store import FleetStore
from chaosmagnet.mesh.keys import MeshKeys, load_mesh_keys
from chaosmagnet.mesh.messages import MessageSigner, MessageVerifier
from chaosmagnet.mesh.setup import init_mesh, mosquitto_command
from chaosmagnet.minting.identity import create_identity
from chaosmagnet.minting.sealing import ScryptParams, Sealer
from chaosmagnet.minting.seeds import PoolSeedSource
from chaosmagnet.mqtt.topics import host_topic
from chaosmagnet.pool import EntropyPool

Progress = Callable[[str], None]
_CHEAP_SCRYPT = ScryptParams(n=2**10, r=8, p=1)  # throwaway benchmark identities only
MESH = "bench"


class _AlwaysFull(PoolSeedSource):
    """A pool credited from the OS RNG before each draw, by two names (the key quorum is 2)."""

    def __init__(self) -> None:
        super().__init__(EntropyPool(), {name: {"state": "ok", "h_assessed": 8.0} for name in ("bench", "bench-b")})

    async def draw(self, n_bytes: int, **kwargs: Any):  # type: ignore[override]
        half = self.pool.capacity_bits / 2
        self.pool.absorb("bench", os.urandom(64), half)
        self.pool.absorb("bench-b", os.urandom(64), half)
        return await super().draw(n_bytes, **kwargs)


async def _make_identity(home: Path) -> MeshKeys:
    keys = home / "keys"
    await create_identity(keys, _AlwaysFull(), Sealer("bench-identity-only", _CHEAP_SCRYPT), timeout=10.0)
    return load_mesh_keys(keys)


def _stop_processes(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """Stop a benchmark's processes: SIGINT (SIGTERM for the broker), then kill after 15 s."""
    for name, process in processes.items():
        if process.poll() is None:
            process.send_signal(signal.SIGINT if name != "broker" else signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _status_body(sources: int = 4) -> dict[str, Any]:
    return {
        "state": "online",
        "health": "ok",
        "unhealthy": [],
        "uptime": 12.5,
        "sources": [
            {
                "name": f"source-{i}",
                "kind": "node",
                "state": "ok",
                "reason": "",
                "conditioned": False,
                "samples": 123456,
                "rate": 4096.0,
                "h_min": 3.2,
                "h_assessed": None,
                "credit_h": 3.0,
                "credited_bits": 370368.0,
                "rct_failures": 0,
                "apt_failures": 0,
            }
            for i in range(sources)
        ],
        "pool": {"credited_bits": 512.0, "capacity_bits": 512, "fill": 1.0, "raw_bytes": 10**6, "drawn_bits": 0.0},
        "mesh": {"peers": [], "seeds_sent": 0, "seeds_received": 0, "drops": {}},
    }


def store_benchmark(rows: int = 20_000, batch: int = 500) -> dict[str, Any]:
    """Status rows/s through FleetStore (4 sources per status, one transaction per batch)."""
    body = _status_body()
    with tempfile.TemporaryDirectory(prefix="chaosmagnet-bench-") as tmp:
        store = FleetStore(Path(tmp) / "fleet.db")
        started = time.perf_counter()
        for i in range(rows):
            store.add_status(f"pub-{i % 256}", "f" * 64, 1.0 + i, 1.0 + i, body)
            if (i + 1) % batch == 0:
                store.flush()
        store.flush()
        elapsed = time.perf_counter() - started
        store.close()
    return {
        "status_rows_per_s": round(rows / elapsed),
        "source_rows_per_s": round(4 * rows / elapsed),
        "rows": rows,
        "batch": batch,
        "target_status_rows_per_s": 5000,
    }


def verify_benchmark(keys: MeshKeys, count: int = 300) -> dict[str, Any]:
    """Signing and verifying a status message (ML-DSA-65 audit key), per second."""
    signer = MessageSigner(MESH, "pub-0", keys)
    topic = host_topic(MESH, "pub-0", "status")
    verifier = MessageVerifier(MESH, None)
    identity_topic = host_topic(MESH, "pub-0", "identity")
    verifier.feed(identity_topic, signer.sign(identity_topic, "identity", signer.identity_body()))
    body = _status_body()
    started = time.perf_counter()
    messages = [signer.sign(topic, "status", body) for _ in range(count)]
    signed = time.perf_counter() - started
    started = time.perf_counter()
    for message in messages:
        verifier.feed(topic, message)
    verified = time.perf_counter() - started
    return {
        "sign_per_s": round(count / signed),
        "verify_per_s": round(count / verified),
        "status_message_bytes": len(messages[0]),
        "accepted": verifier.accepted["status"],
    }


def collector_benchmark(
    publishers: int = 64,
    per_publisher: int = 80,
    verify_workers: int | None = None,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """Capacity of one collector: publishers x per_publisher pre-signed statuses, the first half
    in a burst while the collector runs, the second half drained from the broker (see the docs)."""
    return asyncio.run(_collector_benchmark(publishers, per_publisher, verify_workers, progress))


async def _collector_benchmark(
    n_publishers: int, per_publisher: int, verify_workers: int | None, progress: Progress
) -> dict[str, Any]:
    from chaosmagnet.mesh.collector.service import default_verify_workers
    from chaosmagnet.mqtt.client import mqtt_client
    from chaosmagnet.mqtt.url import parse_broker_url

    workers = default_verify_workers() if verify_workers is None else verify_workers
    tmp = Path(tempfile.mkdtemp(prefix="chaosmagnet-bench-collector-"))
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        port = _free_port()
        labels = [f"pub-{i}" for i in range(n_publishers)]
        setup = init_mesh(tmp / "mesh", mesh=MESH, hosts=labels, collectors=["collector"], port=port, bind="127.0.0.1")
        url = f"mqtts://127.0.0.1:{port}"
        # the drain phase's backlog waits in the broker: no per-client queue limit (default 1,000)
        conf = setup.config_file.read_text()
        setup.config_file.write_text(conf.replace("persistence false\n", "persistence false\nmax_queued_messages 0\n", 1))
        processes["broker"] = subprocess.Popen(
            mosquitto_command(setup), stdout=subprocess.DEVNULL, stderr=open(tmp / "mosquitto.log", "wb")  # noqa: SIM115
        )
        progress(f"signing {n_publishers} x {per_publisher} statuses ahead of the clock")
        shared = await _make_identity(tmp / "publishers")
        body = _status_body()
        identities: dict[str, bytes] = {}
        statuses: dict[str, list[bytes]] = {}
        for label in labels:
            signer = MessageSigner(MESH, label, shared)
            topic = host_topic(MESH, label, "identity")
            identities[label] = signer.sign(topic, "identity", signer.identity_body())
            topic = host_topic(MESH, label, "status")
            statuses[label] = [signer.sign(topic, "status", body) for _ in range(per_publisher)]
        total = n_publishers * per_publisher
        collector_home = tmp / "collector"
        shutil.copytree(setup.clients_dir / "collector", collector_home / "mesh" / "client")
        db = tmp / "fleet.db"
        env = {k: v for k, v in os.environ.items() if k != "CHAOS_PASSPHRASE"}
        processes["collector"] = subprocess.Popen(
            [sys.executable, "-m", "chaosmagnet", "collector", "--mesh", url, "--db", str(db),
             "--listen", f"127.0.0.1:{_free_port()}", "--verify-workers", str(workers)],
            env={**env, "CHAOS_HOME": str(collector_home)}, cwd=collector_home,
            stdout=subprocess.DEVNULL, stderr=open(tmp / "collector.log", "wb"),  # noqa: SIM115
        )  # fmt: skip
        for _ in range(600):  # the collector is up once its database has its tables
            with contextlib.suppress(sqlite3.Error):
                probe = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                try:
                    probe.execute("SELECT count(*) FROM status").fetchone()
                    break
                finally:
                    probe.close()
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)  # subscribed
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        progress(f"publishing {total} statuses; collector with {workers} verify worker(s)")
        broker_url = parse_broker_url(url)
        async with contextlib.AsyncExitStack() as stack:
            clients = {label: await stack.enter_async_context(mqtt_client(setup.client(label), broker_url))
                       for label in labels}  # fmt: skip
            for label, client in clients.items():
                await client.publish(host_topic(MESH, label, "identity"), identities[label], qos=1, retain=True)
            while reader.execute("SELECT count(*) FROM hosts").fetchone()[0] < n_publishers:
                await asyncio.sleep(0.1)
            procs = {name: psutil.Process(p.pid) for name, p in processes.items()}
            workers_ps = procs["collector"].children(recursive=True)

            async def burst(label: str, statuses: list[bytes]) -> None:
                topic = host_topic(MESH, label, "status")
                for payload in statuses[:-1]:
                    await clients[label].publish(topic, payload, qos=0)
                # the last with QoS 1: its PUBACK says the broker has read everything before it
                await clients[label].publish(topic, statuses[-1], qos=1)

            async def until_stored(total: int) -> tuple[int, float]:
                count, last = 0, time.monotonic()
                while count < total and time.monotonic() - last < 2.0:  # until all are stored or none comes
                    now_count = reader.execute("SELECT count(*) FROM status").fetchone()[0]
                    if now_count != count:
                        count, last = now_count, time.monotonic()
                    await asyncio.sleep(0.01)
                return count, last

            def cpu_now() -> tuple[dict[str, float], float]:
                return {name: _cpu(p) for name, p in procs.items()}, sum(_cpu(w) for w in workers_ps)

            # 1. burst: the publishers (in this process) publish while the collector stores
            half = per_publisher // 2
            cpu0, wcpu0 = cpu_now()
            started = time.monotonic()
            await asyncio.gather(*(burst(label, statuses[label][:half]) for label in labels))
            published = time.monotonic()
            count, last = await until_stored(n_publishers * half)
            cpu1, wcpu1 = cpu_now()
            burst_figures = _capacity_figures(count, n_publishers * half, last - started, cpu0, cpu1, wcpu1 - wcpu0)
            burst_figures["publish_seconds"] = round(published - started, 2)
            # 2. drain: a backlog waits in the broker (the collector paused), then the collector
            #    alone is measured: its capacity, without the publishers' CPU beside it
            progress("the collector paused; publishing the backlog")
            procs["collector"].suspend()
            try:
                await asyncio.gather(*(burst(label, statuses[label][half:]) for label in labels))
            finally:
                procs["collector"].resume()
            progress("draining")
            cpu0, wcpu0 = cpu_now()
            started = time.monotonic()
            drained, last = await until_stored(total)
            cpu1, wcpu1 = cpu_now()
            drain_figures = _capacity_figures(drained - count, total - count, last - started, cpu0, cpu1, wcpu1 - wcpu0)
        reader.close()
        return {
            "publishers": n_publishers,
            "statuses": total,
            "status_message_bytes": len(statuses[labels[0]][0]),
            "verify_workers": workers,
            "burst": burst_figures,
            "drain": drain_figures,
            "status_rows_per_s": drain_figures["status_rows_per_s"],
            "target_status_rows_per_s": 5000,
            "cpu_count": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2),
        }
    finally:
        _stop_processes(processes)
        shutil.rmtree(tmp, ignore_errors=True)


def _capacity_figures(
    stored: int, sent: int, seconds: float, cpu0: dict[str, float], cpu1: dict[str, float], workers_cpu: float
) -> dict[str, Any]:
    """Rows/s and CPU of one phase of the collector benchmark."""
    def share(cpu_seconds: float) -> float:
        return round(100 * cpu_seconds / seconds, 1) if seconds > 0 else float("nan")

    return {
        "statuses": sent,
        "stored": stored,
        "dropped_by_broker": sent - stored,  # beyond mosquitto's per-client queue
        "seconds": round(seconds, 2),
        "status_rows_per_s": round(stored / seconds, 1) if seconds > 0 else float("nan"),
        "cpu_percent_of_one_core": {
            "broker": share(cpu1["broker"] - cpu0["broker"]),
            "collector (main)": share(cpu1["collector"] - cpu0["collector"]),
            "collector (verify workers)": share(workers_cpu),
        },
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
        return float(times.user + times.system)
    except psutil.Error:
        return float("nan")


def _cpu_tree(process: psutil.Process) -> float:
    """CPU seconds of a process and its children (the collector's verify workers)."""
    try:
        return _cpu(process) + sum(_cpu(child) for child in process.children(recursive=True))
    except psutil.Error:
        return float("nan")


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of values by rank (nan when there are none); both mesh benchmarks use it."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def broker_benchmark(
    hosts: int = 2,
    publishers: int = 32,
    rate: float = 5.0,
    seconds: float = 20.0,
    warmup: float = 8.0,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """M hosts, N publishers at ``rate`` statuses/s each, one collector, one mosquitto; figures."""
    return asyncio.run(_broker_benchmark(hosts, publishers, rate, seconds, warmup, progress))


async def _broker_benchmark(
    n_hosts: int, n_publishers: int, rate: float, seconds: float, warmup: float, progress: Progress
) -> dict[str, Any]:
    import aiomqtt

    from chaosmagnet.mqtt.client import mqtt_client
    from chaosmagnet.mqtt.url import parse_broker_url

    tmp = Path(tempfile.mkdtemp(prefix="chaosmagnet-bench-mesh-"))
    processes: dict[str, subprocess.Popen[bytes]] = {}
    tasks: list[asyncio.Task[None]] = []
    try:
        port = _free_port()
        host_labels = [f"host-{i}" for i in range(n_hosts)]
        pub_labels = [f"pub-{i}" for i in range(n_publishers)]
        progress(f"mesh init: {n_hosts} hosts, {n_publishers} publishers, 1 collector")
        setup = init_mesh(
            tmp / "mesh",
            mesh=MESH,
            hosts=host_labels + pub_labels,
            collectors=["collector"],
            port=port,
            bind="127.0.0.1",
        )
        url = f"mqtts://127.0.0.1:{port}"  # loopback by address: no name lookup
        log = open(tmp / "mosquitto.log", "wb")  # noqa: SIM115 (closed in finally)
        processes["broker"] = subprocess.Popen(mosquitto_command(setup), stdout=log, stderr=subprocess.STDOUT)
        progress("identities")
        shared = await _make_identity(tmp / "publishers")
        verify = verify_benchmark(shared)
        env_base = {k: v for k, v in os.environ.items() if k != "CHAOS_PASSPHRASE"}
        python = [sys.executable, "-m", "chaosmagnet"]
        for label in host_labels:
            home = tmp / label
            await _make_identity(home)
            shutil.copytree(setup.clients_dir / label, home / "mesh" / "client")
            (home / "chaos.toml").write_text("[mesh]\nstatus_interval = 1.0\nseed_interval = 1.0\n")
            env = {**env_base, "CHAOS_HOME": str(home), "CHAOS_CONTROL_SOCKET": str(home / "control.sock")}
            processes[label] = subprocess.Popen(
                python + ["run", "--mesh", url, "--source", "os-rng", "--json"],
                env=env,
                cwd=home,
                stdout=subprocess.DEVNULL,
                stderr=open(home / "run.log", "wb"),  # noqa: SIM115
            )
        collector_home = tmp / "collector"
        shutil.copytree(setup.clients_dir / "collector", collector_home / "mesh" / "client")
        db = tmp / "fleet.db"
        processes["collector"] = subprocess.Popen(
            python + ["collector", "--mesh", url, "--db", str(db), "--listen", f"127.0.0.1:{_free_port()}"],
            env={**env_base, "CHAOS_HOME": str(collector_home)},
            cwd=collector_home,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / "collector.log", "wb"),  # noqa: SIM115
        )
        broker_url = parse_broker_url(url)
        sent = {"count": 0}
        stop = asyncio.Event()

        async def publisher(label: str) -> None:
            signer = MessageSigner(MESH, label, shared)
            status_topic = host_topic(MESH, label, "status")
            body = _status_body()
            while not stop.is_set():
                try:
                    async with mqtt_client(setup.client(label), broker_url) as c:
                        identity_topic = host_topic(MESH, label, "identity")
                        await c.publish(
                            identity_topic,
                            signer.sign(identity_topic, "identity", signer.identity_body()),
                            qos=1,
                            retain=True,
                        )
                        # publishers start out of phase, as independent machines would
                        next_at = time.monotonic() + random.uniform(0.0, 1.0 / rate)
                        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                        while not stop.is_set():
                            await c.publish(status_topic, signer.sign(status_topic, "status", body), qos=0, retain=True)
                            sent["count"] += 1
                            next_at += 1.0 / rate
                            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                except aiomqtt.MqttError:
                    await asyncio.sleep(0.5)

        await asyncio.sleep(1.0)  # the broker is up
        progress(f"publishers running; warm-up {warmup:g} s")
        tasks += [asyncio.create_task(publisher(label)) for label in pub_labels]
        await asyncio.sleep(warmup)
        for _ in range(600):  # the collector may start slowly on a busy machine
            with contextlib.suppress(sqlite3.Error):
                probe = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                try:
                    probe.execute("SELECT count(*) FROM status").fetchone()
                    break
                finally:
                    probe.close()
            await asyncio.sleep(0.1)
        procs = {name: psutil.Process(p.pid) for name, p in processes.items()}
        me = psutil.Process()
        cpu0 = {name: _cpu_tree(p) for name, p in procs.items()}
        me0 = _cpu(me)
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        rows0 = reader.execute("SELECT count(*) FROM status").fetchone()[0]
        sent0 = sent["count"]
        t0 = time.time()
        progress(f"measuring {seconds:g} s")
        await asyncio.sleep(seconds)
        t1 = time.time()
        sent1 = sent["count"]
        cpu1 = {name: _cpu_tree(p) for name, p in procs.items()}
        me1 = _cpu(me)
        await asyncio.sleep(1.0)  # the collector flushes every 0.2 s
        rows1 = reader.execute("SELECT count(*) FROM status WHERE received <= ?", (t1,)).fetchone()[0]
        latencies = [
            (received - sent_at) * 1e3
            for received, sent_at in reader.execute(
                "SELECT received, sent FROM status WHERE label LIKE 'pub-%' AND received BETWEEN ? AND ?", (t0, t1)
            )
        ]
        host_rows = reader.execute(
            "SELECT count(*) FROM status WHERE label LIKE 'host-%' AND received BETWEEN ? AND ?", (t0, t1)
        ).fetchone()[0]
        seeds = reader.execute("SELECT label, last_status FROM hosts WHERE label LIKE 'host-%'").fetchall()
        reader.close()
        stop.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        elapsed = t1 - t0
        import json

        received_seeds = {label: json.loads(last)["mesh"]["seeds_received"] if last else None for label, last in seeds}
        cpu = {name: round(100 * (cpu1[name] - cpu0[name]) / elapsed, 1) for name in procs}
        cpu["publishers (this process)"] = round(100 * (me1 - me0) / elapsed, 1)
        return {
            "hosts": n_hosts,
            "publishers": n_publishers,
            "rate_per_publisher": rate,
            "seconds": round(elapsed, 1),
            "published_per_s": round((sent1 - sent0) / elapsed, 1),
            "stored_status_rows_per_s": round((rows1 - rows0) / elapsed, 1),
            "host_status_rows_in_window": host_rows,
            "latency_ms_p50": round(percentile(latencies, 0.50), 1),
            "latency_ms_p99": round(percentile(latencies, 0.99), 1),
            "latency_samples": len(latencies),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "cpu_count": os.cpu_count(),
            "peer_seeds_received_per_host": received_seeds,
            "cpu_percent_of_one_core": cpu,
            "sign_verify": verify,
        }
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        _stop_processes(processes)
        shutil.rmtree(tmp, ignore_errors=True)
