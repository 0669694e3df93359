"""Sans-IO frame parser: feed it bytes, get back frames and drop events.

It knows nothing about ports or the event loop (so a pty, a real board and a
test's byte string are interchangeable).  Every rejected byte is accounted for
with a reason; it resynchronises on the magic after garbage, and nothing a
device sends raises out of ``feed``.

Rules, in the order they are checked for a candidate frame at a magic:
unknown version, bad length, unknown node, bad tag (HMAC-SHA256 under the
node's key), malformed (authenticated but inconsistent), then the session
check: a frame whose (boot nonce, sequence) was already accepted is a replay,
one below the highest accepted sequence is a regression, and a boot nonce
that was superseded by a newer one is a replay of an old session.  Before the
tag is verified the declared length cannot be trusted, so a rejected
candidate only skips its magic and the search resumes right after it.
"""

from __future__ import annotations

import enum
import hmac
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from chaosmagnet.nodes.protocol import (
    HEADER,
    HEADER_SIZE,
    KEY_SIZE,
    MAGIC,
    MAX_PAYLOAD,
    NODE_ID_SIZE,
    TAG_SIZE,
    VERSION,
    Frame,
    FrameType,
    SourceId,
)

_REPLAY_WINDOW = 64  # sequences remembered behind the highest accepted one
_RETIRED_NONCES = 32  # old boot nonces remembered per node
_FRAME_TYPES = {int(t): t for t in FrameType}
_SOURCES = {int(s): s for s in SourceId}
_MAGIC_LEN = len(MAGIC)


class DropReason(enum.Enum):
    """Why bytes were dropped."""

    BAD_MAGIC = "bad_magic"  # bytes that are not part of any frame (garbage, boot text)
    UNKNOWN_VERSION = "unknown_version"
    BAD_LENGTH = "bad_length"
    UNKNOWN_NODE = "unknown_node"
    BAD_TAG = "bad_tag"
    MALFORMED = "malformed"  # authenticated, but the fields are inconsistent
    REPLAY = "replay"
    REGRESSED_SEQUENCE = "regressed_sequence"
    TRUNCATED = "truncated"  # a partial frame discarded when the link was lost


@dataclass(frozen=True)
class Drop:
    """A drop event: how many bytes, why, and the node when it is known."""

    reason: DropReason
    nbytes: int
    node_id: bytes | None = None


@dataclass
class _Session:
    boot_nonce: bytes
    highest: int
    seen: int = 1  # bit i set: sequence highest - i was accepted
    retired: deque[bytes] = field(default_factory=lambda: deque(maxlen=_RETIRED_NONCES))


class FrameParser:
    """Reassembles, authenticates and de-duplicates frames from one byte stream.

    ``keys`` maps 8-byte node ids to their 32-byte keys.  Counters: ``drops``
    (events per reason), ``dropped_bytes`` (bytes per reason),
    ``frames_accepted``, ``bytes_accepted`` and ``lost_frames`` (sequence gaps).
    """

    def __init__(self, keys: Mapping[bytes, bytes] | None = None) -> None:
        self._keys: dict[bytes, bytes] = {}
        for node_id, key in (keys or {}).items():
            self.add_node(node_id, key)
        self._buf = bytearray()
        self._sessions: dict[bytes, _Session] = {}
        self.drops: Counter[DropReason] = Counter()
        self.dropped_bytes: Counter[DropReason] = Counter()
        self.frames_accepted = 0
        self.bytes_accepted = 0
        self.lost_frames = 0

    def add_node(self, node_id: bytes, key: bytes) -> None:
        """Accept frames from node_id, authenticated under key."""
        if len(node_id) != NODE_ID_SIZE or len(key) != KEY_SIZE:
            raise ValueError("node id is 8 bytes and key 32 bytes")
        self._keys[bytes(node_id)] = bytes(key)

    def remove_node(self, node_id: bytes) -> None:
        """Stop accepting frames from node_id."""
        self._keys.pop(bytes(node_id), None)
        self._sessions.pop(bytes(node_id), None)

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)

    def reset_stream(self) -> list[Drop]:
        """Discard a partial frame (the link was lost); sessions are kept."""
        events: list[Drop] = []
        if self._buf:
            events.append(self._drop(DropReason.TRUNCATED, len(self._buf), None))
            self._buf.clear()
        return events

    def _drop(self, reason: DropReason, nbytes: int, node_id: bytes | None) -> Drop:
        self.drops[reason] += 1
        self.dropped_bytes[reason] += nbytes
        return Drop(reason, nbytes, node_id)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame | Drop]:
        """Add bytes; return the frames completed and the drops found, in stream order."""
        buf = self._buf
        buf += data
        events: list[Frame | Drop] = []
        pos = 0
        end = len(buf)
        with memoryview(buf) as view:
            while end - pos >= _MAGIC_LEN:
                if buf[pos] != 0xC4 or view[pos : pos + _MAGIC_LEN] != MAGIC:
                    found = buf.find(MAGIC, pos)
                    if found < 0:
                        # Keep a tail that could be the start of a magic.
                        keep = _MAGIC_LEN - 1
                        skip_to = end - keep
                        while skip_to < end and not MAGIC.startswith(bytes(view[skip_to:end])):
                            skip_to += 1
                        if skip_to > pos:
                            events.append(self._drop(DropReason.BAD_MAGIC, skip_to - pos, None))
                        pos = skip_to
                        break
                    events.append(self._drop(DropReason.BAD_MAGIC, found - pos, None))
                    pos = found
                if end - pos < HEADER_SIZE:
                    break
                (
                    _,
                    version,
                    ftype,
                    length,
                    node_id,
                    nonce,
                    seq,
                    stamp,
                    source,
                    bits,
                    flags,
                    _,
                    samples,
                    rct,
                    apt,
                ) = HEADER.unpack_from(buf, pos)
                if version != VERSION:
                    events.append(self._drop(DropReason.UNKNOWN_VERSION, _MAGIC_LEN, None))
                    pos += _MAGIC_LEN
                    continue
                if length > MAX_PAYLOAD:
                    events.append(self._drop(DropReason.BAD_LENGTH, _MAGIC_LEN, None))
                    pos += _MAGIC_LEN
                    continue
                total = HEADER_SIZE + length + TAG_SIZE
                if end - pos < total:
                    break
                key = self._keys.get(node_id)
                if key is None:
                    events.append(self._drop(DropReason.UNKNOWN_NODE, _MAGIC_LEN, node_id))
                    pos += _MAGIC_LEN
                    continue
                body_end = pos + HEADER_SIZE + length
                tag = hmac.digest(key, view[pos:body_end], "sha256")
                if not hmac.compare_digest(tag, view[body_end : pos + total]):
                    events.append(self._drop(DropReason.BAD_TAG, _MAGIC_LEN, node_id))
                    pos += _MAGIC_LEN
                    continue
                # Authenticated: the length is trustworthy from here on.
                frame_type = _FRAME_TYPES.get(ftype)
                source_id = _SOURCES.get(source)
                if (
                    frame_type is None
                    or source_id is None
                    or not self._consistent(frame_type, source_id, bits, length)
                ):
                    events.append(self._drop(DropReason.MALFORMED, total, node_id))
                    pos += total
                    continue
                verdict = self._check_session(node_id, nonce, seq)
                if verdict is not None:
                    events.append(self._drop(verdict, total, node_id))
                    pos += total
                    continue
                events.append(
                    Frame(
                        frame_type,
                        node_id,
                        nonce,
                        seq,
                        stamp,
                        source_id,
                        bits,
                        flags,
                        samples,
                        rct,
                        apt,
                        bytes(view[pos + HEADER_SIZE : body_end]),
                    )
                )
                self.frames_accepted += 1
                self.bytes_accepted += total
                pos += total
        if pos:
            del buf[:pos]
        return events

    @staticmethod
    def _consistent(ftype: FrameType, source: SourceId, bits: int, length: int) -> bool:
        if ftype is FrameType.DATA:
            if source is SourceId.NONE or not 1 <= bits <= 16:
                return False
            return length % (2 if bits > 8 else 1) == 0 and length > 0
        return source is SourceId.NONE and bits == 0

    def _check_session(self, node_id: bytes, nonce: bytes, seq: int) -> DropReason | None:
        session = self._sessions.get(node_id)
        if session is None:
            self._sessions[node_id] = _Session(nonce, seq)
            return None
        if nonce != session.boot_nonce:
            if nonce in session.retired:
                return DropReason.REPLAY
            session.retired.append(session.boot_nonce)
            session.boot_nonce = nonce
            session.highest = seq
            session.seen = 1
            return None
        if seq > session.highest:
            shift = seq - session.highest
            self.lost_frames += shift - 1
            session.seen = ((session.seen << shift) | 1) & ((1 << _REPLAY_WINDOW) - 1)
            session.highest = seq
            return None
        behind = session.highest - seq
        if behind < _REPLAY_WINDOW and session.seen >> behind & 1:
            return DropReason.REPLAY
        return DropReason.REGRESSED_SEQUENCE
