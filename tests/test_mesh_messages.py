"""Signed mesh messages, sealed peer seeds and mosquitto password lines, without a broker."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
from chaosmagnet.errors import MeshError, UsageError
from chaosmagnet.mesh.keys import MeshKeys, load_mesh_keys
from chaosmagnet.mesh.messages import MAX_MESSAGE_BYTES, Accepted, Dropped, MessageSigner, MessageVerifier
from chaosmagnet.mesh.passwd import password_line, verify_password_line
from chaosmagnet.mesh.peerseed import open_seed, seal_seed
from chaosmagnet.mqtt.topics import host_topic, parse_topic, peer_topic
from chaosmagnet.mqtt.url import parse_broker_url
from hypothesis import given, settings
from hypothesis import strategies as st
from mesh_helpers import MESH, make_host_home


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MeshKeys]:
    root = tmp_path_factory.mktemp("mesh-homes")
    return {label: make_host_home(root / label) for label in ("alice", "bob", "mallory")}


def identity_message(signer: MessageSigner) -> tuple[str, bytes]:
    topic = host_topic(MESH, signer.label, "identity")
    return topic, signer.sign(topic, "identity", signer.identity_body())


def test_status_after_identity_is_accepted(homes: dict[str, MeshKeys]) -> None:
    alice = MessageSigner(MESH, "alice", homes["alice"])
    verifier = MessageVerifier(MESH, "bob")
    assert isinstance(verifier.feed(*identity_message(alice)), Accepted)
    topic = host_topic(MESH, "alice", "status")
    verdict = verifier.feed(topic, alice.sign(topic, "status", {"state": "online"}))
    assert isinstance(verdict, Accepted) and verdict.body == {"state": "online"}
    assert verifier.peers["alice"].fingerprint == homes["alice"].identity.fingerprint
    assert not verifier.drops


def test_kem_key_is_stable_and_certified(homes: dict[str, MeshKeys]) -> None:
    keys = homes["alice"]
    home = next(p for p in Path(keys.kem_file).parents if (p / "keys").is_dir())
    again = load_mesh_keys(home / "keys")
    assert again.kem.public_key == keys.kem.public_key and again.kem.algorithm == "ML-KEM-768"
    assert keys.signer.algorithm == "ML-DSA-65"
    assert oct(Path(keys.kem_file).stat().st_mode & 0o777) == "0o600"
    assert "secret" not in repr(keys) or "<hidden>" in repr(keys)


def drops_of(verifier: MessageVerifier) -> dict[str, int]:
    return dict(verifier.drops)


def test_unknown_sender_replay_forgery_wrong_topic_unsigned_oversized(homes: dict[str, MeshKeys]) -> None:
    alice = MessageSigner(MESH, "alice", homes["alice"])
    mallory = MessageSigner(MESH, "mallory", homes["mallory"])
    verifier = MessageVerifier(MESH, "bob")
    status = host_topic(MESH, "alice", "status")
    early = alice.sign(status, "status", {"state": "online"})
    assert verifier.feed(status, early) == Dropped(verifier.feed(status, early).reason, status, len(early))
    assert drops_of(verifier) == {"unknown-sender": 2}
    verifier.feed(*identity_message(alice))
    verifier.feed(*identity_message(mallory))
    fresh = alice.sign(status, "status", {"state": "online"})
    assert isinstance(verifier.feed(status, fresh), Accepted)
    assert verifier.feed(status, fresh).reason.value == "replay"
    assert verifier.feed(status, early).reason.value == "replay"  # an older counter
    forged = json.loads(alice.sign(status, "status", {"state": "online"}))
    forged["body"] = {"state": "offline"}
    assert verifier.feed(status, json.dumps(forged).encode()).reason.value == "bad-signature"
    # mallory re-publishes alice's message on its own topic, or claims to be alice there
    assert verifier.feed(host_topic(MESH, "mallory", "status"), fresh).reason.value == "wrong-topic"
    claim = mallory.sign(host_topic(MESH, "mallory", "status"), "status", {"state": "online"})
    assert verifier.feed(status, claim).reason.value == "wrong-topic"
    # mallory signs as itself but names alice: the signature is not alice's
    doc = json.loads(claim)
    doc["sender"] = "alice"
    assert verifier.feed(status, json.dumps(doc).encode()).reason.value == "bad-signature"
    unsigned = {k: v for k, v in json.loads(fresh).items() if k != "signature"}
    assert verifier.feed(status, json.dumps(unsigned).encode()).reason.value == "unsigned"
    garbled = json.loads(alice.sign(status, "status", {"state": "online"}))
    for text in ("not base64!", "é" * 8, garbled["signature"][:-3]):  # bad characters, non-ASCII, cut short
        assert verifier.feed(status, json.dumps({**garbled, "signature": text}).encode()).reason.value == "unsigned"
    v1 = {**garbled, "v": 1, "signature": base64.b64decode(garbled["signature"]).hex()}  # the hex of version 1
    assert verifier.feed(status, json.dumps(v1).encode()).reason.value == "malformed"
    big = b"{" + b" " * MAX_MESSAGE_BYTES + b"}"
    assert verifier.feed(status, big).reason.value == "oversized"
    assert verifier.feed("chaosmagnet/othermesh/host/alice/status", fresh).reason.value == "wrong-topic"
    assert verifier.feed(status, b"\xff\x00not json").reason.value == "malformed"
    assert drops_of(verifier) == {
        "unknown-sender": 2,
        "replay": 2,
        "bad-signature": 2,
        "wrong-topic": 3,
        "unsigned": 4,
        "oversized": 1,
        "malformed": 2,
    }


def test_identity_change_is_refused(homes: dict[str, MeshKeys]) -> None:
    verifier = MessageVerifier(MESH, "bob")
    verifier.feed(*identity_message(MessageSigner(MESH, "alice", homes["alice"])))
    impostor = MessageSigner(MESH, "alice", homes["mallory"])  # mallory's keys under alice's name
    assert verifier.feed(*identity_message(impostor)).reason.value == "identity-changed"
    assert verifier.peers["alice"].fingerprint == homes["alice"].identity.fingerprint


def test_damaged_identity_is_refused(homes: dict[str, MeshKeys]) -> None:
    alice = MessageSigner(MESH, "alice", homes["alice"])
    topic, payload = identity_message(alice)
    doc = json.loads(payload)
    doc["body"]["kem"]["public_key"] = homes["mallory"].kem.public_key.hex()  # swap the KEM key
    verifier = MessageVerifier(MESH, "bob")
    assert verifier.feed(topic, json.dumps(doc).encode()).reason.value in ("bad-signature", "bad-identity")
    assert "alice" not in verifier.peers


def test_last_will_counter_closes_the_epoch(homes: dict[str, MeshKeys]) -> None:
    from chaosmagnet.mesh.messages import FINAL_COUNTER

    alice = MessageSigner(MESH, "alice", homes["alice"])
    verifier = MessageVerifier(MESH, None)
    verifier.feed(*identity_message(alice))
    status = host_topic(MESH, "alice", "status")
    will = alice.sign(status, "status", {"state": "offline"}, counter=FINAL_COUNTER)
    assert isinstance(verifier.feed(status, alice.sign(status, "status", {"state": "online"})), Accepted)
    assert isinstance(verifier.feed(status, will), Accepted)
    assert verifier.feed(status, will).reason.value == "replay"
    alice.new_epoch()
    assert isinstance(verifier.feed(status, alice.sign(status, "status", {"state": "online"})), Accepted)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=2048), channel=st.sampled_from(["status", "events", "identity", "peer/bob"]))
def test_garbage_never_raises(payload: bytes, channel: str) -> None:
    verifier = MessageVerifier(MESH, "bob")
    verdict = verifier.feed(f"chaosmagnet/{MESH}/host/alice/{channel}", payload)
    assert isinstance(verdict, Dropped)


@settings(max_examples=100, deadline=None)
@given(
    doc=st.dictionaries(
        st.sampled_from(
            ["v", "mesh", "sender", "kind", "fingerprint", "epoch", "counter", "time", "body", "signature"]
        ),
        st.one_of(st.none(), st.integers(), st.text(max_size=8), st.lists(st.integers(), max_size=3), st.floats()),
    )
)
def test_wrong_field_types_never_raise(doc: dict[str, object]) -> None:
    verifier = MessageVerifier(MESH, "bob")
    payload = json.dumps(doc).encode()
    assert isinstance(verifier.feed(f"chaosmagnet/{MESH}/host/alice/status", payload), Dropped)


def test_peer_seed_round_trip_and_tamper(homes: dict[str, MeshKeys]) -> None:
    bob = homes["bob"]
    seed = os.urandom(48)
    context = {"mesh": MESH, "sender": "alice", "receiver": "bob", "epoch": 7, "counter": 3}
    body = seal_seed(seed, bob.kem.algorithm, bob.kem.public_key, **context)
    assert seed.hex() not in json.dumps(body)
    assert open_seed(body, bob, **context) == seed
    assert open_seed(body, bob, **{**context, "counter": 4}) == "undecryptable"  # bound to its header
    assert open_seed(body, homes["mallory"], **{**context, "receiver": "bob"}) == "undecryptable"
    tampered = dict(body, sealed=body["sealed"][:-2] + ("00" if body["sealed"][-2:] != "00" else "01"))
    assert open_seed(tampered, bob, **context) == "undecryptable"
    assert open_seed(dict(body, sealed="00" * 200), bob, **context) == "seed-size"
    assert open_seed({"to": "bob"}, bob, **context) == "malformed"
    with pytest.raises(ValueError):
        seal_seed(b"x" * 16, bob.kem.algorithm, bob.kem.public_key, **context)


def test_topics() -> None:
    assert parse_topic(peer_topic(MESH, "alice", "bob")).receiver == "bob"  # type: ignore[union-attr]
    assert parse_topic(host_topic(MESH, "alice", "status")).channel == "status"  # type: ignore[union-attr]
    for bad in (
        "chaosmagnet/m/host/alice",
        "x/m/host/a/status",
        "chaosmagnet/m/host/A!/status",
        "chaosmagnet/m/host/a/status/x",
    ):
        assert parse_topic(bad) is None


@pytest.mark.parametrize(
    "text, ok",
    [
        ("mqtts://broker.example:8883", True),
        ("mqtts://localhost", True),
        ("mqtt://localhost:1883", False),
        ("mqtts://u:p@localhost", False),
        ("http://x", False),
        ("mqtts://:99", False),
        ("mqtts://h:99999", False),
    ],
)
def test_broker_url(text: str, ok: bool) -> None:
    if ok:
        assert parse_broker_url(text).host
    else:
        with pytest.raises(UsageError):
            parse_broker_url(text)


def test_missing_identity_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MeshError, match="identity init"):
        load_mesh_keys(tmp_path / "keys")


def test_password_lines_match_mosquitto_passwd(tmp_path: Path) -> None:
    """mosquitto_passwd writes a line; we verify it, and recompute it from its salt."""
    path = tmp_path / "passwd"
    path.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(path), "alice", "s3cret pass"], check=True)
    line = path.read_text().strip()
    assert verify_password_line(line, "alice", "s3cret pass")
    assert not verify_password_line(line, "alice", "wrong")
    assert not verify_password_line(line, "bob", "s3cret pass")
    import base64

    _, _, iterations, salt, _ = line.split(":", 1)[1].split("$")
    assert password_line("alice", "s3cret pass", salt=base64.b64decode(salt), iterations=int(iterations)) == line
    ours = password_line("alice", "s3cret pass")
    assert ours.startswith("alice:$7$101$") and verify_password_line(ours, "alice", "s3cret pass")


def test_agent_drops_bad_peer_seeds_without_raising(homes: dict[str, MeshKeys]) -> None:
    """A known, correctly signing peer sends seeds that do not open: counted, never absorbed."""
    import asyncio

    from chaosmagnet.engine import Engine
    from chaosmagnet.mesh.agent import HostAgent
    from chaosmagnet.mesh.peerseed import seal_seed
    from chaosmagnet.mqtt.credentials import ClientCredentials

    async def go() -> None:
        engine = Engine([])
        credentials = ClientCredentials(Path("."), MESH, "bob", "host", "bob", "unused")
        agent = HostAgent(engine, credentials, parse_broker_url("mqtts://localhost:1"), homes["bob"])
        mallory = MessageSigner(MESH, "mallory", homes["mallory"])
        agent.receive(*identity_message(mallory))
        topic = peer_topic(MESH, "mallory", "bob")
        bob = homes["bob"]

        def send(body: object) -> None:
            agent.receive(topic, mallory.sign(topic, "peer-seed", body))

        good = seal_seed(
            os.urandom(32),
            bob.kem.algorithm,
            bob.kem.public_key,
            mesh=MESH,
            sender="mallory",
            receiver="bob",
            epoch=mallory.epoch,
            counter=mallory.counter + 1,
        )
        send(good)  # sealed for counter+1 but signed with counter+1 too: opens
        assert agent.seeds_received == 1
        send(dict(good, ciphertext=os.urandom(1088).hex()))  # random ciphertext: implicit rejection
        send(dict(good, ciphertext="00"))  # wrong length
        send(dict(good, to="alice"))
        send(dict(good, sealed="zz"))
        send(dict(good, nonce="00"))
        send(["not", "a", "dict"])
        send(good)  # a seed sealed for another counter
        assert agent.seeds_received == 1
        assert dict(agent.seed_drops) == {"undecryptable": 3, "malformed": 3, "seed-size": 1}
        assert engine.pool.stats.per_source_raw_bytes == {"mesh-peer:mallory": 32}
        assert engine.pool.credited_bits == 0
        agent.receive(topic, b"\x00" * 10)
        agent.receive(f"chaosmagnet/{MESH}/host/mallory/peer/alice", mallory.sign(topic, "peer-seed", good))
        assert agent.verifier.drops == {"malformed": 1, "wrong-topic": 1}

    asyncio.run(go())
