"""Link states through a real simulated node on a pty: waiting before the first frame,
linked while frames arrive, lost when they stop (the simulator frozen), linked again when
they resume, lost when the port goes away; the node's sources are waiting (uncredited)
whenever it is not linked, and the live view, summary and status line say so.  (Unplug
and replug is test_nodes_e2e's reconnect test.)"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from chaosmagnet.cli.view import node_links, render, status_line, summary_lines
from chaosmagnet.config import Config
from chaosmagnet.engine import Engine
from chaosmagnet.nodes.protocol import FrameType, derive_session, encode_frame, encode_handshake
from chaosmagnet.nodes.registry import NodeRecord
from chaosmagnet.nodes.sources import NodeConnection, NodeSource, build_node_sources, resolve_nodes
from rich.console import Console
from nodes_helpers import SimProcess

pytestmark = pytest.mark.slow


async def _until(engine: Engine, predicate, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        snapshot = engine.snapshot()
        if predicate(snapshot):
            return snapshot
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached: {node_links(snapshot)}")
        await asyncio.sleep(0.1)


def _link(snapshot: dict) -> dict:
    (node,) = node_links(snapshot)
    return node


def _adc(snapshot: dict) -> dict:
    return next(s for s in snapshot["sources"] if s["name"] == "node:ls:adc")


def test_link_states_follow_the_node(home: Path) -> None:
    sim = SimProcess(home, "ls", None)
    try:

        async def main() -> None:
            sources = build_node_sources(resolve_nodes(["ls"])[0])
            connection = sources[0].connection  # type: ignore[attr-defined]
            assert isinstance(sources[0], NodeSource)
            connection.stale_seconds = 1.5
            engine = Engine(sources, Config(assessment_enabled=False, min_samples=512))
            assert _link(engine.snapshot())["link_state"] == "waiting"  # not started
            changes: list[tuple[str, str]] = []
            engine.add_listener(
                lambda event, f: changes.append((f["previous"], f["state"]))
                if event == "source_state" and f["source"] == "node:ls:adc" else None
            )
            await engine.start()
            try:
                linked = await _until(engine, lambda s: _link(s)["link_state"] == "linked")
                assert _adc(linked)["state"] == "ok"
                # a node source starts out waiting for its link, never "ok" before it is linked
                assert changes[:2] == [("starting", "waiting"), ("waiting", "ok")], changes
                await _until(engine, lambda s: _adc(s)["credited_bits"] > 0)
                text = _render(linked)
                assert "linked" in text and "nodes" in text
                assert "node ls linked" in status_line(linked)

                os.kill(sim.proc.pid, signal.SIGSTOP)  # frames stop, the pty stays open
                try:
                    lost = await _until(engine, lambda s: _link(s)["link_state"] == "lost")
                finally:
                    os.kill(sim.proc.pid, signal.SIGCONT)
                assert "no frames" in _link(lost)["link_reason"]
                adc = _adc(lost)
                assert adc["state"] == "waiting" and "link lost" in adc["reason"]
                assert all(s["state"] == "waiting" for s in lost["sources"])
                assert engine.healthy_credited_bits() == 0  # its earlier credit is not "healthy"
                assert any("node ls: link lost" in line for line in summary_lines(lost))

                back = await _until(engine, lambda s: _link(s)["link_state"] == "linked")
                assert _adc(back)["state"] == "ok"

                sim.stop()  # unplugged for good: the pty and its link are gone
                gone = await _until(
                    engine,
                    lambda s: _link(s)["link_state"] == "lost"
                    and _link(s)["link_reason"].startswith("not found"),
                )
                assert _adc(gone)["state"] == "waiting"
            finally:
                await engine.stop()

        asyncio.run(main())
    finally:
        sim.stop()


def _render(snapshot: dict) -> str:
    console = Console(width=200, record=True)
    console.print(render(snapshot))
    return console.export_text()


class _ToggleLink:
    """A transport whose openness the test sets; it records what the host writes."""

    def __init__(self, port: str, on_bytes, **callbacks) -> None:  # type: ignore[no-untyped-def]
        self.state = "idle"
        self.connects = 0
        self.is_open = False
        self.written: list[bytes] = []

    def write(self, data: bytes) -> bool:
        self.written.append(data)
        return self.is_open


def test_unanswered_hellos_back_off_and_an_answer_resets_the_interval() -> None:
    """A host that is behind on its input must not restart, every 2 s, sessions whose answer it
    has not read yet: each unanswered hello doubles the wait (2, 4, 8, ... up to 30 s)."""
    from chaosmagnet.nodes.sources import HANDSHAKE_RETRY_MAX_S, HANDSHAKE_RETRY_S

    key, node_id = bytes(range(32)), b"\x0a" * 8
    record = NodeRecord("slow", node_id, key, "um_feathers3", "/dev/null")
    now = [100.0]
    connection = NodeConnection(record, link_factory=_ToggleLink, boot_store=None, clock=lambda: now[0])
    link = connection.link
    link.is_open, link.state, link.connects = True, "linked", 1
    connection._on_connect()
    sent_at = [now[0]]
    for _ in range(400):  # 100 s in steps of 0.25 s, as the watchdog looks
        now[0] += 0.25
        if connection.retry_hello():
            sent_at.append(now[0])
    gaps = [round(b - a) for a, b in zip(sent_at, sent_at[1:])]
    assert gaps[:4] == [2, 4, 8, 16] and max(gaps) <= HANDSHAKE_RETRY_MAX_S + 1
    assert connection.hellos == len(sent_at)

    challenge, boot_nonce, link_nonce = connection.session.challenge, b"\x06" * 8, b"\x08" * 8
    connection._on_bytes(encode_handshake(key, node_id, challenge, boot_nonce, link_nonce, 1))
    assert connection.verified
    now[0] += connection.stale_seconds + 0.5
    connection.refresh_link_state()  # lost to silence: retried after the base interval again
    assert connection.link_state == "lost"
    assert connection.retry_hello()  # the last hello is long past; the next waits 2 x 2 s
    now[0] += HANDSHAKE_RETRY_S + 0.25
    assert not connection.retry_hello()
    now[0] += HANDSHAKE_RETRY_S
    assert connection.retry_hello()  # not the 30 s it had reached before the answer


def test_only_a_verified_handshake_links_and_refresh_leaves_handshake_alone() -> None:
    """Merged trust + ports rule: ``linked`` comes only from this connection's verified
    handshake (an accepted frame of an earlier session does not bring it back after the
    node was lost to silence), and refreshing the link state never changes ``handshake``."""
    key, node_id = bytes(range(32)), b"\x0a" * 8
    record = NodeRecord("tog", node_id, key, "um_feathers3", "/dev/null")
    now = [100.0]
    connection = NodeConnection(
        record, link_factory=_ToggleLink, boot_store=None, clock=lambda: now[0]
    )
    link = connection.link
    assert connection.refresh_link_state() == "waiting" and connection.link_reason == "opening the link"

    link.is_open, link.state, link.connects = True, "linked", 1
    connection._on_connect()
    assert connection.link_state == "handshake" and connection.hellos == 1
    assert link.written and link.written[-1].startswith(b"hello ")
    now[0] += 60  # long silence while the handshake is pending: still handshake
    assert connection.refresh_link_state() == "handshake" and not connection.verified
    forged = encode_frame(key, node_id, b"\x01" * 8, 1, FrameType.STATUS, 0, 0, 0, 0, 0, 0, 0, b"{}")
    connection._on_bytes(forged)  # tagged with the node key, not a session key: dropped
    assert connection.parser.frames_accepted == 0 and connection.link_state == "handshake"

    challenge, boot_nonce, link_nonce = b"\x09" * 16, b"\x06" * 8, b"\x08" * 8
    connection.session.hello(challenge)
    connection._on_bytes(encode_handshake(key, node_id, challenge, boot_nonce, link_nonce, 1))
    assert connection.refresh_link_state() == "linked" and connection.verified
    assert connection.link_reason == ""

    now[0] += connection.stale_seconds + 0.5  # silent while linked: lost
    assert connection.refresh_link_state() == "lost" and not connection.verified
    assert "no frames" in connection.link_reason
    session_key, session_id = derive_session(key, node_id, challenge, boot_nonce, link_nonce, 1)
    late = encode_frame(session_key, node_id, session_id, 1, FrameType.STATUS, 0, 0, 0, 0, 0, 0, 0, b"{}")
    connection._on_bytes(late)  # a frame of the old session is accepted...
    assert connection.parser.frames_accepted == 2
    assert connection.refresh_link_state() == "lost"  # ...but does not link the node again

    challenge2, link_nonce2 = b"\x07" * 16, b"\x05" * 8
    connection.session.hello(challenge2)
    connection._on_bytes(encode_handshake(key, node_id, challenge2, boot_nonce, link_nonce2, 1))
    assert connection.refresh_link_state() == "linked"

    link.is_open, link.state = False, "lost"
    connection._on_disconnect()
    assert connection.refresh_link_state() == "lost" and connection.link_reason == "port closed"
