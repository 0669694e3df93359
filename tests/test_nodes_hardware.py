"""Tests against a real, deployed node: skipped unless --node-port is given.

    .venv/bin/pytest tests/test_nodes_hardware.py --node-port /dev/ttyACM0 [--node-label desk]

The node must be flashed and deployed (docs/first-node.md) and registered in
the registry this shell sees (CHAOS_HOME / CHAOS_NODES).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from chaosmagnet.config import Config
from chaosmagnet.engine import Engine
from chaosmagnet.nodes.registry import NodeRecord, NodeRegistry
from chaosmagnet.nodes.sources import build_node_sources, probe_node

pytestmark = pytest.mark.hardware


@pytest.fixture
def node_record(node_port: str, request: pytest.FixtureRequest) -> NodeRecord:
    registry = NodeRegistry()
    label = request.config.getoption("--node-label")
    record = registry.get(label) if label else registry.find(node_port)
    if record is None:
        pytest.fail(f"no registered node on {node_port}: deploy it first (chaos-host nodes deploy)")
    return replace(record, link=node_port)  # keeps its USB serial number: checked before opening


def test_real_node_answers_hello_with_verified_status(node_record: NodeRecord) -> None:
    result = asyncio.run(probe_node(node_record, timeout=5.0))
    assert result["link"]["verified"], (
        "no verified handshake: wrong key (NVS), or firmware not running"
    )
    status = result["status"]
    assert status["proto"] == 2
    assert {s["name"] for s in status["sources"]} == {"adc", "rng", "jitter"}
    assert result["link"]["drops"].get("bad_tag", 0) == 0


def test_real_node_sources_are_credited(node_record: NodeRecord) -> None:
    async def main() -> dict:
        engine = Engine(build_node_sources(node_record), Config(assessment_enabled=False))
        await engine.start()
        try:
            await asyncio.sleep(10)
            return engine.source_states()
        finally:
            await engine.stop()

    states = asyncio.run(main())
    label = node_record.label
    for name in ("adc", "rng", "jitter"):
        assert states[f"node:{label}:{name}"]["samples"] > 0, name
    adc = states[f"node:{label}:adc"]
    assert adc["details"]["node_declared"]["rct_cutoff"] == adc["rct_cutoff"]
    assert adc["credited_bits"] > 0, "ADC credited nothing: is the pin floating or stuck at a rail?"
