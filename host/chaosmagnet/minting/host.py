"""This host's pool, however it is reached: a running `chaos-host run`, or local sources.

``host_seed_source`` first asks the control socket; when no `run` answers it
starts the default local sources in this process (the same selection and
config as `run`) and waits for credit itself, logging quarantine events to the
audit trail, and stops them afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from chaosmagnet.control import ControlSeedSource, default_socket_path, probe
from chaosmagnet.minting.seeds import EngineSeedSource, SeedSource


@asynccontextmanager
async def host_seed_source(
    config_path: Path | None = None,
    socket_path: Path | None = None,
    *,
    audit_engine_events: bool = True,
) -> AsyncIterator[SeedSource]:
    """Yield a SeedSource for this host's pool (see the module docstring)."""
    path = socket_path or default_socket_path()
    if await probe(path) is not None:
        yield ControlSeedSource(path)
        return
    from chaosmagnet.audit import attach_to_engine
    from chaosmagnet.engine import Engine
    from chaosmagnet.eventlog import JsonLineLog, logs_dir
    from chaosmagnet.sources.selection import build_sources, load, selected_source_names, source_options

    config = load(config_path)
    sources = build_sources(config, selected_source_names(config, None), source_options(config))
    engine = Engine(sources, config, health_log=JsonLineLog(logs_dir() / "health.jsonl"))
    if audit_engine_events:
        attach_to_engine(engine)
    await engine.start()
    try:
        yield EngineSeedSource(engine)
    finally:
        await engine.stop()
