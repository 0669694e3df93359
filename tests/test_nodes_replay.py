"""A recording of a real (simulated) node's stream, taken from its pty, earns nothing:

(a) played into a freshly started host with the same registry: 0 bits credited,
    0 samples, every byte dropped with a reason;
(b) played into a running host's live link while the real node streams through a
    man-in-the-middle on the cable: the live node's credit keeps rising, the live
    session is never displaced, the replayed frames are dropped with reasons.

Also: the boot counter a host accepted is kept in the registry, and the
authenticated reboot command brings the node back with the next boot counter.
"""

from __future__ import annotations

import asyncio
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from chaosmagnet.config import Config
from chaosmagnet.engine import Engine
from chaosmagnet.nodes.link import SerialLink
from chaosmagnet.nodes.ports import process_start
from chaosmagnet.nodes.registry import NodeRecord, NodeRegistry
from chaosmagnet.nodes.simulator import PtyEndpoint
from chaosmagnet.nodes.sources import NodeConnection, NodeSource, build_node_sources
from nodes_helpers import SimProcess, simulator_fixture

pytestmark = pytest.mark.slow

REPLAY_REASONS = {"stale_handshake", "other_session", "no_session"}


sim = simulator_fixture("victim")


def _held_here(record: NodeRecord, link: Path) -> NodeRecord:
    """The node on a pty this test process holds (as its simulator would: the port guard
    opens a simulated node's pty only while the process registered with it holds it)."""
    pid = os.getpid()
    return replace(record, link=str(link), simulator_pid=pid, simulator_started=process_start(pid))


def _engine(record: NodeRecord, factory: Callable[..., Any] = SerialLink) -> Engine:
    sources = build_node_sources(record, link_factory=factory)
    return Engine(sources, Config(assessment_enabled=False, min_samples=512, recovery_samples=10**5))


def _connection(engine: Engine) -> NodeConnection:
    for runtime in engine._runtimes.values():
        if isinstance(runtime.source, NodeSource):
            return runtime.source.connection
    raise AssertionError("no node source")


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            await asyncio.sleep(0.01)


def _credit(engine: Engine, label: str) -> float:
    states = engine.source_states()
    return sum(states[f"node:{label}:{s}"]["credited_bits"] for s in ("adc", "jitter", "rng"))


def _samples(engine: Engine, label: str) -> int:
    states = engine.source_states()
    return sum(states[f"node:{label}:{s}"]["samples"] for s in ("adc", "jitter", "rng"))


def _record_stream(record: NodeRecord) -> bytes:
    """Harvest the node for a while with a tap on the raw bytes its pty delivers."""
    recording = bytearray()

    def tapped(port: str, on_bytes: Callable[[bytes], None], **kw: Any) -> SerialLink:
        def tap(data: bytes) -> None:
            recording.extend(data)
            on_bytes(data)

        return SerialLink(port, tap, **kw)

    async def main() -> None:
        engine = _engine(record, tapped)
        await engine.start()
        try:
            await _until(
                lambda: _credit(engine, record.label) > 300 and _samples(engine, record.label) > 8000,
                "the recorded host's credit",
            )
        finally:
            await engine.stop()

    asyncio.run(main())
    return bytes(recording)


class _Relay(threading.Thread):
    """The cable, cut and spliced: node pty <-> this relay <-> a pty the host opens.

    ``inject(data)`` sends extra bytes to the host between the node's own chunks.
    """

    def __init__(self, node_port: Path, host_port: Path) -> None:
        super().__init__(daemon=True)
        self.node_fd = os.open(os.readlink(node_port), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.node_fd)
        self.host = PtyEndpoint(host_port)
        self._inject: list[bytes] = []
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def inject(self, data: bytes) -> None:
        with self._lock:
            self._inject.append(data)

    def _write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._halt.is_set():
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                select.select([], [fd], [], 0.05)
                continue
            except OSError:
                return
            view = view[n:]

    def run(self) -> None:
        host = self.host.master
        while not self._halt.is_set():
            readable, _, _ = select.select([self.node_fd, host], [], [], 0.02)
            for fd in readable:
                try:
                    data = os.read(fd, 65536)
                except (BlockingIOError, OSError):
                    continue
                self._write_all(host if fd == self.node_fd else self.node_fd, data)
            with self._lock:
                pending, self._inject = self._inject, []
            for data in pending:
                self._write_all(host, data)

    def close(self) -> None:
        self._halt.set()
        self.join(5)
        os.close(self.node_fd)
        self.host.close()


def test_recorded_stream_earns_nothing_fresh_or_live(home: Path, sim: SimProcess) -> None:
    record = NodeRegistry().get("victim")
    assert record.boot_counter == 0
    recording = _record_stream(record)
    assert len(recording) > 8_000
    # the accepted boot counter is now in the registry, written atomically (mode 0600)
    record = NodeRegistry().get("victim")
    assert record.boot_counter == 1
    assert (home / "keys" / "nodes.json").stat().st_mode & 0o777 == 0o600

    # (a) a freshly started host, same registry, on a port that plays the recording back
    port = home / "playback"
    endpoint = PtyEndpoint(port)

    async def fresh_host() -> None:
        engine = _engine(_held_here(record, port))
        await engine.start()
        try:
            connection = _connection(engine)
            await _until(lambda: connection.hellos >= 1, "the host's hello")
            await _write_all(endpoint.master, recording)  # after the hello, as an attacker would
            await _until(
                lambda: sum(connection.parser.dropped_bytes.values())
                + connection.parser.bytes_accepted
                >= len(recording) - 4,
                "the recording to be consumed",
            )
            await asyncio.sleep(0.5)
            assert _credit(engine, "victim") == 0
            assert _samples(engine, "victim") == 0
            assert connection.parser.frames_accepted == 0
            assert connection.link_state == "handshake"
            drops = {r.value: n for r, n in connection.parser.drops.items()}
            assert drops.get("stale_handshake", 0) >= 1 and drops.get("no_session", 0) > 10
            assert set(drops) <= REPLAY_REASONS | {"bad_magic"}
        finally:
            await engine.stop()

    try:
        asyncio.run(fresh_host())
    finally:
        endpoint.close()

    # (b) a running host's live link, with the recording spliced in while the node streams
    relay = _Relay(sim.link, home / "spliced")
    relay.start()

    async def live_host() -> None:
        engine = _engine(_held_here(record, home / "spliced"))
        await engine.start()
        try:
            connection = _connection(engine)
            await _until(lambda: _credit(engine, "victim") > 100, "live credit")
            assert connection.link_state == "linked" and connection.session.handshakes == 1
            live_key = connection.session.session_key
            before = _credit(engine, "victim")
            for i in range(0, len(recording), 4096):
                relay.inject(recording[i : i + 4096])
                await asyncio.sleep(0.01)
            await _until(lambda: _credit(engine, "victim") > before + 500, "credit to keep rising")
            drops = {r.value: n for r, n in connection.parser.drops.items()}
            assert drops.get("stale_handshake", 0) >= 1, drops
            assert drops.get("other_session", 0) > 10, drops
            assert connection.link_state == "linked"
            assert connection.session.handshakes == 1  # never displaced
            assert connection.session.session_key == live_key
            summary = connection.summary()
            assert summary["drops"]["other_session"] == drops["other_session"]
        finally:
            await engine.stop()

    try:
        asyncio.run(live_host())
    finally:
        relay.close()


def test_authenticated_reboot_brings_the_next_boot(home: Path, sim: SimProcess) -> None:
    record = NodeRegistry().get("victim")

    async def main() -> None:
        engine = _engine(record)
        await engine.start()
        try:
            connection = _connection(engine)
            await _until(lambda: connection.verified and connection.status, "the handshake")
            assert connection.session.boot_counter == 1
            # an unauthenticated reboot written to the port is refused by the node
            assert connection.link.write(b"reboot\n")
            await _until(
                lambda: any("unauthenticated" in r for r in connection.replies), "the refusal"
            )
            assert connection.link.connects == 1
            assert connection.send_command("reboot")
            await _until(lambda: connection.link.connects >= 2, "the port to come back")
            await _until(lambda: connection.session.boot_counter == 2, "the next boot's handshake")
            samples = _samples(engine, "victim")
            await _until(lambda: _samples(engine, "victim") > samples + 1000, "streaming again")
        finally:
            await engine.stop()

    asyncio.run(main())
    assert NodeRegistry().get("victim").boot_counter == 2


def test_silent_linked_node_is_handshaken_again(home: Path, sim: SimProcess) -> None:
    """A node that falls silent while linked (here: told `quiet`) gets a fresh hello after
    SILENCE_S: a new session, and samples flow again."""
    record = NodeRegistry().get("victim")

    async def main() -> None:
        engine = _engine(record)
        await engine.start()
        try:
            connection = _connection(engine)
            await _until(lambda: connection.verified and connection.status, "the handshake")
            first_key = connection.session.session_key
            assert connection.send_command("quiet")
            await _until(lambda: "ok quiet" in connection.replies, "quiet")
            await _until(lambda: connection.session.handshakes == 2, "a second handshake")
            assert connection.session.session_key != first_key
            assert connection.link.connects == 1  # same connection, new session
            samples = _samples(engine, "victim")
            await _until(lambda: _samples(engine, "victim") > samples + 1000, "streaming again")
        finally:
            await engine.stop()

    asyncio.run(main())
