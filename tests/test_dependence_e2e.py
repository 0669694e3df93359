"""Dependence end to end: two `chaos-host nodes simulate --fault correlated` processes
(real firmware under CPython, each on its own pty) share half their ADC noise; the
engine reads them through the serial link and parser, finds the pair, credits it
once and logs it.  Real time, so the windows are shortened (the statistics and
the path are the shipped ones; tests/test_dependence.py holds the default bounds).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaosmagnet.config import Config
from chaosmagnet.dependence import DependenceSettings
from chaosmagnet.engine import Engine
from chaosmagnet.eventlog import JsonLineLog
from chaosmagnet.nodes.sources import build_node_sources, resolve_nodes
from nodes_helpers import SimProcess

pytestmark = pytest.mark.slow

#: Shorter windows than the defaults so a real-time run stays short: MI from 64 paired
#: bins (16 s), lag correlation from 30 s of per-second statistics.
FAST = DependenceSettings(min_bins=64, min_stat_points=30, stat_seconds=120, mi_bins=240)
GROUPED_WITHIN = 240.0  # seconds of real time (85 s measured on a loaded 2-core machine)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    monkeypatch.delenv("CHAOS_NODES", raising=False)
    return tmp_path


@pytest.fixture
def correlated_pair(home: Path) -> Iterator[list[SimProcess]]:
    sims = [SimProcess(home, "left", "correlated"), SimProcess(home, "right", "correlated")]
    yield sims
    for sim in sims:
        if sim.proc.poll() is None:
            sim.stop()


def test_correlated_simulated_nodes_are_grouped_and_credited_once(
    home: Path, correlated_pair: list[SimProcess]
) -> None:
    log_path = home / "health.jsonl"

    async def main() -> dict:
        sources = []
        for record in resolve_nodes(["left", "right"]):
            sources += build_node_sources(record)
        config = Config(assessment_enabled=False, min_samples=512, recovery_samples=100_000)
        engine = Engine(sources, config, health_log=JsonLineLog(log_path), dependence=FAST)
        await engine.start()
        try:
            deadline = time.monotonic() + GROUPED_WITHIN
            pair = ("node:left:adc", "node:right:adc")
            while not any(set(pair) <= set(g) for g in engine.dependence.groups()):
                if time.monotonic() > deadline:
                    raise AssertionError(f"not grouped: {json.dumps(engine.dependence.snapshot()['pairs'])}")
                await asyncio.sleep(0.5)
            await asyncio.sleep(3.0)  # a few batches credited under the group
            before = {n: engine.source_states()[n]["credited_bits"] for n in pair}
            await asyncio.sleep(3.0)
            states = engine.source_states()
            gained = {n: states[n]["credited_bits"] - before[n] for n in pair}
            return {"states": states, "gained": gained, "snapshot": engine.snapshot()}
        finally:
            await engine.stop()

    result = asyncio.run(main())
    states, gained = result["states"], result["gained"]
    assert all(states[n]["state"] == "ok" for n in gained)
    earning = [n for n, bits in gained.items() if bits > 0]
    assert len(earning) == 1, gained  # credited once: one member earns, the other is paid nothing
    other = next(n for n in gained if n not in earning)
    assert states[other]["credit_h"] == 0.0 and states[other]["dependence"]["credited"] is False
    assert states[earning[0]]["dependence"]["credited"] is True
    group = next(g for g in result["snapshot"]["dependence"]["groups"] if other in g["members"])
    assert group["credited_member"] == earning[0] and group["evidence"]
    found = [json.loads(line) for line in log_path.read_text().splitlines() if '"dependence_found"' in line]
    assert any(set(e["sources"]) == {"node:left:adc", "node:right:adc"} for e in found)
    print(f"grouped; evidence {group['evidence']}")
