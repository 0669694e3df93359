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
from chaosmagnet.nodes.sources import NodeSource, build_node_sources, resolve_nodes
from rich.console import Console
from test_nodes_e2e import SimProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    monkeypatch.delenv("CHAOS_NODES", raising=False)
    return tmp_path


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
            await engine.start()
            try:
                linked = await _until(engine, lambda s: _link(s)["link_state"] == "linked")
                assert _adc(linked)["state"] == "ok"
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
