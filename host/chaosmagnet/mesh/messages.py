"""Signed mesh messages and their checks, sans-IO: bytes and a topic in, a verdict out.

Every message is one JSON object::

    {"v": 2, "mesh", "sender", "kind", "fingerprint", "epoch", "counter", "time", "body",
     "signature": base64}

``signature`` is the sender's audit key (ML-DSA-65) over ``DOMAIN + topic +
"\\n" + canonical JSON of everything else``, so a message is bound to the
topic it was published on.  ``(epoch, counter)`` rises strictly per sender
and channel: epoch is the sender's connection start in milliseconds, the
counter counts its messages (the last will uses the largest counter of its
epoch, so it is accepted once and only after everything before it).

Identity messages carry the sender's public identity and its certified KEM
key; a receiver pins each label to the first identity fingerprint it
verified.  Anything else is dropped with a counted reason (``DropReason``);
nothing a peer sends raises out of ``MessageVerifier.feed``.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from chaosmagnet.errors import ChaosError
from chaosmagnet.mesh.keys import MeshKeys, kem_statement
from chaosmagnet.minting.canonical import canonical_json
from chaosmagnet.minting.identity import IdentityPublic
from chaosmagnet.mqtt.topics import TopicName, parse_topic
from chaosmagnet.pqc import backend_for

VERSION = 2  # 2: the signature in base64 (3,309 bytes: 4,412 characters instead of 6,618)
DOMAIN = b"chaosmagnet.mesh-message/1\n"
MAX_MESSAGE_BYTES = 64 * 1024  # an identity message is about 40 KB; everything else is far smaller
FINAL_COUNTER = 2**53 - 1  # the last will's counter: the end of its epoch
KINDS = {"identity": "identity", "status": "status", "events": "event", "peer": "peer-seed"}
_FIELDS = {"v", "mesh", "sender", "kind", "fingerprint", "epoch", "counter", "time", "body", "signature"}


class DropReason(str, Enum):
    """Why a message was dropped (counted per reason, shown in status and /metrics)."""

    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    WRONG_TOPIC = "wrong-topic"
    UNSIGNED = "unsigned"
    UNKNOWN_SENDER = "unknown-sender"
    BAD_SIGNATURE = "bad-signature"
    REPLAY = "replay"
    BAD_IDENTITY = "bad-identity"
    IDENTITY_CHANGED = "identity-changed"


def _signed_bytes(topic: str, unsigned: dict[str, Any]) -> bytes:
    return DOMAIN + topic.encode("utf-8") + b"\n" + canonical_json(unsigned)


class MessageSigner:
    """Makes this host's signed messages: one (epoch, counter) sequence per connection."""

    def __init__(self, mesh: str, label: str, keys: MeshKeys) -> None:
        self.mesh = mesh
        self.label = label
        self.keys = keys
        self.epoch = 0
        self.counter = 0
        self.new_epoch()

    def new_epoch(self) -> int:
        """Start a new epoch (each connection): strictly above the previous one."""
        self.epoch = max(self.epoch + 1, time.time_ns() // 1_000_000)
        self.counter = 0
        return self.epoch

    def next_counter(self) -> int:
        """Reserve the next counter of this epoch."""
        self.counter += 1
        return self.counter

    def sign(self, topic: str, kind: str, body: Any, *, counter: int | None = None) -> bytes:
        """The signed message for ``body`` on ``topic`` (a reserved or the next counter)."""
        unsigned = {
            "v": VERSION,
            "mesh": self.mesh,
            "sender": self.label,
            "kind": kind,
            "fingerprint": self.keys.identity.fingerprint,
            "epoch": self.epoch,
            "counter": self.next_counter() if counter is None else counter,
            "time": round(time.time(), 3),
            "body": body,
        }
        signature = bytes.fromhex(self.keys.signer.sign(_signed_bytes(topic, unsigned))["value"])
        return canonical_json({**unsigned, "signature": base64.b64encode(signature).decode("ascii")})

    def identity_body(self) -> dict[str, Any]:
        """The body of this host's identity message."""
        return {"identity": self.keys.identity.to_json(), "kem": self.keys.kem.to_json()}


@dataclass(frozen=True)
class PeerInfo:
    """What a receiver knows of a verified peer."""

    label: str
    fingerprint: str
    audit_key: bytes
    kem_algorithm: str
    kem_public_key: bytes


@dataclass(frozen=True)
class Accepted:
    """A message that passed every check."""

    topic: TopicName
    kind: str
    sender: str
    epoch: int
    counter: int
    time: float
    body: Any
    size: int


@dataclass(frozen=True)
class Dropped:
    """A message that failed a check, and why."""

    reason: DropReason
    topic: str
    size: int


@dataclass
class MessageVerifier:
    """Checks incoming mesh messages for one receiver; keeps pins, counters and drop counts."""

    mesh: str
    receiver: str | None = None  # None: a collector (takes no peer seeds)
    peers: dict[str, PeerInfo] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)  # label -> identity fingerprint
    drops: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    _last: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    _identity_docs: dict[str, bytes] = field(default_factory=dict)

    def feed(self, topic: str, payload: bytes) -> Accepted | Dropped:
        """Check one message; never raises for anything a peer can send."""
        try:
            return self._check(topic, payload)
        except (ChaosError, ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError):
            return self._drop(DropReason.MALFORMED, topic, len(payload))

    def _drop(self, reason: DropReason, topic: str, size: int) -> Dropped:
        self.drops[reason.value] += 1
        return Dropped(reason, topic, size)

    def _check(self, topic: str, payload: bytes) -> Accepted | Dropped:
        parsed = parse_message(self.mesh, self.receiver, topic, payload)
        if isinstance(parsed, DropReason):
            return self._drop(parsed, topic, len(payload))
        name, doc, size = parsed.name, parsed.doc, parsed.size
        if name.channel == "identity":
            return self._identity(name, doc, parsed.message, parsed.signature, topic, size)
        peer = self.peers.get(name.sender)
        if peer is None:
            return self._drop(DropReason.UNKNOWN_SENDER, topic, size)
        if doc["fingerprint"] != peer.fingerprint:
            return self._drop(DropReason.BAD_SIGNATURE, topic, size)
        if not _verify(peer.audit_key, parsed.message, parsed.signature):
            return self._drop(DropReason.BAD_SIGNATURE, topic, size)
        return self._admit(name, doc, topic, size)

    def key_for(self, topic: str) -> bytes | None:
        """The audit key a message on ``topic`` must be signed with, when its sender is known
        (None: an identity, an unknown sender or not a mesh topic; ``feed`` handles those)."""
        name = parse_topic(topic)
        if name is None or name.channel == "identity" or name.mesh != self.mesh:
            return None
        peer = self.peers.get(name.sender)
        return peer.audit_key if peer is not None else None

    def feed_checked(self, topic: str, payload: bytes, checked: CheckedMessage) -> Accepted | Dropped:
        """``feed`` for a message whose structure and signature ``check_signed`` already checked
        (in a worker process) under ``checked.audit_key``: the sender's pin and fingerprint,
        the replay rule and the counts are applied here, in arrival order.  A message checked
        under a key that is no longer the sender's is checked again from the start."""
        try:
            if checked.reason:
                return self._drop(DropReason(checked.reason), topic, len(payload))
            name = parse_topic(topic)
            peer = self.peers.get(name.sender) if name is not None else None
            if name is None or checked.doc is None or peer is None or peer.audit_key != checked.audit_key:
                return self.feed(topic, payload)
            if checked.doc["fingerprint"] != peer.fingerprint:
                return self._drop(DropReason.BAD_SIGNATURE, topic, len(payload))
            return self._admit(name, checked.doc, topic, len(payload))
        except (ChaosError, ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError):
            return self._drop(DropReason.MALFORMED, topic, len(payload))

    def _admit(self, name: TopicName, doc: dict[str, Any], topic: str, size: int) -> Accepted | Dropped:
        """The replay rule for a verified message, then count it as accepted."""
        epoch, counter = doc["epoch"], doc["counter"]
        key = (name.sender, name.channel)
        if key in self._last and (epoch, counter) <= self._last[key]:
            return self._drop(DropReason.REPLAY, topic, size)
        self._last[key] = (epoch, counter)
        self.accepted[name.channel] += 1
        return Accepted(name, doc["kind"], name.sender, epoch, counter, float(doc["time"]), doc["body"], size)

    def _identity(
        self, name: TopicName, doc: dict[str, Any], message: bytes, signature: bytes, topic: str, size: int
    ) -> Accepted | Dropped:
        body = doc["body"]
        canonical = canonical_json(body)
        known = self.peers.get(name.sender)
        if known is not None and self._identity_docs.get(name.sender) == canonical:
            # the same identity again (a reconnect): only the message signature needs checking
            if not _verify(known.audit_key, message, signature):
                return self._drop(DropReason.BAD_SIGNATURE, topic, size)
            self.accepted["identity"] += 1
            return Accepted(name, "identity", name.sender, doc["epoch"], doc["counter"], float(doc["time"]), body, size)
        if not isinstance(body, dict) or set(body) != {"identity", "kem"}:
            return self._drop(DropReason.BAD_IDENTITY, topic, size)
        try:
            identity = IdentityPublic.from_json(body["identity"], f"identity of {name.sender}")
        except ChaosError:
            return self._drop(DropReason.BAD_IDENTITY, topic, size)
        if identity.fingerprint != doc["fingerprint"] or identity.audit_key is None or identity.audit_key_problems():
            return self._drop(DropReason.BAD_IDENTITY, topic, size)
        pinned = self.pins.get(name.sender)
        if pinned is not None and pinned != identity.fingerprint:
            return self._drop(DropReason.IDENTITY_CHANGED, topic, size)
        audit_key = identity.audit_key.public_key
        if not _verify(audit_key, message, signature):
            return self._drop(DropReason.BAD_SIGNATURE, topic, size)
        kem = body["kem"]
        if not isinstance(kem, dict) or set(kem) != {"algorithm", "public_key", "created", "certificate"}:
            return self._drop(DropReason.BAD_IDENTITY, topic, size)
        kem_public = bytes.fromhex(kem["public_key"])
        statement = kem_statement(
            identity.fingerprint, audit_key, str(kem["algorithm"]), kem_public, str(kem["created"])
        )
        if kem["algorithm"] != "ML-KEM-768" or not _verify(audit_key, statement, bytes.fromhex(kem["certificate"])):
            return self._drop(DropReason.BAD_IDENTITY, topic, size)
        self.pins[name.sender] = identity.fingerprint
        self.peers[name.sender] = PeerInfo(name.sender, identity.fingerprint, audit_key, kem["algorithm"], kem_public)
        self._identity_docs[name.sender] = canonical
        self.accepted["identity"] += 1
        return Accepted(name, "identity", name.sender, doc["epoch"], doc["counter"], float(doc["time"]), body, size)


@dataclass(frozen=True)
class ParsedMessage:
    """A message whose structure passed; ``message`` is what its signature must cover."""

    name: TopicName
    doc: dict[str, Any]
    message: bytes
    signature: bytes
    size: int


def parse_message(mesh: str, receiver: str | None, topic: str, payload: bytes) -> ParsedMessage | DropReason:
    """The stateless checks of a message (size, topic, fields, the signed bytes); no signature check."""
    size = len(payload)
    if size > MAX_MESSAGE_BYTES:
        return DropReason.OVERSIZED
    name = parse_topic(topic)
    if name is None or name.mesh != mesh:
        return DropReason.WRONG_TOPIC
    if name.channel == "peer" and name.receiver != receiver:
        return DropReason.WRONG_TOPIC
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        return DropReason.MALFORMED
    if not isinstance(doc, dict):
        return DropReason.MALFORMED
    if "signature" not in doc:
        return DropReason.UNSIGNED
    if set(doc) != _FIELDS or doc["v"] != VERSION:
        return DropReason.MALFORMED
    epoch, counter, sent = doc["epoch"], doc["counter"], doc["time"]
    if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= FINAL_COUNTER for x in (epoch, counter)):
        return DropReason.MALFORMED
    if not isinstance(sent, (int, float)) or not isinstance(doc["signature"], str):
        return DropReason.MALFORMED
    if doc["mesh"] != name.mesh or doc["sender"] != name.sender or doc["kind"] != KINDS[name.channel]:
        return DropReason.WRONG_TOPIC
    signature_text = doc.pop("signature")
    try:
        signature = base64.b64decode(signature_text, validate=True)
    except ValueError:  # binascii.Error, and non-ASCII text
        return DropReason.UNSIGNED
    return ParsedMessage(name, doc, _signed_bytes_of(topic, payload, signature_text, doc), signature, size)


def _signed_bytes_of(topic: str, payload: bytes, signature_text: str, unsigned: dict[str, Any]) -> bytes:
    """What the signature must cover.  A signer sends canonical JSON, whose keys are sorted, so the
    payload without its one ``,"signature":"..."`` member is the canonical JSON of the rest: cut it
    out instead of serialising again.  Anything else is serialised canonically, as always."""
    marker = b',"signature":"'
    value = signature_text.encode("ascii", "replace") + b'"'
    at = payload.find(marker)  # the one place it can be: a quote inside a JSON string is escaped
    end = at + len(marker) + len(value)
    sender = b'"sender":' + json.dumps(unsigned.get("sender")).encode("ascii", "replace")
    if (
        at > 0
        and payload.find(marker, at + 1) < 0
        and payload.startswith(value, at + len(marker))
        and payload.startswith(b'{"body":')
        and payload.startswith(b',"time":', end)
        and payload.endswith(sender, 0, at)
    ):
        return DOMAIN + topic.encode("utf-8") + b"\n" + payload[:at] + payload[end:]
    return _signed_bytes(topic, unsigned)


@dataclass(frozen=True)
class CheckedMessage:
    """What ``check_signed`` found: a drop reason, or the verified document (without its signature)."""

    reason: str  # a DropReason value, "" when the structure and the signature are good
    doc: dict[str, Any] | None
    audit_key: bytes


def check_signed(mesh: str, receiver: str | None, topic: str, payload: bytes, audit_key: bytes) -> CheckedMessage:
    """Structure and ML-DSA-65 signature of one non-identity message under ``audit_key``.

    Stateless and picklable, so a collector can run it in worker processes; the
    stateful rest (pins, replays, counts) is ``MessageVerifier.feed_checked``."""
    try:
        parsed = parse_message(mesh, receiver, topic, payload)
    except (ChaosError, ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError):
        return CheckedMessage(DropReason.MALFORMED.value, None, audit_key)
    if isinstance(parsed, DropReason):
        return CheckedMessage(parsed.value, None, audit_key)
    if not _verify(audit_key, parsed.message, parsed.signature):
        return CheckedMessage(DropReason.BAD_SIGNATURE.value, None, audit_key)
    return CheckedMessage("", parsed.doc, audit_key)


def _verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        return bool(backend_for("ML-DSA-65", prefer_seeded=False).verify("ML-DSA-65", public_key, message, signature))
    except ChaosError:
        return False
