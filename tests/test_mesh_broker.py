"""The mesh against a real mosquitto on loopback: passwords, certificates, the ACL, two host agents.

One broker per module, configured by `init_mesh` with fresh certificates on a
free port; the hosts are real HostAgents around real Engines.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaosmagnet.engine import Engine
from chaosmagnet.mesh.agent import PEER_SOURCE_PREFIX, AgentSettings, HostAgent
from chaosmagnet.mesh.keys import MeshKeys
from chaosmagnet.mesh.messages import MessageSigner
from chaosmagnet.mqtt.client import mqtt_client
from chaosmagnet.mqtt.topics import host_topic
from chaosmagnet.mqtt.url import parse_broker_url
from mesh_helpers import MESH, Broker, make_host_home, start_broker
from source_helpers import ScriptedSource, uniform

HOSTS = ["alice", "bob", "mallory"]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    root = tmp_path_factory.mktemp("broker")
    running = start_broker(root, HOSTS, ["collector"])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MeshKeys]:
    root = tmp_path_factory.mktemp("homes")
    return {label: make_host_home(root / label) for label in HOSTS}


async def collect(broker: Broker, topic: str, seconds: float, action=None) -> list[tuple[str, bytes]]:
    """Everything the collector client sees on ``topic`` while ``action`` runs, plus ``seconds``."""
    got: list[tuple[str, bytes]] = []
    async with mqtt_client(broker.client("collector"), parse_broker_url(broker.url)) as client:
        await client.subscribe(topic, qos=1)

        async def reader() -> None:
            async for message in client.messages:
                got.append((str(message.topic), bytes(message.payload)))  # type: ignore[arg-type]

        task = asyncio.create_task(reader())
        if action is not None:
            await action()
        await asyncio.sleep(seconds)
        task.cancel()
    return got


def test_broker_accepts_the_password_file_we_wrote(broker: Broker) -> None:
    async def go() -> None:
        async with mqtt_client(broker.client("alice"), parse_broker_url(broker.url)) as client:
            await client.publish(host_topic(MESH, "alice", "events"), b"x", qos=1)

    asyncio.run(go())


def test_wrong_password_and_missing_certificate_are_refused(broker: Broker, tmp_path: Path) -> None:
    alice = broker.client("alice")
    base = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "--cafile", str(alice.ca_file)]
    cert = ["--cert", str(alice.cert_file), "--key", str(alice.key_file)]
    message = ["-t", host_topic(MESH, "alice", "events"), "-m", "x"]
    ok = subprocess.run(base + cert + ["-u", "alice", "-P", alice.password] + message, capture_output=True)
    assert ok.returncode == 0, ok.stderr
    wrong = subprocess.run(base + cert + ["-u", "alice", "-P", "not-the-password"] + message, capture_output=True)
    assert wrong.returncode != 0 and b"not authorised" in wrong.stderr.lower().replace(b"authorized", b"authorised")
    bob = broker.client("bob")  # alice's certificate with bob's name and password still needs bob's password
    nocert = subprocess.run(base + ["-u", "alice", "-P", alice.password] + message, capture_output=True, timeout=20)
    assert nocert.returncode != 0
    assert bob.password != alice.password
    plain = subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", "alice", "-P", alice.password] + message,
        capture_output=True,
        timeout=20,
    )
    assert plain.returncode != 0  # no TLS, no connection


def test_acl_refuses_a_host_publishing_as_another(broker: Broker) -> None:
    """mosquitto itself drops alice's publish under bob's prefix (MQTT 5: 'not authorized')."""
    alice = broker.client("alice")
    base = [
        "mosquitto_pub",
        "-h",
        "127.0.0.1",
        "-p",
        str(broker.port),
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
        "-V",
        "mqttv5",
        "-q",
        "1",
        "-d",
    ]

    async def publish_both() -> None:
        for topic in (host_topic(MESH, "bob", "status"), host_topic(MESH, "alice", "status")):
            await asyncio.to_thread(
                subprocess.run, base + ["-t", topic, "-m", f"from alice to {topic}"], capture_output=True
            )

    seen = asyncio.run(collect(broker, f"chaosmagnet/{MESH}/host/+/status", 1.0, publish_both))
    topics = [t for t, p in seen if p.startswith(b"from alice")]
    assert topics == [host_topic(MESH, "alice", "status")]
    refused = subprocess.run(
        base + ["-t", host_topic(MESH, "bob", "events"), "-m", "x"], capture_output=True, text=True
    )
    assert "not authorized" in (refused.stdout + refused.stderr).lower()
    # and a collector may read but not write
    collector = broker.client("collector")
    cbase = base[:]
    cbase[cbase.index("--cert") + 1] = str(collector.cert_file)
    cbase[cbase.index("--key") + 1] = str(collector.key_file)
    cbase[cbase.index("-u") + 1] = "collector"
    cbase[cbase.index("-P") + 1] = collector.password
    refused = subprocess.run(
        cbase + ["-t", host_topic(MESH, "alice", "status"), "-m", "x"], capture_output=True, text=True
    )
    assert "not authorized" in (refused.stdout + refused.stderr).lower()


def _engine(seed: int) -> Engine:
    batches = [uniform(4096, seed + i) for i in range(40)]
    return Engine([ScriptedSource(f"test-{seed}", batches, declared_h=4.0)])


FAST = AgentSettings(status_interval=0.3, seed_interval=0.3, seed_bytes=48)


async def _wait(predicate, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def test_two_hosts_exchange_seeds_with_zero_credit_and_drop_forgeries(
    broker: Broker, keys: dict[str, MeshKeys]
) -> None:
    url = parse_broker_url(broker.url)

    async def go() -> None:
        engines = {label: _engine(i) for i, label in enumerate(("alice", "bob"))}
        agents = {}
        for label, engine in engines.items():
            await engine.start()
            agents[label] = HostAgent(engine, broker.client(label), url, keys[label], FAST)
            await agents[label].start()
        alice, bob = agents["alice"], agents["bob"]
        try:
            await _wait(lambda: alice.seeds_received >= 2 and bob.seeds_received >= 2)
            for agent, engine, peer in ((alice, engines["alice"], "bob"), (bob, engines["bob"], "alice")):
                stats = engine.pool.stats
                assert stats.per_source_raw_bytes[PEER_SOURCE_PREFIX + peer] == agent.peer_bytes > 0
                assert PEER_SOURCE_PREFIX + peer not in engine.pool.credited_by_source()  # credit 0, always
                assert agent.mesh_figures()["peer_credited_bits"] == 0
            assert alice.peer_bytes % 48 == 0

            # mallory (a host of the mesh, on its own topics, which the ACL allows) sends garbage
            mallory_signer = MessageSigner(MESH, "mallory", keys["mallory"])
            before = dict(bob.verifier.drops)
            async with mqtt_client(broker.client("mallory"), url) as client:
                status = host_topic(MESH, "mallory", "status")
                # before its identity: unknown sender
                await client.publish(status, mallory_signer.sign(status, "status", {"state": "online"}), qos=1)
                identity = host_topic(MESH, "mallory", "identity")
                await client.publish(
                    identity, mallory_signer.sign(identity, "identity", mallory_signer.identity_body()), qos=1
                )
                good = mallory_signer.sign(status, "status", {"state": "online"})
                await client.publish(status, good, qos=1)
                await client.publish(status, good, qos=1)  # replay
                forged = json.loads(good)
                forged["body"]["state"] = "degraded"
                await client.publish(status, json.dumps(forged).encode(), qos=1)  # forged
                await client.publish(status, b"{" + b" " * 70_000 + b"}", qos=1)  # oversized
                await client.publish(status, b"\x00\xff garbage", qos=1)  # malformed
                unsigned = {k: v for k, v in json.loads(good).items() if k != "signature"}
                await client.publish(status, json.dumps(unsigned).encode(), qos=1)  # unsigned
                # a message of alice's, re-published on mallory's own topic
                alice_status = alice.signer.sign(host_topic(MESH, "alice", "status"), "status", {"state": "online"})
                await client.publish(status, alice_status, qos=1)  # wrong topic
            await _wait(lambda: sum(bob.verifier.drops.values()) - sum(before.values()) >= 7)
            added = {k: v - before.get(k, 0) for k, v in bob.verifier.drops.items() if v != before.get(k, 0)}
            assert added == {
                "unknown-sender": 1,
                "replay": 1,
                "bad-signature": 1,
                "oversized": 1,
                "malformed": 1,
                "unsigned": 1,
                "wrong-topic": 1,
            }
            assert bob.online.get("mallory") is True  # the one good status still counted
            # the agents are still working after all that
            received = bob.seeds_received
            await _wait(lambda: bob.seeds_received > received)
        finally:
            for label in agents:
                await agents[label].stop()
                await engines[label].stop()

    asyncio.run(asyncio.wait_for(go(), 300))  # a hang becomes a failure with its traceback


def test_bad_credentials_keep_retrying_without_crashing(
    broker: Broker, keys: dict[str, MeshKeys], tmp_path: Path, capsys
) -> None:
    import dataclasses

    wrong = dataclasses.replace(broker.client("alice"), password="wrong")

    async def go() -> None:
        engine = _engine(9)
        await engine.start()
        agent = HostAgent(engine, wrong, parse_broker_url(broker.url), keys["alice"], FAST)
        await agent.start()
        await _wait(lambda: agent.connection.state == "lost")
        assert not agent.connection.connected.is_set()
        await agent.stop()
        await engine.stop()

    asyncio.run(go())
    assert "not authori" in capsys.readouterr().err.lower()


def test_tls_context_verifies_the_broker(broker: Broker) -> None:
    context = broker.client("alice").tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_no_seed_pool_state_or_secret_crosses_the_broker(broker: Broker, keys: dict[str, MeshKeys]) -> None:
    """Everything on the wire, read by a collector (which may read every topic): no seed, no pool
    state, no key or password; and the reprs of what holds them hide them."""
    url = parse_broker_url(broker.url)
    drawn: list[bytes] = []

    async def go() -> list[tuple[str, bytes]]:
        engines = {label: _engine(20 + i) for i, label in enumerate(("alice", "bob"))}
        agents = {}
        for label, engine in engines.items():
            original = engine.pool.draw

            def recording(n_bytes: int, *, purpose: bytes, _original=original):  # type: ignore[no-untyped-def]
                result = _original(n_bytes, purpose=purpose)
                drawn.append(result.data)
                return result

            engine.pool.draw = recording  # type: ignore[method-assign]
            await engine.start()
            agents[label] = HostAgent(engine, broker.client(label), url, keys[label], FAST)

        async def run_agents() -> None:
            for agent in agents.values():
                await agent.start()
            await _wait(lambda: all(a.seeds_received >= 3 for a in agents.values()))

        try:
            seen = await collect(broker, f"chaosmagnet/{MESH}/#", 0.5, run_agents)
        finally:
            for label in agents:
                await agents[label].stop()
                await engines[label].stop()
        fingerprints = [e.pool.fingerprint() for e in engines.values()]
        commitments = [e.pool.commitment() for e in engines.values()]
        return seen, fingerprints + commitments  # type: ignore[return-value]

    seen, pool_views = asyncio.run(go())  # type: ignore[misc]
    assert len(drawn) >= 6 and any("/peer/" in topic for topic, _ in seen)
    secrets = [d.hex().encode() for d in drawn] + [d for d in drawn]
    for label in ("alice", "bob"):
        client = broker.client(label)
        secrets += [
            client.password.encode(),
            keys[label].kem_secret.hex().encode(),
            keys[label].signer.secret.hex().encode(),
        ]
        secrets += [client.key_file.read_bytes().split(b"\n")[1]]  # type: ignore[union-attr]
        assert client.password not in repr(client)
        assert keys[label].kem_secret.hex() not in repr(keys[label])
    secrets += [v.encode() for v in pool_views]
    for topic, payload in seen:
        for secret in secrets:
            assert secret not in payload, topic


def test_bench_mesh_collector_capacity_runs_and_reports() -> None:
    """scripts/bench-mesh's capacity run, tiny: every signed status goes through mosquitto and a
    `chaos-host collector` with a verify worker into SQLite (figures present, no wall-clock assertion)."""
    from chaosmagnet.mesh.bench import collector_benchmark

    result = collector_benchmark(publishers=2, per_publisher=3, verify_workers=1)
    assert result["statuses"] == 6 and result["verify_workers"] == 1
    burst, drain = result["burst"], result["drain"]  # 1 of 3 per publisher in the burst, 2 drained
    assert (burst["statuses"], burst["stored"], drain["statuses"], drain["stored"]) == (2, 2, 4, 4)
    assert result["status_rows_per_s"] == drain["status_rows_per_s"] > 0
    for phase in (burst, drain):
        assert phase["dropped_by_broker"] == 0
        assert set(phase["cpu_percent_of_one_core"]) == {"broker", "collector (main)", "collector (verify workers)"}
