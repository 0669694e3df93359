"""The control socket: `mint` draws from a running engine's pool in another process."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaosmagnet.config import Config
from chaosmagnet.control import ControlSeedSource, ControlServer, default_socket_path, home_key, probe
from chaosmagnet.engine import Engine
from chaosmagnet.errors import ControlError, PoolError
from chaosmagnet.minting.host import host_seed_source
from mint_helpers import ScriptedSource, uniform


@pytest.fixture
def socket_path() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="cm-", dir="/tmp"))  # short: AF_UNIX paths are limited
    yield folder / "run" / "control.sock"
    shutil.rmtree(folder, ignore_errors=True)


def _engine(bits_per_sample: float = 2.0, samples: int = 65536, names=("good", "good-b")) -> Engine:
    """An engine whose independent sources (two by default: the key quorum) are credited."""
    engine = Engine(
        [ScriptedSource(name, [], declared_h=bits_per_sample) for name in names],
        Config(min_samples=1024),
    )
    for i, name in enumerate(names):
        engine.ingest(name, uniform(samples, seed=i))
    return engine


def test_status_and_draw(socket_path: Path) -> None:
    async def scenario() -> None:
        engine = _engine()
        server = ControlServer(engine, socket_path)
        await server.start()
        try:
            assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
            assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700
            status = await probe(socket_path)
            assert status is not None and status["pid"] == os.getpid()
            assert status["healthy_credited_bits"] == pytest.approx(512.0)
            assert "seed" not in json.dumps(status)
            draw = await ControlSeedSource(socket_path).draw(
                64, required_bits=384.0, purpose=b"test", timeout=5.0
            )
            assert len(draw.data) == 64 and draw.via == "control-socket"
            assert set(draw.debited) == {"good", "good-b"}  # shares of the capped ledger
            assert sum(draw.debited.values()) == pytest.approx(512.0)
            assert draw.fill_before == 1.0
            assert draw.quorum is not None and sorted(draw.quorum["met_by"]) == ["good", "good-b"]
            assert draw.sources["good"]["state"] == "ok" and len(draw.commitment) == 64
            assert draw.data.hex() not in repr(draw)
            assert engine.pool.credited_bits == pytest.approx(0.0)  # debited in the serving process
            assert server.draws == 1
        finally:
            await server.stop()
        assert not socket_path.exists()

    asyncio.run(scenario())


def test_pool_errors_cross_the_socket(socket_path: Path) -> None:
    async def scenario() -> None:
        engine = _engine(bits_per_sample=0.01, samples=8192)  # ~80 bits
        server = ControlServer(engine, socket_path)
        await server.start()
        try:
            with pytest.raises(PoolError, match="timed out"):
                await ControlSeedSource(socket_path).draw(
                    64, required_bits=384.0, purpose=b"t", timeout=0.3
                )
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_progress_then_draw_when_credit_arrives(socket_path: Path) -> None:
    async def scenario() -> None:
        engine = _engine(bits_per_sample=0.01, samples=8192)
        server = ControlServer(engine, socket_path)
        await server.start()
        seen: list[tuple[float, float]] = []
        try:

            async def top_up() -> None:
                await asyncio.sleep(0.4)
                engine.ingest("good", uniform(65536, seed=1))
                engine.ingest("good-b", uniform(65536, seed=2))

            task = asyncio.create_task(top_up())
            draw = await ControlSeedSource(socket_path).draw(
                32,
                required_bits=384.0,
                purpose=b"t",
                timeout=5.0,
                on_progress=lambda h, n: seen.append((h, n)),
            )
            await task
            assert len(draw.data) == 32 and seen and seen[0][1] == 384.0 and seen[0][0] < 384.0
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_one_pool_per_host_and_stale_sockets(socket_path: Path) -> None:
    async def scenario() -> None:
        first = ControlServer(_engine(), socket_path)
        await first.start()
        try:
            with pytest.raises(ControlError, match="already serves"):
                await ControlServer(_engine(), socket_path).start()
        finally:
            await first.stop()
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(str(socket_path))  # a socket file nobody listens on (a run that died)
        stale.close()
        assert await probe(socket_path) is None
        second = ControlServer(_engine(), socket_path)
        await second.start()
        assert await probe(socket_path) is not None
        await second.stop()

    asyncio.run(scenario())


def test_malformed_requests_are_answered_and_survived(socket_path: Path) -> None:
    async def ask(line: bytes) -> dict:
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
        writer.write(line)
        await writer.drain()
        answer = json.loads(await reader.readline())
        writer.close()
        return answer

    async def scenario() -> None:
        server = ControlServer(_engine(), socket_path)
        await server.start()
        try:
            assert (await ask(b"not json\n"))["error"] == "request"
            assert (await ask(b'{"op": "format-disk"}\n'))["error"] == "request"
            assert (
                await ask(
                    b'{"op": "draw", "n_bytes": 1000000, "required_bits": 1, '
                    b'"timeout": 1, "purpose": ""}\n'
                )
            )["error"] == "request"
            assert (await ask(b'{"op": "draw"}\n'))["error"] == "request"
            assert (await probe(socket_path)) is not None
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_host_seed_source_prefers_a_running_pool(socket_path: Path) -> None:
    async def scenario() -> None:
        server = ControlServer(_engine(), socket_path)
        await server.start()
        try:
            async with host_seed_source(
                socket_path=socket_path, audit_engine_events=False
            ) as source:
                assert isinstance(source, ControlSeedSource)
                draw = await source.draw(32, required_bits=256.0, purpose=b"t", timeout=5.0)
                assert draw.via == "control-socket"
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_default_socket_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHAOS_CONTROL_SOCKET", str(tmp_path / "x.sock"))
    assert default_socket_path() == tmp_path / "x.sock"
    monkeypatch.delenv("CHAOS_CONTROL_SOCKET")
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path / "home-a"))
    key = home_key()
    assert len(key) == 16 and key == home_key(tmp_path / "home-a")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_socket_path() == tmp_path / "chaosmagnet" / key / "control.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_socket_path() == Path("/tmp") / f"chaosmagnet-{os.getuid()}" / key / "control.sock"
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path / "home-b"))
    assert home_key() != key  # one pool per home


def test_the_quorum_reason_crosses_the_socket(socket_path: Path) -> None:
    async def scenario() -> None:
        server = ControlServer(_engine(names=("alone",)), socket_path)
        await server.start()
        said: list[str] = []
        try:
            source = ControlSeedSource(socket_path)
            source.on_waiting = said.append
            with pytest.raises(PoolError, match="quorum: keys need 2 independent"):
                await source.draw(64, required_bits=384.0, purpose=b"t", timeout=0.5)
        finally:
            await server.stop()
        assert said and "1 did (alone)" in said[0]

    asyncio.run(scenario())
