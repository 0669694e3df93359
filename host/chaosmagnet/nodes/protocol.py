"""The node wire protocol, version 1 (docs/wire-protocol.md), on the host side.

This is an independent implementation of the layout (struct and the standard
library's hmac), not an import of the firmware's framing module, so that the
shared test vectors check one against the other.
"""

from __future__ import annotations

import enum
import hmac
import struct
from dataclasses import dataclass

MAGIC = b"\xc4\x4d\x4e\xa7"
VERSION = 1
HEADER_SIZE = 48
TAG_SIZE = 32
MAX_PAYLOAD = 2048
KEY_SIZE = 32
NODE_ID_SIZE = 8
OVERHEAD = HEADER_SIZE + TAG_SIZE

# magic, version, type, length, node id, boot nonce, sequence, timestamp,
# source, bits, flags, reserved, samples, RCT failures, APT failures
HEADER = struct.Struct("<4sBBH8s8sIIBBBBIII")
assert HEADER.size == HEADER_SIZE

FLAG_HEALTH_FAIL = 0x01
FLAG_CONDITIONED = 0x02


class FrameType(enum.IntEnum):
    """What a frame carries."""

    DATA = 1
    STATUS = 2
    HEARTBEAT = 3
    REPLY = 4


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
    boot_nonce: bytes
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


def encode_frame(
    key: bytes,
    node_id: bytes,
    boot_nonce: bytes,
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
    """Build a complete frame: header, payload, HMAC-SHA256 tag."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    if len(node_id) != NODE_ID_SIZE or len(boot_nonce) != NODE_ID_SIZE:
        raise ValueError("node id and boot nonce are 8 bytes each")
    m = 0xFFFFFFFF
    body = HEADER.pack(
        MAGIC,
        VERSION,
        int(ftype),
        len(payload),
        node_id,
        boot_nonce,
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


def decode_heartbeat(payload: bytes) -> dict[str, int] | None:
    """The fields of a HEARTBEAT payload, or None when it is malformed."""
    if len(payload) != HEARTBEAT.size:
        return None
    uptime_s, running, failing, _ = HEARTBEAT.unpack(payload)
    return {"uptime_s": uptime_s, "running_mask": running, "failing_mask": failing}
