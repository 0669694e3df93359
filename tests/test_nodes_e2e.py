"""End to end through a pty: simulator (real firmware, CPython) -> serial link ->
parser -> node sources -> engine (health, estimates, pool).

Each fault gives its outcome while the aggregator keeps running; closing and
reopening the pty reconnects.  The simulator runs as `chaos-host nodes
simulate` in its own process, as a user would run it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaosmagnet.config import Config
from chaosmagnet.engine import Engine
from chaosmagnet.nodes.registry import NodeRegistry
from chaosmagnet.nodes.sources import NodeSource, build_node_sources, resolve_nodes
from nodes_helpers import SimProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def simulate(home: Path) -> Iterator:
    started: list[SimProcess] = []

    def start(label: str, fault: str | None = None) -> SimProcess:
        sim = SimProcess(home, label, fault)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        if sim.proc.poll() is None:
            sim.stop()


def _engine(labels: list[str]) -> Engine:
    sources = []
    for record in resolve_nodes(labels):
        sources += build_node_sources(record)
    config = Config(assessment_enabled=False, min_samples=512, recovery_samples=100_000)
    return Engine(sources, config)


async def _wait_for(engine: Engine, predicate, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        states = engine.source_states()
        if predicate(states):
            return states
        if time.monotonic() > deadline:
            raise AssertionError(
                "condition not met; states: "
                + repr(
                    {k: (v["state"], v["samples"], v["credited_bits"]) for k, v in states.items()}
                )
            )
        await asyncio.sleep(0.1)


def _details(states: dict, name: str) -> dict:
    return states[name]["details"]


def test_simulated_node_credit_rises(home: Path, simulate) -> None:
    simulate("alpha")

    async def main() -> None:
        engine = _engine(["alpha"])
        await engine.start()
        try:
            s1 = await _wait_for(engine, lambda s: s["node:alpha:adc"]["credited_bits"] > 0)
            first = s1["node:alpha:adc"]["credited_bits"]
            s2 = await _wait_for(
                engine, lambda s: s["node:alpha:adc"]["credited_bits"] > first + 500
            )
            adc = s2["node:alpha:adc"]
            assert adc["state"] == "ok" and adc["kind"] == "node"
            assert s2["node:alpha:jitter"]["samples"] > 0
            rng = s2["node:alpha:rng"]
            assert rng["conditioned"] and rng["credited_bits"] == 0 and rng["samples"] > 0
            details = _details(s2, "node:alpha:adc")
            assert details["verified"] and details["drops"] == {}
            assert details["node_health"]["failing"] is False  # shown, not used
            assert (
                details["node_declared"]["rct_cutoff"] == adc["rct_cutoff"]
            )  # same cutoffs both sides
            assert details["node_declared"]["apt_cutoff"] == adc["apt_cutoff"]
        finally:
            await engine.stop()

    asyncio.run(main())


@pytest.mark.parametrize("fault, test", [("stuck", "rct_failures"), ("bias", "apt_failures")])
def test_bad_adc_is_quarantined_and_the_rest_keeps_running(
    home: Path, simulate, fault: str, test: str
) -> None:
    simulate("bad", fault)
    simulate("good")

    async def main() -> None:
        engine = _engine(["bad", "good"])
        await engine.start()
        try:
            states = await _wait_for(
                engine,
                lambda s: (
                    s["node:bad:adc"]["state"] in ("quarantined", "failed")
                    and s["node:bad:adc"][test] > 0
                ),
            )
            before = states["node:good:adc"]["credited_bits"]
            jitter_before = states["node:bad:jitter"]["samples"]
            states = await _wait_for(
                engine,
                lambda s: (
                    s["node:good:adc"]["credited_bits"] > before + 200
                    and s["node:bad:jitter"]["samples"] > jitter_before
                ),
            )
            assert states["node:good:adc"]["state"] == "ok"
            assert states["node:bad:adc"]["credit_h"] == 0
            # the node noticed too (reported, never relied on)
            node_health = _details(states, "node:bad:adc")["node_health"]
            assert node_health["rct_failures"] + node_health["apt_failures"] > 0
        finally:
            await engine.stop()

    asyncio.run(main())


@pytest.mark.parametrize(
    "fault, reasons", [("garbage", {"bad_magic", "bad_tag"}), ("replay", {"replay"})]
)
def test_wire_faults_are_dropped_with_reasons(
    home: Path, simulate, fault: str, reasons: set[str]
) -> None:
    simulate("noisy", fault)

    async def main() -> None:
        engine = _engine(["noisy"])
        await engine.start()
        try:
            states = await _wait_for(
                engine,
                lambda s: (
                    reasons <= set(s["node:noisy:adc"]["details"]["drops"])
                    and s["node:noisy:adc"]["credited_bits"] > 200
                ),
            )
            drops = _details(states, "node:noisy:adc")["drops"]
            assert set(drops) <= reasons | {
                "bad_magic",
                "bad_tag",
                "unknown_version",
                "bad_length",
                "unknown_node",
                "stale_handshake",  # the replay fault may replay the handshake (answered once)
            }  # random garbage may look like anything
            assert states["node:noisy:adc"]["state"] == "ok"
        finally:
            await engine.stop()

    asyncio.run(main())


def test_pty_closed_and_reopened_reconnects(home: Path, simulate) -> None:
    sim = simulate("plug")

    async def main() -> None:
        engine = _engine(["plug"])
        await engine.start()
        try:
            await _wait_for(engine, lambda s: s["node:plug:adc"]["samples"] > 1000)
            source = next(
                r.source for r in engine._runtimes.values() if r.source.name == "node:plug:adc"
            )
            assert isinstance(source, NodeSource)
            link = source.connection.link
            assert link.connects == 1
            sim.proc.send_signal(signal.SIGHUP)  # close the pty, reopen after 0.5 s
            while sim.link.exists():
                await asyncio.sleep(0.01)
            while not sim.link.exists():
                await asyncio.sleep(0.01)
            reappeared = time.monotonic()
            while link.connects < 2:
                assert time.monotonic() - reappeared < 2.0, (
                    "no reconnect within 2 s of the port reappearing"
                )
                await asyncio.sleep(0.01)
            samples = engine.source_states()["node:plug:adc"]["samples"]
            await _wait_for(engine, lambda s: s["node:plug:adc"]["samples"] > samples + 1000)
            assert source.connection.verified
        finally:
            await engine.stop()

    asyncio.run(main())


def test_run_command_with_node(home: Path, simulate) -> None:
    """`chaos-host run --node LABEL --json` shows the node's sources with credit."""
    import json

    simulate("cli")
    env = dict(os.environ, CHAOS_HOME=str(home))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaosmagnet",
            "run",
            "--source",
            "os-rng",
            "--node",
            "cli",
            "--seconds",
            "6",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=home,
    )
    assert proc.returncode == 0, proc.stderr
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    names = {s["name"]: s for s in last["sources"]}
    assert {"node:cli:adc", "node:cli:rng", "node:cli:jitter", "os-rng"} <= set(names)
    assert names["node:cli:adc"]["credited_bits"] > 0


def test_simulator_unregisters_on_stop(home: Path, simulate) -> None:
    sim = simulate("brief")
    assert NodeRegistry().find("brief") is not None
    sim.stop()
    assert NodeRegistry().find("brief") is None
    assert not sim.link.exists()
