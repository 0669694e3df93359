"""The engine end to end with scripted sources: health gates credit, failures
are logged, a failed source stops, credit is min(declared, online, assessed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from chaosmagnet.config import Config, SourceConfig
from chaosmagnet.engine import Engine
from chaosmagnet.errors import PoolError
from chaosmagnet.eventlog import JsonLineLog
from chaosmagnet.sources.base import Availability, Source, SourceInfo
from chaosmagnet.sources.local import CpuJitterSource, OsRngSource, SystemSource
from source_helpers import ScriptedSource, uniform


class Unavailable(ScriptedSource):
    def availability(self) -> Availability:
        return Availability(False, "no such device")


class Exploding(ScriptedSource):
    async def batches(self) -> AsyncIterator[np.ndarray]:
        yield np.zeros(0, dtype=np.uint8)
        raise RuntimeError("device said \x1b[31mboom")


def test_good_source_is_credited_at_min_of_declared_and_estimate() -> None:
    engine = Engine([ScriptedSource("good", [])], Config(min_samples=1024))
    credit = engine.ingest("good", uniform(65536))
    snap = engine.source_states()["good"]
    assert snap["state"] == "ok"
    assert snap["credit_h"] == pytest.approx(2.0)  # declared 2.0 < MCV estimate (~7.9)
    assert credit == pytest.approx(2.0 * 65536)
    assert engine.pool.credited_bits == pytest.approx(512)  # capped


def test_no_credit_before_min_samples() -> None:
    engine = Engine([ScriptedSource("good", [])], Config(min_samples=1024))
    assert engine.ingest("good", uniform(1000)) == 0.0
    assert engine.ingest("good", uniform(100, 1)) > 0


def test_online_estimate_caps_credit_below_declared() -> None:
    engine = Engine([ScriptedSource("weak", [], declared_h=5.0)], Config(min_samples=1024))
    data = np.random.default_rng(0).integers(0, 28, 65536).astype(np.uint8)  # log2(28) = 4.81 bits
    engine.ingest("weak", data)
    snap = engine.source_states()["weak"]
    assert snap["state"] == "ok"
    assert snap["credit_h"] == pytest.approx(snap["h_min"]) and snap["credit_h"] < 4.81


def test_overclaimed_source_fails_health_and_gets_nothing() -> None:
    engine = Engine([ScriptedSource("liar", [], declared_h=6.0)], Config(min_samples=1024))
    data = np.random.default_rng(0).integers(0, 8, 65536).astype(np.uint8)  # 3 bits at most
    assert engine.ingest("liar", data) == 0.0
    assert engine.source_states()["liar"]["state"] in ("quarantined", "failed")


def test_assessment_caps_credit() -> None:
    engine = Engine([ScriptedSource("good", [])], Config(min_samples=1024))
    engine.set_assessed("good", 0.75)
    engine.ingest("good", uniform(4096))
    assert engine.source_states()["good"]["credit_h"] == pytest.approx(0.75)


def test_conditioned_source_mixed_with_zero_credit_unless_configured() -> None:
    engine = Engine([ScriptedSource("rng", [], conditioned=True)])
    assert engine.ingest("rng", uniform(4096)) == 0.0
    assert engine.pool.stats.raw_bytes == 4096
    cfg = Config(sources={"rng": SourceConfig(credit_h=1.0)})
    engine = Engine([ScriptedSource("rng", [], conditioned=True)], cfg)
    assert engine.ingest("rng", uniform(4096)) == pytest.approx(4096)


def test_stuck_source_is_quarantined_then_failed_and_logged(tmp_path: Path) -> None:
    log = JsonLineLog(tmp_path / "health.jsonl")
    engine = Engine([ScriptedSource("stuck", [])], Config(max_failures=3), health_log=log)
    engine.ingest("stuck", uniform(4096))
    cutoff = engine.source_states()["stuck"]["rct_cutoff"]
    credit = engine.ingest("stuck", np.full(cutoff, 7, dtype=np.uint8))
    assert credit == 0.0
    assert engine.source_states()["stuck"]["state"] == "quarantined"
    assert engine.healthy_credited_bits() == 0.0
    engine.ingest("stuck", np.full(3 * cutoff, 7, dtype=np.uint8))
    assert engine.source_states()["stuck"]["state"] == "failed"
    log.close()
    records = [json.loads(line) for line in (tmp_path / "health.jsonl").read_text().splitlines()]
    failures = [r for r in records if r["event"] == "health_failure"]
    assert failures[0]["source"] == "stuck" and failures[0]["test"] == "rct"
    assert failures[0]["cutoff"] == cutoff and failures[0]["sample_index"] == 4096 + cutoff - 1
    assert any(r["event"] == "source_state" and r["state"] == "failed" for r in records)


def test_engine_runs_sources_and_isolates_failures() -> None:
    async def scenario() -> dict:
        good = ScriptedSource("good", [uniform(8192, i) for i in range(4)])
        engine = Engine([good, Unavailable("gone", []), Exploding("bad", [])], Config(min_samples=1024))
        await engine.start()
        await engine.wait_for_credit(256, timeout=5)
        await asyncio.sleep(0.05)
        states = engine.source_states()
        await engine.stop()
        assert good.stopped
        return states

    states = asyncio.run(scenario())
    assert states["good"]["state"] == "ok" and states["good"]["samples"] == 4 * 8192
    assert states["gone"]["state"] == "unavailable" and states["gone"]["reason"] == "no such device"
    assert states["bad"]["state"] == "error" and "boom" in states["bad"]["reason"]
    assert "\x1b" not in states["bad"]["reason"]  # device text is escaped


def test_wait_for_credit_fails_when_no_source_is_healthy() -> None:
    async def scenario() -> None:
        engine = Engine([ScriptedSource("stuck", [np.zeros(100_000, dtype=np.uint8)])], Config(max_failures=2))
        await engine.start()
        try:
            await engine.wait_for_credit(256, timeout=5)
        finally:
            await engine.stop()

    # refused at once as hopeless (issue 15) or as having no healthy source, never a timeout
    with pytest.raises(PoolError, match="no healthy source|no enabled source can earn credit: stuck is failed"):
        asyncio.run(scenario())


def test_wait_for_credit_times_out() -> None:
    async def scenario() -> None:
        engine = Engine([ScriptedSource("slow", [])])
        await engine.start()
        try:
            await engine.wait_for_credit(256, timeout=0.2)
        finally:
            await engine.stop()

    with pytest.raises(PoolError, match="timed out"):
        asyncio.run(scenario())


def test_switching_a_source_off_and_on() -> None:
    async def scenario() -> list[str]:
        engine = Engine([ScriptedSource("s", [uniform(2048)])])
        await engine.start()
        await asyncio.sleep(0.01)
        seen = [engine.source_states()["s"]["state"]]
        await engine.set_enabled("s", False)
        seen.append(engine.source_states()["s"]["state"])
        await engine.set_enabled("s", True)
        seen.append(engine.source_states()["s"]["state"])
        await engine.stop()
        return seen

    assert asyncio.run(scenario()) == ["ok", "stopped", "ok"]


def test_real_local_sources_deliver_and_credit() -> None:
    """os-rng, cpu-jitter and system on this machine, through the whole pipeline."""

    async def scenario() -> dict:
        engine = Engine([OsRngSource(4096), CpuJitterSource(20000), SystemSource()])
        await engine.start()
        await engine.wait_for_credit(256, timeout=20)
        await asyncio.sleep(1.5)
        snap = engine.snapshot()
        await engine.stop()
        return snap

    snap = asyncio.run(scenario())
    by_name = {s["name"]: s for s in snap["sources"]}
    assert by_name["os-rng"]["credited_bits"] == 0  # conditioned
    assert by_name["cpu-jitter"]["samples"] > 20000
    assert by_name["cpu-jitter"]["credited_bits"] > 0
    assert by_name["system"]["state"] in ("ok", "quarantined")
    assert snap["pool"]["raw_bytes"] > 0 and len(snap["pool"]["fingerprint"]) == 16


class Finite(Source):
    info = SourceInfo(name="finite", kind="test", bits_per_sample=8, declared_h=2.0)

    async def batches(self) -> AsyncIterator[np.ndarray]:
        yield uniform(4096)


def test_a_source_that_ends_is_shown_ended() -> None:
    async def scenario() -> dict:
        engine = Engine([Finite()])
        await engine.start()
        await asyncio.sleep(0.05)
        state = engine.source_states()["finite"]
        await engine.stop()
        return state

    state = asyncio.run(scenario())
    assert state["state"] == "ended" and state["samples"] == 4096


def test_a_failing_tick_hook_is_logged_once_and_the_others_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dependence and anomaly hooks run on the tick; one raising must not stop the tick's other
    work (rates, the anomaly hook) nor, in the running loop, later ticks."""
    engine = Engine([ScriptedSource("a", uniform(4096))], Config(min_samples=64))
    events: list[tuple[str, dict]] = []
    engine.add_listener(lambda event, fields: events.append((event, fields)))

    def broken() -> None:
        raise ValueError("bad \x1b[31mwindow")

    monkeypatch.setattr(engine, "_tick_dependence", broken)
    ran: list[float] = []
    monkeypatch.setattr(engine, "_anomaly_tick", lambda elapsed: ran.append(elapsed))
    engine.ingest("a", uniform(4096))
    engine.tick(1.0)
    assert engine.snapshot()["sources"][0]["rate"] > 0  # the rates were still counted
    engine.tick(1.0)
    assert ran == [1.0, 1.0]  # the anomaly hook still ran, both times
    errors = [f for e, f in events if e == "tick_error"]
    assert len(errors) == 1 and errors[0]["error"].startswith("ValueError: bad ")
    assert "\x1b" not in errors[0]["error"]

    # the running loop takes the tick's steps one by one (reading frames between them)
    monkeypatch.setattr(engine, "_tick_rates", lambda elapsed: (_ for _ in ()).throw(RuntimeError("tick")))

    async def loop_survives() -> None:
        task = asyncio.create_task(engine._tick_loop())
        await asyncio.sleep(2.3)  # two failing ticks: the loop is still there
        assert not task.done()
        task.cancel()

    asyncio.run(loop_survives())
    assert [f["error"] for e, f in events if e == "tick_error"][-1] == "RuntimeError: tick"
