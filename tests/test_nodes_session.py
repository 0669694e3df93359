"""The handshake and session state machine, host (parser + LinkSession) against the
real firmware Node (firmware/lib under CPython): hypothesis drives hellos, lost
hellos, commands, replays of every earlier byte, reconnects, reboots and an
answer from an old boot; a sequence jump of 2^32-1 allocates nothing in proportion."""

from __future__ import annotations

import os
import tracemalloc

from chaosmagnet.nodes.parser import Drop, DropReason, FrameParser
from chaosmagnet.nodes.protocol import (
    FrameType,
    derive_session,
    encode_frame,
    encode_handshake,
)
from chaosmagnet.nodes.session import LinkSession, SessionState
from chaosmagnet.nodes.simulator import firmware_modules
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

KEY = bytes(range(32))
NODE_ID = bytes.fromhex("0102030405060708")
CONFIG = {
    "node_id": NODE_ID.hex(),
    "key": KEY.hex(),
    "board": "test_board",
    "label": "fsm",
    "sources": {"jitter": {"rate": 100, "h": 0.5, "block": 8}},
}
NODE_CLASS = firmware_modules()["chaosnode.node"].Node


class _Hal:
    """Just enough HAL for frames on demand: random nonces, a fixed clock, a boot counter."""

    def __init__(self, boots: int) -> None:
        self.boots = boots

    def fill_jitter(self, buf, n):  # type: ignore[no-untyped-def]
        buf[:n] = os.urandom(n)

    def ticks_ms(self) -> int:
        return 0

    def ticks_diff(self, a: int, b: int) -> int:
        return a - b

    def boot_nonce(self) -> bytes:
        return os.urandom(8)

    def boot_counter(self) -> int:
        return self.boots


def test_sequence_jump_to_max_allocates_nothing_in_proportion() -> None:
    """Sequence 0, then 2^32-1: the old bitmap shift allocated ~1.1 GiB; now a few objects."""
    challenge = bytes(16)
    sk, sid = derive_session(KEY, NODE_ID, challenge, b"\x01" * 8, b"\x02" * 8, 1)
    parser = FrameParser({NODE_ID: KEY})
    parser.session(NODE_ID).hello(challenge)
    parser.feed(encode_handshake(KEY, NODE_ID, challenge, b"\x01" * 8, b"\x02" * 8, 1))
    first = encode_frame(sk, NODE_ID, sid, 0, 1, 0, 3, 8, 0, 1, 0, 0, b"\x00" * 8)
    jump = encode_frame(sk, NODE_ID, sid, 0xFFFFFFFF, 1, 0, 3, 8, 0, 2, 0, 0, b"\x01" * 8)
    assert len(parser.feed(first)) == 1
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        events = parser.feed(jump)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [e.sequence for e in events if not isinstance(e, Drop)] == [0xFFFFFFFF]
    assert peak < 64 * 1024, f"{peak} bytes allocated for one frame"
    assert parser.lost_frames == 0xFFFFFFFF - 1
    assert [e.reason for e in parser.feed(first)] == [DropReason.REGRESSED_SEQUENCE]


def test_window_after_big_jump_still_catches_replays() -> None:
    """Sequences only rise; the window tells a replay from a regression after any jump."""
    session = LinkSession(NODE_ID, KEY)
    big = 5 + 10**9
    assert [session.check_sequence(s) for s in (5, 6, big - 1, big)] == [None] * 4
    assert session.check_sequence(big).value == "replay"
    assert session.check_sequence(big - 1).value == "replay"
    assert session.check_sequence(big - 2).value == "regressed_sequence"  # never seen
    assert session.check_sequence(6).value == "regressed_sequence"  # far behind the window
    assert session.check_sequence(big + 1) is None
    assert session.lost_frames == 5 + (big - 1 - 6 - 1)  # 0..4, then 7..big-2


class HandshakeMachine(RuleBasedStateMachine):
    """A host connection and the firmware node; every byte ever sent is a recording."""

    def __init__(self) -> None:
        super().__init__()
        self.boots = 3
        self.node = self._boot(self.boots)
        self.parser = FrameParser({NODE_ID: KEY}, {NODE_ID: 2})
        self.session = self.parser.session(NODE_ID)
        self.recordings: list[bytes] = []
        self.commands: list[bytes] = []
        self.linked = False  # the model's view: a handshake of this connection verified
        self.floor = 2
        self.pings_answered = 0
        self.heartbeats = 0

    def _boot(self, boots: int):  # type: ignore[no-untyped-def]
        out = bytearray()
        node = NODE_CLASS(_Hal(boots), CONFIG, out.extend)
        node.out = out  # the bytes it wrote and the host has not read yet
        return node

    def _deliver(self) -> list:
        data = bytes(self.node.out)
        self.node.out.clear()
        if data:
            self.recordings.append(data)
        events = self.parser.feed(data)
        self.heartbeats += sum(
            1 for e in events if not isinstance(e, Drop) and e.type is FrameType.HEARTBEAT
        )
        return events

    @rule()
    def hello(self) -> None:
        self.node.feed_commands(self.session.hello())
        events = self._deliver()
        kinds = [e.type for e in events if not isinstance(e, Drop)]
        assert kinds[:2] == [FrameType.HANDSHAKE, FrameType.STATUS], events
        self.linked = True
        self.floor = self.boots

    @rule()
    def hello_lost_on_the_way(self) -> None:
        self.session.hello()  # the node never hears it: the live session, if any, stays valid

    @precondition(lambda self: self.linked)
    @rule()
    def ping(self) -> None:
        line = self.session.command("ping")
        self.commands.append(line)
        self.node.feed_commands(line)
        before = self.heartbeats
        self._deliver()
        assert self.heartbeats == before + 1

    @precondition(lambda self: self.commands)
    @rule(data=st.data())
    def replay_a_command(self, data: st.DataObject) -> None:
        line = data.draw(st.sampled_from(self.commands))
        before = self.heartbeats
        self.node.feed_commands(line)
        self._deliver()
        assert self.heartbeats == before  # refused: replayed, or from another session

    @precondition(lambda self: self.recordings)
    @rule(data=st.data())
    def replay_a_recording(self, data: st.DataObject) -> None:
        """Bytes from any earlier moment (this session, older ones, older boots) injected."""
        recording = data.draw(st.sampled_from(self.recordings))
        accepted = self.parser.frames_accepted
        key, state = self.session.session_key, self.session.state
        self.parser.feed(recording)
        assert self.parser.frames_accepted == accepted, "a recording was accepted"
        assert (self.session.session_key, self.session.state) == (key, state), "it displaced"

    @rule()
    def reconnect(self) -> None:
        self.parser.reset_stream()
        self.linked = False

    @precondition(lambda self: self.linked)
    @rule()
    def reboot(self) -> None:
        self.node.feed_commands(self.session.command("reboot"))
        self._deliver()
        assert self.node.reboot_requested
        self.boots += 1
        self.node = self._boot(self.boots)
        self.parser.reset_stream()
        self.linked = False

    @rule(back=st.integers(1, 3))
    def answer_from_an_old_boot(self, back: int) -> None:
        """Someone holding an old image of the board (same key, lower counter) answers."""
        old = self._boot(max(self.floor - back, 0))  # the floor starts at 2
        line = self.session.hello()
        old.feed_commands(line)
        events = self.parser.feed(bytes(old.out))
        reasons = [e.reason for e in events if isinstance(e, Drop)]
        assert DropReason.OLD_BOOT in reasons
        assert not [e for e in events if not isinstance(e, Drop) and e.type is FrameType.HANDSHAKE]

    @invariant()
    def floor_never_drops(self) -> None:
        assert self.session.boot_floor == self.floor

    @invariant()
    def linked_only_after_a_verified_answer(self) -> None:
        if self.linked:
            assert self.session.state is SessionState.LINKED
        if self.session.state is SessionState.IDLE:
            assert self.session.session_key is None


TestHandshakeMachine = HandshakeMachine.TestCase
TestHandshakeMachine.settings = settings(
    max_examples=1500,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
