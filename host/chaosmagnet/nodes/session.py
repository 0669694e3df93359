"""The per-connection handshake and session of one node, in one place (sans-IO).

Every transport (a serial port today; BLE and MQTT later) carries the same
exchange: the host sends ``hello CHALLENGE`` with 16 fresh random bytes; the
node answers with a HANDSHAKE frame tagged under its long-term key, carrying
the challenge, its boot nonce, a fresh link nonce and its boot counter (kept
in the board's NVS); both sides derive the session key and session id from
the node key and the nonces (protocol.derive_session).  Every later frame and
every host command of this connection is tagged under the session key, so a
recording of any other connection never verifies here.

The boot counter floor is the highest boot counter the host ever accepted
from this node (kept in the node registry across host restarts): an answer
from an earlier boot is refused.  Sequence numbers are checked in a 64-wide
sliding window in O(1) time and memory, whatever the jump.
"""

from __future__ import annotations

import enum
import secrets

from chaosmagnet.nodes.protocol import (
    CHALLENGE_SIZE,
    KEY_SIZE,
    NODE_ID_SIZE,
    HandshakeAnswer,
    derive_session,
    encode_command,
)

REPLAY_WINDOW = 64  # sequences remembered behind the highest accepted one
_WINDOW_MASK = (1 << REPLAY_WINDOW) - 1
_U32 = 0xFFFFFFFF


class SessionState(str, enum.Enum):
    """Where one connection's handshake stands."""

    IDLE = "idle"  # no hello sent on this connection yet
    HANDSHAKE = "handshake"  # hello sent; waiting for the answer to this challenge
    LINKED = "linked"  # the answer verified: frames are checked under the session key


class HandshakeVerdict(str, enum.Enum):
    """Why a HANDSHAKE frame (already tag-checked under the node key) is refused."""

    STALE = "stale_handshake"  # it answers another challenge: a recording, or a late answer
    OLD_BOOT = "old_boot"  # its boot counter is below the highest accepted


class SequenceVerdict(str, enum.Enum):
    """Why a frame of the live session is refused."""

    REPLAY = "replay"  # already accepted
    REGRESSED = "regressed_sequence"  # older than the window, or never seen but behind


class LinkSession:
    """One node's session on one connection: handshake, session key, window, command counter."""

    def __init__(self, node_id: bytes, node_key: bytes, boot_floor: int = 0) -> None:
        if len(node_id) != NODE_ID_SIZE or len(node_key) != KEY_SIZE:
            raise ValueError("node id is 8 bytes and key 32 bytes")
        self.node_id = bytes(node_id)
        self.node_key = bytes(node_key)
        self.boot_floor = boot_floor
        self.state = SessionState.IDLE
        self.challenge: bytes | None = None
        self.session_key: bytes | None = None
        self.session_id: bytes | None = None
        self.boot_counter: int | None = None
        self.boot_nonce: bytes | None = None
        self.handshakes = 0
        self.highest = -1
        self.seen = 0  # bit i set: sequence highest - i was accepted
        self.lost_frames = 0
        self._command_counter = 0

    def hello(self, challenge: bytes | None = None) -> bytes:
        """Start (or restart) the handshake: the ``hello`` line to send, with a fresh challenge.

        A live session stays valid until the new answer verifies (frames in
        flight are not lost); ``reset()`` ends it when the connection ends.
        """
        challenge = secrets.token_bytes(CHALLENGE_SIZE) if challenge is None else challenge
        if len(challenge) != CHALLENGE_SIZE:
            raise ValueError("a challenge is 16 bytes")
        self.challenge = bytes(challenge)
        if self.state is not SessionState.LINKED:
            self.state = SessionState.HANDSHAKE
        return b"hello " + self.challenge.hex().encode() + b"\n"

    def reset(self) -> None:
        """The connection ended: forget its challenge and session (the boot floor stays)."""
        self.state = SessionState.IDLE
        self.challenge = None
        self.session_key = None
        self.session_id = None

    def accept_handshake(self, answer: HandshakeAnswer) -> HandshakeVerdict | None:
        """Check an answer whose tag verified under the node key; on success start the session."""
        if self.challenge is None or not secrets.compare_digest(answer.challenge, self.challenge):
            return HandshakeVerdict.STALE
        if answer.boot_counter < self.boot_floor:
            return HandshakeVerdict.OLD_BOOT
        self.session_key, self.session_id = derive_session(
            self.node_key,
            self.node_id,
            answer.challenge,
            answer.boot_nonce,
            answer.link_nonce,
            answer.boot_counter,
        )
        self.challenge = None  # answered once; a second answer to it is stale
        self.boot_floor = answer.boot_counter
        self.boot_counter = answer.boot_counter
        self.boot_nonce = answer.boot_nonce
        self.state = SessionState.LINKED
        self.handshakes += 1
        self.highest = -1
        self.seen = 0
        self._command_counter = 0
        return None

    def check_sequence(self, seq: int) -> SequenceVerdict | None:
        """Accept seq once per session; O(1) in time and memory whatever the jump."""
        highest = self.highest
        if seq > highest:
            shift = seq - highest
            self.lost_frames += shift - 1
            # A jump of the window's width or more leaves only this sequence in it.
            self.seen = ((self.seen << shift) & _WINDOW_MASK) | 1 if shift < REPLAY_WINDOW else 1
            self.highest = seq
            return None
        behind = highest - seq
        if behind < REPLAY_WINDOW and self.seen >> behind & 1:
            return SequenceVerdict.REPLAY
        return SequenceVerdict.REGRESSED

    def command(self, text: str) -> bytes:
        """One command line authenticated under the session key, with the next counter."""
        if self.session_key is None or self.session_id is None:
            raise RuntimeError("no session: the handshake has not verified")
        self._command_counter = (self._command_counter + 1) & _U32
        return encode_command(self.session_key, self.session_id, self._command_counter, text)
