"""Shared set-up for the dashboard tests: an engine on the real local sources with the
dashboard beside it, in one event loop, keys and logs under the test's folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from chaosmagnet.config import Config
from chaosmagnet.dashboard import DashboardServer, ListenAddress, serve_dashboard
from chaosmagnet.engine import Engine
from chaosmagnet.eventlog import JsonLineLog
from chaosmagnet.minting.sealing import ScryptParams
from chaosmagnet.sources.local import CpuJitterSource, OsRngSource, SystemSource

TOKEN = "test-token-" + "x" * 32
FAST_SCRYPT = ScryptParams(n=2**10, r=8, p=1)  # tests only: real keys use the strong default


def local_sources() -> list:
    """The three local sources every machine has (they credit within a second or two)."""
    return [OsRngSource(OsRngSource.DEFAULT_RATE), CpuJitterSource(), SystemSource()]


@asynccontextmanager
async def running_dashboard(
    home: Path, *, environ: dict[str, str] | None = None, sources: list | None = None
) -> AsyncIterator[tuple[Engine, DashboardServer]]:
    """Start an engine and its dashboard on 127.0.0.1 (a free port); stop both afterwards.

    ``environ`` is what the Mint service sees as the server's environment
    (default: empty, so a CHAOS_PASSPHRASE of the machine running the tests never leaks in).
    """
    engine = Engine(
        sources or local_sources(), Config(), health_log=JsonLineLog(home / "logs" / "health.jsonl")
    )
    await engine.start()
    server = await serve_dashboard(
        engine,
        ListenAddress("127.0.0.1", 0),
        keys_dir=home / "keys",
        audit_path=home / "logs" / "audit.jsonl",
        token=TOKEN,
        scrypt=FAST_SCRYPT,
        mint_timeout=120.0,
    )
    assert server.minting is not None
    env = dict(environ or {})
    server.minting.environ = lambda: env
    try:
        yield engine, server
    finally:
        await server.stop()
        await engine.stop()
