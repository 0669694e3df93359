"""Sans-IO frame parser: feed it bytes, get back frames and drop events.

It knows nothing about ports or the event loop (so a pty, a real board and a
test's byte string are interchangeable).  Every rejected byte is accounted for
with a reason; it resynchronises on the magic after garbage, and nothing a
device sends raises out of ``feed``.

One parser serves one connection.  Each node it knows has a LinkSession
(chaosmagnet.nodes.session): the handshake state, the session key and the
sequence window.  Rules, in the order they are checked for a candidate frame
at a magic: unknown version, bad length, unknown node; then for a HANDSHAKE
frame the tag under the node key, and the session's verdict (an answer to
another challenge is ``stale_handshake``, one from an earlier boot
``old_boot``); for every other frame ``no_session`` before the handshake
verified, ``other_session`` when the frame names another session (a
recording of another connection), the tag under the session key, malformed,
then the sequence window (``replay``, ``regressed_sequence``).  Until a tag
verifies the declared length cannot be trusted, so such a rejected candidate
only skips its magic and the search resumes right after it.
"""

from __future__ import annotations

import enum
import hmac
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from chaosmagnet.nodes.protocol import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_PAYLOAD,
    TAG_SIZE,
    VERSION,
    Frame,
    FrameType,
    SourceId,
    decode_handshake,
)
from chaosmagnet.nodes.session import LinkSession, SessionState

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
    NO_SESSION = "no_session"  # a session frame before this connection's handshake verified
    OTHER_SESSION = "other_session"  # tagged for another session: a recording, an old connection
    STALE_HANDSHAKE = "stale_handshake"  # a handshake answering another challenge
    OLD_BOOT = "old_boot"  # a handshake from a boot before the highest accepted one
    REPLAY = "replay"
    REGRESSED_SEQUENCE = "regressed_sequence"
    TRUNCATED = "truncated"  # a partial frame discarded when the link was lost


@dataclass(frozen=True)
class Drop:
    """A drop event: how many bytes, why, and the node when it is known."""

    reason: DropReason
    nbytes: int
    node_id: bytes | None = None


class FrameParser:
    """Reassembles, authenticates and de-duplicates the frames of one connection.

    ``keys`` maps 8-byte node ids to their 32-byte keys (``boot_floors`` to the
    highest boot counter accepted so far).  ``session(node_id)`` is the node's
    LinkSession: its ``hello()`` starts the handshake.  Counters: ``drops``
    (events per reason), ``dropped_bytes`` (bytes per reason),
    ``frames_accepted``, ``bytes_accepted`` and ``lost_frames`` (sequence gaps).
    """

    def __init__(
        self,
        keys: Mapping[bytes, bytes] | None = None,
        boot_floors: Mapping[bytes, int] | None = None,
    ) -> None:
        self._sessions: dict[bytes, LinkSession] = {}
        for node_id, key in (keys or {}).items():
            self.add_node(node_id, key, (boot_floors or {}).get(node_id, 0))
        self._buf = bytearray()
        self.drops: Counter[DropReason] = Counter()
        self.dropped_bytes: Counter[DropReason] = Counter()
        self.frames_accepted = 0
        self.bytes_accepted = 0

    def add_node(self, node_id: bytes, key: bytes, boot_floor: int = 0) -> LinkSession:
        """Accept frames from node_id, whose long-term key is key; returns its session."""
        session = LinkSession(node_id, key, boot_floor)
        self._sessions[session.node_id] = session
        return session

    def remove_node(self, node_id: bytes) -> None:
        """Stop accepting frames from node_id."""
        self._sessions.pop(bytes(node_id), None)

    def session(self, node_id: bytes) -> LinkSession:
        """The handshake and session state of a known node."""
        return self._sessions[bytes(node_id)]

    @property
    def lost_frames(self) -> int:
        """Frames missing from sequence gaps, over every session of this parser."""
        return sum(s.lost_frames for s in self._sessions.values())

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)

    def reset_stream(self) -> list[Drop]:
        """The connection ended: discard a partial frame and every session (boot floors stay)."""
        events: list[Drop] = []
        if self._buf:
            events.append(self._drop(DropReason.TRUNCATED, len(self._buf), None))
            self._buf.clear()
        for session in self._sessions.values():
            session.reset()
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
        sessions = self._sessions
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
                    session_id,
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
                session = sessions.get(node_id)
                if session is None:
                    events.append(self._drop(DropReason.UNKNOWN_NODE, _MAGIC_LEN, node_id))
                    pos += _MAGIC_LEN
                    continue
                handshake = ftype == FrameType.HANDSHAKE
                if handshake:
                    key = session.node_key
                else:
                    key = session.session_key  # type: ignore[assignment]
                    if key is None:
                        events.append(self._drop(DropReason.NO_SESSION, _MAGIC_LEN, node_id))
                        pos += _MAGIC_LEN
                        continue
                    if session_id != session.session_id:
                        events.append(self._drop(DropReason.OTHER_SESSION, _MAGIC_LEN, node_id))
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
                payload = bytes(view[pos + HEADER_SIZE : body_end])
                reason: DropReason | None = None
                if handshake:
                    answer = decode_handshake(payload)
                    if answer is None:
                        reason = DropReason.MALFORMED
                    else:
                        verdict = session.accept_handshake(answer)
                        reason = None if verdict is None else DropReason(verdict.value)
                else:
                    seq_verdict = session.check_sequence(seq)
                    reason = None if seq_verdict is None else DropReason(seq_verdict.value)
                if reason is not None:
                    events.append(self._drop(reason, total, node_id))
                    pos += total
                    continue
                events.append(
                    Frame(
                        frame_type,
                        node_id,
                        session_id,
                        seq,
                        stamp,
                        source_id,
                        bits,
                        flags,
                        samples,
                        rct,
                        apt,
                        payload,
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


__all__ = ["Drop", "DropReason", "FrameParser", "SessionState"]
