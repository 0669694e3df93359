"""/metrics is valid Prometheus text: parsed with prometheus-client's own parser, with
values that match the engine, and label values escaped so hostile names round-trip."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from chaosmagnet.dashboard.metrics import LINK_STATES, SOURCE_STATES, render_metrics
from dashboard_helpers import running_dashboard

parser = pytest.importorskip(
    "prometheus_client.parser", reason="prometheus-client is in the test extra"
)


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in parser.text_string_to_metric_families(text)}


def samples(family: Any, **labels: str) -> list[Any]:
    return [s for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())]


def test_metrics_endpoint_parses_and_matches_the_engine(tmp_path: Path) -> None:
    async def scenario() -> tuple[str, str, dict[str, Any], dict[str, Any]]:
        async with running_dashboard(tmp_path) as (engine, server), aiohttp.ClientSession() as http:
            await asyncio.sleep(2.5)
            before = engine.snapshot()
            async with http.get(server.url + "metrics") as r:
                assert r.status == 200
                content_type = r.headers["Content-Type"]
                text = await r.text()
            after = engine.snapshot()
            return content_type, text, before, after

    content_type, text, before, after = asyncio.run(scenario())
    assert content_type.startswith("text/plain; version=0.0.4")
    fams = families(text)
    for name, kind in (
        ("chaosmagnet_source_samples", "counter"),
        ("chaosmagnet_source_credited_bits", "counter"),
        ("chaosmagnet_source_entropy_bits_per_sample", "gauge"),
        ("chaosmagnet_source_health_failures", "counter"),
        ("chaosmagnet_source_state", "gauge"),
        ("chaosmagnet_pool_fill_ratio", "gauge"),
        ("chaosmagnet_pool_credited_bits", "gauge"),
        ("chaosmagnet_pool_drawn_bits", "counter"),
        ("chaosmagnet_pool_raw_bytes", "counter"),
        ("chaosmagnet_nodes_connected", "gauge"),
    ):
        assert fams[name].type == kind, name

    for source in after["sources"]:
        name = source["name"]
        low = next(s for s in before["sources"] if s["name"] == name)
        (count,) = samples(fams["chaosmagnet_source_samples"], source=name)
        assert count.name == "chaosmagnet_source_samples_total"
        assert low["samples"] <= count.value <= source["samples"]
        (credited,) = samples(fams["chaosmagnet_source_credited_bits"], source=name)
        assert low["credited_bits"] <= credited.value <= source["credited_bits"]
        states = samples(fams["chaosmagnet_source_state"], source=name)
        assert {s.labels["state"] for s in states} == set(SOURCE_STATES)
        assert [s.labels["state"] for s in states if s.value == 1] == [source["state"]]
        estimators = {
            s.labels["estimator"]
            for s in samples(fams["chaosmagnet_source_entropy_bits_per_sample"], source=name)
        }
        assert {"min_mcv", "shannon", "collision", "declared", "credit"} <= estimators
        failures = samples(fams["chaosmagnet_source_health_failures"], source=name)
        assert {s.labels["test"]: s.value for s in failures} == {
            "rct": source["rct_failures"],
            "apt": source["apt_failures"],
        }

    (fill,) = fams["chaosmagnet_pool_fill_ratio"].samples
    assert 0.0 <= fill.value <= 1.0
    (capacity,) = fams["chaosmagnet_pool_capacity_bits"].samples
    assert capacity.value == after["pool"]["capacity_bits"]
    (raw,) = fams["chaosmagnet_pool_raw_bytes"].samples
    assert before["pool"]["raw_bytes"] <= raw.value <= after["pool"]["raw_bytes"]
    (connected,) = fams["chaosmagnet_nodes_connected"].samples
    assert connected.value == 0
    assert (
        "fingerprint" not in text
    )  # not even the public fingerprint: it changes with every absorb


def test_node_rows_and_hostile_labels_round_trip(tmp_path: Path) -> None:
    async def scenario() -> dict[str, Any]:
        async with running_dashboard(tmp_path) as (engine, server):
            await asyncio.sleep(1.2)
            return server.live.status()

    status = copy.deepcopy(asyncio.run(scenario()))
    hostile = 'node "x"\\y\nz'
    status["sources"][0]["name"] = hostile
    status["nodes"] = [
        {
            "label": hostile,
            "link": "open",
            "connected": True,
            "frames_accepted": 1234,
            "frames_dropped": {"bad_tag": 3, "replay": 2},
            "sources": [],
        },
        {
            "label": "far",
            "link": "waiting",
            "connected": False,
            "frames_accepted": 0,
            "frames_dropped": {},
            "sources": [],
        },
    ]
    fams = families(render_metrics(status))
    assert samples(fams["chaosmagnet_source_samples"], source=hostile)
    (connected,) = fams["chaosmagnet_nodes_connected"].samples
    assert connected.value == 1
    assert {s.labels["node"]: s.value for s in fams["chaosmagnet_node_connected"].samples} == {
        hostile: 1,
        "far": 0,
    }
    (accepted,) = samples(fams["chaosmagnet_node_frames_accepted"], node=hostile)
    assert accepted.value == 1234 and accepted.name == "chaosmagnet_node_frames_accepted_total"
    dropped = {
        s.labels["reason"]: s.value
        for s in samples(fams["chaosmagnet_node_frames_dropped"], node=hostile)
    }
    assert dropped == {"bad_tag": 3, "replay": 2}


def test_node_link_states_and_waiting_sources_parse(tmp_path: Path) -> None:
    """Each node's link state (waiting, handshake, linked, lost) is a 0/1 gauge per state;
    a waiting node's sources report state waiting, never ok."""

    async def scenario() -> dict[str, Any]:
        async with running_dashboard(tmp_path) as (engine, server):
            await asyncio.sleep(1.2)
            return server.live.status()

    status = copy.deepcopy(asyncio.run(scenario()))
    status["sources"][0]["state"] = "waiting"
    status["nodes"] = [
        {"label": "desk", "link": "open", "link_state": "linked", "connected": True, "sources": []},
        {"label": "far", "link": "waiting", "link_state": "waiting", "connected": False,
         "link_reason": "port now belongs to another device", "sources": []},
    ]  # fmt: skip
    fams = families(render_metrics(status))
    link = fams["chaosmagnet_node_link_state"]
    assert link.type == "gauge"
    for label, current in (("desk", "linked"), ("far", "waiting")):
        got = {s.labels["state"]: s.value for s in samples(link, node=label)}
        assert got == {state: int(state == current) for state in LINK_STATES}
    name = status["sources"][0]["name"]
    states = samples(fams["chaosmagnet_source_state"], source=name)
    assert [s.labels["state"] for s in states if s.value == 1] == ["waiting"]
    (connected,) = fams["chaosmagnet_nodes_connected"].samples
    assert connected.value == 1
