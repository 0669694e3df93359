"""The collector's verify-and-store path and the mesh CLI's refusals, without a broker."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from chaosmagnet.mesh.collector.service import Collector
from chaosmagnet.mesh.collector.store import FleetStore
from chaosmagnet.mesh.collector.web import render_fleet_metrics
from chaosmagnet.mesh.keys import MeshKeys
from chaosmagnet.mesh.messages import FINAL_COUNTER, MessageSigner
from chaosmagnet.mqtt.credentials import ClientCredentials
from chaosmagnet.mqtt.topics import host_topic
from chaosmagnet.mqtt.url import parse_broker_url
from mesh_helpers import MESH, env_for, make_host_home


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MeshKeys]:
    root = tmp_path_factory.mktemp("collector-homes")
    return {label: make_host_home(root / label) for label in ("alice", "mallory")}


def collector_for(db: Path, retention: float = 3600.0) -> Collector:
    credentials = ClientCredentials(db.parent, MESH, "collector", "collector", "collector", "unused")
    return Collector(credentials, parse_broker_url("mqtts://localhost:1"), FleetStore(db, retention_seconds=retention))


def status(sources: list[tuple[str, str]], state: str = "online") -> dict[str, object]:
    return {
        "state": state,
        "health": "ok",
        "sources": [
            {
                "name": n,
                "state": s,
                "rate": 10.0,
                "h_min": 1.0,
                "credit_h": 0.5,
                "credited_bits": 5.0,
                "rct_failures": 0,
                "apt_failures": 0,
            }
            for n, s in sources
        ],
        "pool": {"credited_bits": 100.0, "capacity_bits": 512, "fill": 0.2, "raw_bytes": 10, "drawn_bits": 0.0},
        "mesh": {"seeds_sent": 1, "seeds_received": 2},
    }


def publish(collector: Collector, signer: MessageSigner, channel: str, body: object, at: float, **kw: int) -> None:
    topic = host_topic(MESH, signer.label, channel)
    kind = {"identity": "identity", "status": "status", "events": "event"}[channel]
    collector.receive(topic, signer.sign(topic, kind, body, **kw), at)


def test_stores_verified_status_and_raises_alerts(keys: dict[str, MeshKeys], tmp_path: Path) -> None:
    collector = collector_for(tmp_path / "fleet.db")
    alice = MessageSigner(MESH, "alice", keys["alice"])
    publish(collector, alice, "status", status([("a", "ok")]), 1000.0)  # before the identity: dropped
    publish(collector, alice, "identity", alice.identity_body(), 1000.5)
    publish(collector, alice, "status", status([("a", "ok"), ("b", "ok")]), 1001.0)
    publish(collector, alice, "status", status([("a", "quarantined"), ("b", "ok")]), 1002.0)
    publish(collector, alice, "status", status([("a", "failed"), ("b", "ok")]), 1003.0)
    publish(collector, alice, "events", {"event": "health_failure", "source": "a", "test": "rct"}, 1003.5)
    will = {"state": "offline", "reason": "connection lost"}
    publish(collector, alice, "status", will, 1004.0, counter=FINAL_COUNTER)
    forged = json.loads(alice.sign(host_topic(MESH, "alice", "status"), "status", status([("a", "ok")])))
    forged["body"]["health"] = "perfect"
    collector.receive(host_topic(MESH, "alice", "status"), json.dumps(forged).encode(), 1005.0)
    collector.store.flush()
    assert collector.verifier.drops == {"unknown-sender": 1, "bad-signature": 1}
    fleet = collector.fleet()
    (host,) = fleet["hosts"]
    assert host["label"] == "alice" and host["state"] == "offline" and host["shown_state"] == "offline"
    assert [s["name"] for s in host["sources"]] == ["a", "b"]  # the will keeps the last known sources
    kinds = [(a["kind"], a["source"]) for a in reversed(fleet["alerts"])]
    assert kinds == [("source-quarantined", "a"), ("source-failed", "a"), ("host-offline", None)]
    assert fleet["events"][0]["event"] == "health_failure"
    db = sqlite3.connect(tmp_path / "fleet.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT count(*) FROM status").fetchone()[0] == 4
    assert db.execute("SELECT count(*) FROM source_status").fetchone()[0] == 6
    text = render_fleet_metrics(fleet)
    assert 'chaosmagnet_fleet_messages_dropped_total{reason="bad-signature"} 1' in text
    assert 'chaosmagnet_fleet_host_up{host="alice"} 0' in text
    collector.store.close()


def test_verify_workers_give_the_same_verdicts_in_arrival_order(keys: dict[str, MeshKeys], tmp_path: Path) -> None:
    """Signatures checked in a worker process: forged, replayed, early and changed-identity messages
    are dropped exactly as when checked in the collector, and rows are stored in arrival order."""
    import asyncio

    credentials = ClientCredentials(tmp_path, MESH, "collector", "collector", "collector", "unused")
    collector = Collector(
        credentials, parse_broker_url("mqtts://127.0.0.1:1"), FleetStore(tmp_path / "fleet.db"), verify_workers=1
    )
    alice = MessageSigner(MESH, "alice", keys["alice"])
    impostor = MessageSigner(MESH, "alice", keys["mallory"])  # mallory's key under alice's label
    topic = host_topic(MESH, "alice", "status")
    identity_topic = host_topic(MESH, "alice", "identity")
    early = alice.sign(topic, "status", status([("a", "ok")]))
    messages = [(topic, early), (identity_topic, alice.sign(identity_topic, "identity", alice.identity_body()))]
    signed = [alice.sign(topic, "status", status([("a", "ok")], state=f"s{i}")) for i in range(40)]
    forged = json.loads(signed[5])
    forged["body"]["health"] = "perfect"
    messages += [(topic, m) for m in signed[:20]]
    messages += [(topic, json.dumps(forged).encode()), (topic, signed[3])]  # forged, replayed
    messages += [(identity_topic, impostor.sign(identity_topic, "identity", impostor.identity_body()))]
    messages += [(topic, impostor.sign(topic, "status", status([("a", "ok")])))]
    messages += [(topic, m) for m in signed[20:]]

    async def run() -> None:
        await collector.start(connect=False)
        for i, (t, payload) in enumerate(messages):
            collector._on_message(t, payload)  # what the MQTT connection calls per message
            if i % 7 == 0:
                await asyncio.sleep(0)
        for _ in range(600):
            if collector.received == len(messages):
                break
            await asyncio.sleep(0.05)
        assert collector.received == len(messages)  # ... before stop(), which checks the rest itself
        collector.store.flush()
        await collector.stop()

    asyncio.run(run())
    assert collector.received == len(messages)
    assert collector.verifier.drops == {
        "unknown-sender": 1,
        "bad-signature": 2,  # the forgery, and the impostor's status (signed by another key)
        "replay": 1,
        "identity-changed": 1,
    }
    db = sqlite3.connect(tmp_path / "fleet.db")
    states = [row[0] for row in db.execute("SELECT state FROM status ORDER BY rowid")]
    assert states == [f"s{i}" for i in range(40)]


def test_a_lost_verify_worker_loses_no_message(keys: dict[str, MeshKeys], tmp_path: Path) -> None:
    """A verify worker killed mid-run: its chunk and everything after are checked in the
    collector itself, in order; nothing is lost or stored twice."""
    import asyncio

    credentials = ClientCredentials(tmp_path, MESH, "collector", "collector", "collector", "unused")
    collector = Collector(
        credentials, parse_broker_url("mqtts://127.0.0.1:1"), FleetStore(tmp_path / "fleet.db"), verify_workers=1
    )
    alice = MessageSigner(MESH, "alice", keys["alice"])
    topic = host_topic(MESH, "alice", "status")
    identity_topic = host_topic(MESH, "alice", "identity")
    signed = [alice.sign(topic, "status", status([("a", "ok")], state=f"s{i}")) for i in range(30)]

    async def run() -> None:
        await collector.start(connect=False)
        collector._on_message(identity_topic, alice.sign(identity_topic, "identity", alice.identity_body()))
        for payload in signed[:10]:
            collector._on_message(topic, payload)
        assert collector._pool is not None
        collector._pool._workers[0].process.kill()  # dies with or without a chunk in hand
        for payload in signed[10:]:
            collector._on_message(topic, payload)
        for _ in range(600):
            if collector.received == 31:
                break
            await asyncio.sleep(0.05)
        assert collector.received == 31 and not collector._pool.alive()
        collector.store.flush()
        await collector.stop()

    asyncio.run(run())
    assert collector.verifier.drops == {}
    db = sqlite3.connect(tmp_path / "fleet.db")
    assert [row[0] for row in db.execute("SELECT state FROM status ORDER BY rowid")] == [f"s{i}" for i in range(30)]


def test_retention_purges_old_rows(keys: dict[str, MeshKeys], tmp_path: Path) -> None:
    collector = collector_for(tmp_path / "fleet.db", retention=100.0)
    alice = MessageSigner(MESH, "alice", keys["alice"])
    publish(collector, alice, "identity", alice.identity_body(), 1000.0)
    for t in (1000.0, 1050.0, 1200.0):
        publish(collector, alice, "status", status([("a", "ok")]), t)
    collector.store.flush()
    removed = collector.store.purge(now=1210.0)
    assert removed == 4  # two status rows and their two source rows
    assert collector.store.row_counts()["status"] == 1
    collector.store.close()


def test_pins_survive_a_restart_and_forget_releases_them(keys: dict[str, MeshKeys], tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    first = collector_for(db)
    alice = MessageSigner(MESH, "alice", keys["alice"])
    publish(first, alice, "identity", alice.identity_body(), 1000.0)
    first.store.close()
    second = collector_for(db)
    impostor = MessageSigner(MESH, "alice", keys["mallory"])
    publish(second, impostor, "identity", impostor.identity_body(), 1001.0)
    assert second.verifier.drops == {"identity-changed": 1}
    assert second.forget("alice")
    publish(second, impostor, "identity", impostor.identity_body(), 1002.0)
    second.store.flush()
    assert second.store.pins() == {"alice": keys["mallory"].identity.fingerprint}
    second.store.close()


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaosmagnet", *args],
        env=env_for(home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--mesh", "mqtt://localhost:1883", "--seconds", "1", "--source", "os-rng"], "TLS only"),
        (["run", "--mesh-client", "x", "--seconds", "1", "--source", "os-rng"], "needs --mesh"),
        (["run", "--mesh", "mqtts://localhost:1", "--seconds", "1", "--source", "os-rng"], "client.json not found"),
        (["collector", "--mesh", "mqtts://localhost:1", "--db", "f.db", "--retention", "soon"], "--retention must be"),
        (["collector", "--mesh", "mqtts://localhost:1", "--db", "f.db", "--listen", "0.0.0.0:9"], "--allow-remote"),
        (["collector", "--mesh", "mqtts://localhost:1", "--db", "f.db"], "client.json not found"),
        (["mesh", "init", "--host", "Bad Name"], "client label"),
        (["mesh", "init", "--host", "a", "--host", "a"], "its own label"),
        (["mesh", "broker"], "mesh init"),
    ],
)
def test_cli_refusals_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_cli(*args, home=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_collector_refuses_a_damaged_database(tmp_path: Path) -> None:
    client = tmp_path / "mesh" / "client"
    client.mkdir(parents=True)
    (client / "client.json").write_text(
        json.dumps(
            {
                "format": "chaosmagnet.mesh-client/1",
                "mesh": "lab",
                "label": "collector",
                "role": "collector",
                "username": "collector",
                "password": "x" * 20,
            }
        )
    )
    (client / "ca.pem").write_text("not used before the database opens")
    (tmp_path / "fleet.db").write_bytes(b"this is not a database" * 100)
    result = run_cli("collector", "--mesh", "mqtts://localhost:1", "--db", "fleet.db", home=tmp_path)
    assert result.returncode == 2 and "cannot open the collector database" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    missing = run_cli("collector", "--mesh", "mqtts://localhost:1", "--db", "nowhere/fleet.db", home=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_mesh_init_twice_and_add(tmp_path: Path) -> None:
    first = run_cli("mesh", "init", "--name", "lab", "--host", "alice", "--port", "18999", home=tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_cli("mesh", "init", "--name", "lab", "--host", "bob", home=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    added = run_cli("mesh", "add", "bob", home=tmp_path)
    assert added.returncode == 0, added.stderr
    acl = (tmp_path / "mesh" / "broker" / "acl").read_text()
    assert "topic write chaosmagnet/lab/host/bob/#" in acl and "topic write chaosmagnet/lab/host/alice/#" in acl
    passwd = (tmp_path / "mesh" / "broker" / "passwd").read_text().splitlines()
    assert [line.split(":")[0] for line in passwd] == ["alice", "bob", "collector"]
    for path in (tmp_path / "mesh").rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o077 == 0, path


def test_mesh_broker_command_runs_mosquitto_in_the_foreground(tmp_path: Path) -> None:
    import socket
    import time

    from chaosmagnet.mqtt.credentials import load_client
    from mesh_helpers import free_port

    port = free_port()
    made = run_cli(
        "mesh", "init", "--name", "lab", "--host", "alice", "--port", str(port), "--bind", "127.0.0.1", home=tmp_path
    )
    assert made.returncode == 0, made.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "chaosmagnet", "mesh", "broker"],
        env=env_for(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        alice = load_client(tmp_path / "mesh" / "clients" / "alice")
        sent = subprocess.run(
            [
                "mosquitto_pub",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "--cafile",
                str(alice.ca_file),
                "--cert",
                str(alice.cert_file),
                "--key",
                str(alice.key_file),
                "-u",
                "alice",
                "-P",
                alice.password,
                "-t",
                "chaosmagnet/lab/host/alice/events",
                "-m",
                "hello",
            ],
            capture_output=True,
            timeout=30,
        )
        assert sent.returncode == 0, sent.stderr
    finally:
        process.terminate()  # the command exec'd mosquitto: this is mosquitto's own process id
        output = process.communicate(timeout=20)[0].decode(errors="replace")
    assert "mosquitto on 127.0.0.1:" in output and "TLS only" in output
    assert "u'alice'" in output  # mosquitto logged alice's connection
