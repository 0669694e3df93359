"""The host's frame parser and encoder against the shared vectors: whole frames,
one byte at a time, garbage, every drop reason, the handshake and session state
machine (hypothesis), and a sequence jump that costs nothing."""

from __future__ import annotations

import os
import random

import pytest
from chaosmagnet.nodes.parser import Drop, DropReason, FrameParser
from chaosmagnet.nodes.protocol import (
    FrameType,
    SourceId,
    derive_session,
    encode_frame,
    encode_handshake,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from nodes_helpers import load_vectors

VECTORS = load_vectors()
FRAMES = VECTORS["frames"]
STREAMS = VECTORS["streams"]
KEY = bytes.fromhex(FRAMES[0]["key"])
NODE_ID = bytes.fromhex(FRAMES[0]["node_id"])
CHALLENGE = bytes(range(16))
BOOT_NONCE = b"\x11" * 8
LINK_NONCE = b"\x22" * 8
SESSION_KEY, SESSION_ID = derive_session(KEY, NODE_ID, CHALLENGE, BOOT_NONCE, LINK_NONCE, 3)
HANDSHAKE = encode_handshake(KEY, NODE_ID, CHALLENGE, BOOT_NONCE, LINK_NONCE, 3)


def _describe(events: list) -> list[str]:
    out = []
    for e in events:
        if isinstance(e, Drop):
            out.append(f"drop:{e.reason.value}:{e.nbytes}")
        elif e.type is FrameType.HANDSHAKE:
            out.append("handshake")
        else:
            out.append(f"frame:{e.sequence}")
    return out


def _linked_parser() -> FrameParser:
    """A parser whose node answered its challenge (the module's handshake)."""
    parser = FrameParser({NODE_ID: KEY})
    parser.session(NODE_ID).hello(CHALLENGE)
    assert _describe(parser.feed(HANDSHAKE)) == ["handshake"]
    return parser


def _stream_parser(vector: dict) -> FrameParser:
    parser = FrameParser({NODE_ID: KEY}, {NODE_ID: vector["boot_floor"]})
    if vector["challenge"] is not None:
        parser.session(NODE_ID).hello(bytes.fromhex(vector["challenge"]))
    return parser


@pytest.mark.parametrize("vector", FRAMES, ids=[v["name"] for v in FRAMES])
def test_encoder_reproduces_vector(vector: dict) -> None:
    frame = encode_frame(
        bytes.fromhex(vector["key"]),
        bytes.fromhex(vector["node_id"]),
        bytes.fromhex(vector["session_id"]),
        vector["sequence"],
        vector["type"],
        vector["timestamp_ms"],
        vector["source"],
        vector["bits"],
        vector["flags"],
        vector["samples"],
        vector["rct_failures"],
        vector["apt_failures"],
        bytes.fromhex(vector["payload"]),
    )
    assert frame.hex() == vector["frame"]


@pytest.mark.parametrize("vector", FRAMES, ids=[v["name"] for v in FRAMES])
def test_parser_decodes_vector_fields(vector: dict) -> None:
    parser = FrameParser({NODE_ID: KEY})
    session = parser.session(NODE_ID)
    # the frame vectors are tagged under "key" with session id "session_id": install that session
    session.session_key, session.session_id = KEY, bytes.fromhex(vector["session_id"])
    (frame,) = parser.feed(bytes.fromhex(vector["frame"]))
    assert not isinstance(frame, Drop)
    assert frame.type is FrameType(vector["type"])
    assert frame.source is SourceId(vector["source"])
    assert (frame.sequence, frame.timestamp_ms, frame.bits, frame.flags) == (
        vector["sequence"],
        vector["timestamp_ms"],
        vector["bits"],
        vector["flags"],
    )
    assert (frame.samples, frame.rct_failures, frame.apt_failures) == (
        vector["samples"],
        vector["rct_failures"],
        vector["apt_failures"],
    )
    assert frame.payload.hex() == vector["payload"]
    assert frame.session_id.hex() == vector["session_id"]


@pytest.mark.parametrize("vector", STREAMS, ids=[v["name"] for v in STREAMS])
def test_stream_vectors_whole(vector: dict) -> None:
    parser = _stream_parser(vector)
    assert _describe(parser.feed(bytes.fromhex(vector["stream"]))) == vector["events"]


@pytest.mark.parametrize("vector", STREAMS, ids=[v["name"] for v in STREAMS])
def test_stream_vectors_byte_by_byte(vector: dict) -> None:
    """Fed one byte at a time the parser reports the same frames and drop reasons."""
    parser = _stream_parser(vector)
    events = []
    for b in bytes.fromhex(vector["stream"]):
        events += parser.feed(bytes([b]))
    frames = [e for e in _describe(events) if not e.startswith("drop")]
    assert frames == [e for e in vector["events"] if not e.startswith("drop")]
    reasons = {e.split(":")[1] for e in _describe(events) if e.startswith("drop")}
    assert reasons == {e.split(":")[1] for e in vector["events"] if e.startswith("drop")}
    dropped = sum(e.nbytes for e in events if isinstance(e, Drop))
    assert dropped == sum(int(e.split(":")[2]) for e in vector["events"] if e.startswith("drop"))


def test_every_drop_reason_is_covered_by_vectors() -> None:
    seen = {e.split(":")[1] for v in STREAMS for e in v["events"] if e.startswith("drop")}
    assert seen == {r.value for r in DropReason} - {"truncated"}


def _stream(n: int, seed: int = 1) -> tuple[list[bytes], bytes]:
    rnd = random.Random(seed)
    nonce = bytes(rnd.randrange(256) for _ in range(8))
    del nonce  # frames of the module's session
    frames = [
        encode_frame(
            SESSION_KEY,
            NODE_ID,
            SESSION_ID,
            i,
            1,
            i,
            2,
            8,
            2,
            i * 64,
            0,
            0,
            bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))),
        )
        for i in range(n)
    ]
    return frames, b"".join(frames)


def test_garbage_between_frames_resynchronises() -> None:
    frames, _ = _stream(40)
    rnd = random.Random(5)
    data = bytearray()
    garbage_total = 0
    for frame in frames:
        junk = os.urandom(rnd.randrange(0, 100)).replace(b"\xc4", b"\x00")
        garbage_total += len(junk)
        data += junk + frame
    parser = _linked_parser()
    events = []
    for i in range(0, len(data), 97):
        events += parser.feed(data[i : i + 97])
    got = [e for e in events if not isinstance(e, Drop)]
    assert [f.sequence for f in got] == list(range(40))
    assert parser.dropped_bytes[DropReason.BAD_MAGIC] == garbage_total
    assert set(parser.drops) <= {DropReason.BAD_MAGIC}


def test_truncated_frame_on_link_loss_then_recovery() -> None:
    frames, _ = _stream(3)
    parser = _linked_parser()
    assert [e.sequence for e in parser.feed(frames[0] + frames[1][:50])] == [0]
    (drop,) = parser.reset_stream()
    assert drop.reason is DropReason.TRUNCATED and drop.nbytes == 50
    # a new connection: the old session's frames no longer count, a new handshake does
    assert _describe(parser.feed(frames[2])) == ["drop:no_session:4", "drop:bad_magic:" + str(len(frames[2]) - 4)]
    parser.session(NODE_ID).hello(CHALLENGE)
    assert _describe(parser.feed(HANDSHAKE + frames[2])) == ["handshake", "frame:2"]
    assert parser.lost_frames == 2  # sequences 0 and 1 of the new session never arrived


def test_buffer_stays_bounded_on_endless_garbage() -> None:
    parser = _linked_parser()
    for _ in range(200):
        parser.feed(os.urandom(4096).replace(b"\xc4", b"\x01"))
        assert parser.buffered < 4
    assert parser.frames_accepted == 1  # the handshake only


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(1, 500), max_size=20))
def test_parser_never_raises_on_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    """Random bytes, with real frames spliced in, cut anywhere: no exception, frames still found."""
    frames, _ = _stream(2, seed=len(data))
    stream = data[: len(data) // 2] + frames[0] + data[len(data) // 2 :] + frames[1]
    parser = _linked_parser()
    handshake_bytes = parser.bytes_accepted
    events = []
    pos = 0
    for cut in cuts + [len(stream)]:
        events += parser.feed(stream[pos : pos + cut])
        pos += cut
    events += parser.feed(stream[pos:])
    sequences = [e.sequence for e in events if not isinstance(e, Drop)]
    assert 1 in sequences  # the last frame always survives garbage before it
    accounted = (
        sum(e.nbytes for e in events if isinstance(e, Drop))
        + parser.bytes_accepted
        - handshake_bytes
        + parser.buffered
    )
    assert accounted == len(stream)


def test_replay_window_and_lost_frames() -> None:
    frames, _ = _stream(100)
    parser = _linked_parser()
    order = frames[:10] + frames[12:20] + [frames[15], frames[11], frames[3]]
    events = parser.feed(b"".join(order))
    assert [e.reason for e in events if isinstance(e, Drop)] == [
        DropReason.REPLAY,
        DropReason.REGRESSED_SEQUENCE,
        DropReason.REPLAY,
    ]
    assert parser.lost_frames == 2
