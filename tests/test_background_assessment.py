"""`run` assesses each source in the background and caps its credit at H_assessed."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from chaosmagnet.assessment.background import BackgroundAssessor
from chaosmagnet.config import Config
from chaosmagnet.engine import Engine
from chaosmagnet.sources.base import Source, SourceInfo


class Idle(Source):
    def __init__(self, name: str, declared_h: float) -> None:
        self.info = SourceInfo(name=name, kind="test", bits_per_sample=8, declared_h=declared_h)

    async def batches(self):  # pragma: no cover - fed through ingest in these tests
        while True:
            await asyncio.sleep(3600)
            yield np.empty(0, dtype=np.uint8)


def test_engine_credits_at_most_the_assessed_rate() -> None:
    """A real non-IID assessment of 20,000 samples of a 4-bit source."""

    async def scenario() -> dict:
        cfg = Config(assessment_samples=20_000, min_samples=1024)
        engine = Engine([Idle("four", declared_h=3.5)], cfg, assess=True)
        rng = np.random.default_rng(3)
        for _ in range(5):
            engine.ingest("four", rng.integers(0, 16, 4000).astype(np.uint8))
        for _ in range(600):  # the assessment runs in a worker thread
            if engine.source_states()["four"]["h_assessed"] is not None:
                break
            await asyncio.sleep(0.05)
        engine.ingest("four", rng.integers(0, 16, 4000).astype(np.uint8))
        state = engine.source_states()["four"]
        await engine.stop()
        return state

    state = asyncio.run(scenario())
    # on so few samples the estimators are cautious; never above the 4 bits of the alphabet
    assert state["h_assessed"] is not None and 0.5 < state["h_assessed"] < 4.0
    assert state["credit_h"] == pytest.approx(min(state["h_assessed"], state["h_min"]))


def test_assessor_collects_then_waits_before_reassessing() -> None:
    clock = [0.0]
    results: list[tuple[str, float]] = []
    seen_sizes: list[int] = []

    def fake_assess(samples: np.ndarray, bits: int) -> float:
        seen_sizes.append(samples.size)
        return 1.25

    async def scenario() -> None:
        assessor = BackgroundAssessor(lambda n, h: results.append((n, h)), samples_needed=1000,
                                      reassess_seconds=60, assess=fake_assess, clock=lambda: clock[0])
        data = np.arange(600, dtype=np.uint8)
        assessor.feed("s", data, 8)
        assert assessor.progress("s") == pytest.approx(0.6)
        assessor.feed("s", data, 8)
        await asyncio.sleep(0.2)
        assert results == [("s", 1.25)]
        assessor.feed("s", data, 8)  # inside the re-assessment interval: ignored
        assert assessor.progress("s") == 0
        clock[0] = 61
        assessor.feed("s", data, 8)
        assessor.feed("s", data, 8)
        await asyncio.sleep(0.2)
        await assessor.stop()

    asyncio.run(scenario())
    assert results == [("s", 1.25), ("s", 1.25)] and seen_sizes == [1000, 1000]


def test_a_failing_assessment_is_reported_not_raised() -> None:
    def broken(samples: np.ndarray, bits: int) -> float:
        raise ValueError("estimator bug")

    async def scenario() -> BackgroundAssessor:
        assessor = BackgroundAssessor(lambda n, h: None, samples_needed=10, assess=broken)
        assessor.feed("s", np.arange(10, dtype=np.uint8), 8)
        await asyncio.sleep(0.2)
        return assessor

    assessor = asyncio.run(scenario())
    assert "estimator bug" in assessor.errors["s"]
