"""End to end: `chaos-host nodes simulate --fault sag --fault-after ... --fault-for ...` on a
pty, harvested by the engine: the ADC is quarantined for the anomaly (the RCT/APT never
trip), the health log records it, and it is released when the sag ends."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from chaosmagnet.config import Config
from chaosmagnet.engine import Engine
from chaosmagnet.eventlog import JsonLineLog
from chaosmagnet.nodes.sources import build_node_sources, resolve_nodes
from nodes_helpers import SimProcess

pytestmark = pytest.mark.slow

WARMUP = 20  # intervals (s) of baseline before the sag can be seen
FAULT_AFTER, FAULT_FOR = 35, 20
SAG_REASONS = ("anomaly: rate fell", "anomaly: node:sagging: frame inter-arrival rose")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    monkeypatch.delenv("CHAOS_NODES", raising=False)
    return tmp_path


def test_a_sag_on_a_simulated_node_is_quarantined_and_released(home: Path) -> None:
    sim = SimProcess(
        home, "sagging", "sag", ["--fault-after", str(FAULT_AFTER), "--fault-for", str(FAULT_FOR)]
    )
    started = time.monotonic()
    log_path = home / "health.jsonl"
    adc = "node:sagging:adc"
    timeline: list[tuple[float, str, str]] = []

    async def main() -> None:
        sources = [s for record in resolve_nodes(["sagging"]) for s in build_node_sources(record)]
        config = Config(assessment_enabled=False, min_samples=512, anomaly_warmup=WARMUP)
        engine = Engine(sources, config, health_log=JsonLineLog(log_path))
        await engine.start()
        try:
            deadline = started + FAULT_AFTER + FAULT_FOR + 60
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                s = engine.source_states()[adc]
                timeline.append((time.monotonic() - started, s["state"], s["reason"]))
                assert s["rct_failures"] == 0 and s["apt_failures"] == 0, s
                back = [t for t, state, _ in timeline if t > FAULT_AFTER + FAULT_FOR and state == "ok"]
                if any(state == "quarantined" for _, state, _ in timeline) and back:
                    return
        finally:
            await engine.stop()

    try:
        asyncio.run(main())
    finally:
        out = sim.stop()
    held = [(t, reason) for t, state, reason in timeline if state == "quarantined"]
    assert held, (timeline[-5:], out)
    first_held = held[0][0]
    assert FAULT_AFTER <= first_held < FAULT_AFTER + FAULT_FOR, timeline
    # the ADC's own rate chart or its node's frame chart, whichever sees the sag first
    assert held[0][1].startswith(SAG_REASONS), held[0]
    assert timeline[-1][1] == "ok", timeline[-5:]
    events = [json.loads(line) for line in log_path.read_text().splitlines()]
    raised = [e for e in events if e["event"] == "anomaly_raised" and e["source"] == adc]
    cleared = [e for e in events if e["event"] == "anomaly_cleared" and e["source"] == adc]
    assert raised and cleared
    assert raised[0]["reason"].startswith(tuple(r.removeprefix("anomaly: ") for r in SAG_REASONS))
    assert not [e for e in events if e["event"] == "health_failure" and e["source"] == adc]
