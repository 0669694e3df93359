"""The node wire protocol, version 2 (docs/wire-protocol.md), on the host side.

This is an independent implementation of the layout, the key schedule and the
command tags (struct, the standard library's hmac and the ``cryptography``
package's HKDF), not an import of the firmware's modules, so that the shared
test vectors check one against the other.
"""

from __future__ import annotations

import enum
import hmac
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"\xc4\x4d\x4e\xa7"
VERSION = 2
HEADER_SIZE = 48
TAG_SIZE = 32
MAX_PAYLOAD = 2048
KEY_SIZE = 32
NODE_ID_SIZE = 8
SESSION_ID_SIZE = 8
CHALLENGE_SIZE = 16
NONCE_SIZE = 8
OVERHEAD = HEADER_SIZE + TAG_SIZE
NO_SESSION_ID = bytes(SESSION_ID_SIZE)  # the session id field of a HANDSHAKE frame

# magic, version, type, length, node id, session id, sequence, timestamp,
# source, bits, flags, reserved, samples, RCT failures, APT failures
HEADER = struct.Struct("<4sBBH8s8sIIBBBBIII")
assert HEADER.size == HEADER_SIZE

# challenge, boot nonce, link nonce, boot counter
HANDSHAKE = struct.Struct("<16s8s8sI")
SESSION_INFO = b"chaosmagnet/2 session"
COMMAND_DOMAIN = b"chaosmagnet/2 command\n"

FLAG_HEALTH_FAIL = 0x01
FLAG_CONDITIONED = 0x02


class FrameType(enum.IntEnum):
    """What a frame carries."""

    DATA = 1
    STATUS = 2
    HEARTBEAT = 3
    REPLY = 4
    HANDSHAKE = 5  # the node's answer to hello, tagged under the node key


class SourceId(enum.IntEnum):
    """The node's sources, as numbered on the wire."""

    NONE = 0
    ADC = 1
    RNG = 2
    JITTER = 3

    @property
    def label(self) -> str:
        """The name used in pipeline source names (adc, rng, jitter)."""
        return self.name.lower()


HEARTBEAT = struct.Struct("<IBBH")  # uptime s, running mask, failing mask, reserved


@dataclass(frozen=True)
class Frame:
    """One authenticated frame, as accepted by the parser."""

    type: FrameType
    node_id: bytes
    session_id: bytes
    sequence: int
    timestamp_ms: int
    source: SourceId
    bits: int
    flags: int
    samples: int
    rct_failures: int
    apt_failures: int
    payload: bytes

    @property
    def health_failed(self) -> bool:
        """The node's own health tests failed on this frame's samples (shown, never relied on)."""
        return bool(self.flags & FLAG_HEALTH_FAIL)

    @property
    def sample_width(self) -> int:
        """Bytes per sample in the payload: 2 for 9..16-bit samples, else 1."""
        return 2 if self.bits > 8 else 1


@dataclass(frozen=True)
class HandshakeAnswer:
    """The fields of a HANDSHAKE payload."""

    challenge: bytes
    boot_nonce: bytes
    link_nonce: bytes
    boot_counter: int


def encode_frame(
    key: bytes,
    node_id: bytes,
    session_id: bytes,
    sequence: int,
    ftype: int,
    timestamp_ms: int,
    source: int,
    bits: int,
    flags: int,
    samples: int,
    rct_failures: int,
    apt_failures: int,
    payload: bytes,
) -> bytes:
    """Build a complete frame: header, payload, HMAC-SHA256 tag under key."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    if len(node_id) != NODE_ID_SIZE or len(session_id) != SESSION_ID_SIZE:
        raise ValueError("node id and session id are 8 bytes each")
    m = 0xFFFFFFFF
    body = HEADER.pack(
        MAGIC,
        VERSION,
        int(ftype),
        len(payload),
        node_id,
        session_id,
        sequence & m,
        timestamp_ms & m,
        int(source),
        bits,
        flags,
        0,
        samples & m,
        rct_failures & m,
        apt_failures & m,
    ) + bytes(payload)
    return body + hmac.digest(key, body, "sha256")


def derive_session(
    node_key: bytes,
    node_id: bytes,
    challenge: bytes,
    boot_nonce: bytes,
    link_nonce: bytes,
    boot_counter: int,
) -> tuple[bytes, bytes]:
    """The session key and session id of one connection (HKDF-SHA256, RFC 5869).

    salt = challenge | boot nonce | link nonce, IKM = the node key,
    info = "chaosmagnet/2 session" | node id | boot counter (u32 LE); 64 bytes
    of output: the 32-byte session key, then the 8-byte session id.
    """
    info = SESSION_INFO + node_id + struct.pack("<I", boot_counter & 0xFFFFFFFF)
    okm = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=challenge + boot_nonce + link_nonce, info=info
    ).derive(node_key)
    return okm[:32], okm[32:40]


def encode_handshake(
    node_key: bytes,
    node_id: bytes,
    challenge: bytes,
    boot_nonce: bytes,
    link_nonce: bytes,
    boot_counter: int,
    timestamp_ms: int = 0,
) -> bytes:
    """The node's HANDSHAKE frame (used by vectors, tests and the benchmark's frame pump)."""
    payload = HANDSHAKE.pack(challenge, boot_nonce, link_nonce, boot_counter & 0xFFFFFFFF)
    return encode_frame(
        node_key, node_id, NO_SESSION_ID, 0, FrameType.HANDSHAKE, timestamp_ms,
        0, 0, 0, 0, 0, 0, payload,
    )  # fmt: skip


def decode_handshake(payload: bytes) -> HandshakeAnswer | None:
    """The fields of a HANDSHAKE payload, or None when it is malformed."""
    if len(payload) != HANDSHAKE.size:
        return None
    return HandshakeAnswer(*HANDSHAKE.unpack(payload))


def command_tag(session_key: bytes, session_id: bytes, counter: int, text: str) -> bytes:
    """HMAC-SHA256 of one command under the session key (domain, session id, counter, text)."""
    msg = COMMAND_DOMAIN + session_id + struct.pack("<I", counter) + text.encode("ascii")
    return hmac.digest(session_key, msg, "sha256")


def encode_command(session_key: bytes, session_id: bytes, counter: int, text: str) -> bytes:
    """One authenticated command line: ``auth COUNTER TAG COMMAND...`` and LF."""
    words = " ".join(text.split())
    tag = command_tag(session_key, session_id, counter, words)
    return f"auth {counter} {tag.hex()} {words}\n".encode("ascii")


def decode_heartbeat(payload: bytes) -> dict[str, int] | None:
    """The fields of a HEARTBEAT payload, or None when it is malformed."""
    if len(payload) != HEARTBEAT.size:
        return None
    uptime_s, running, failing, _ = HEARTBEAT.unpack(payload)
    return {"uptime_s": uptime_s, "running_mask": running, "failing_mask": failing}
