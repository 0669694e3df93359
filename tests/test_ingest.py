"""The engine's one-call ingest (chaosmagnet.ingest, csrc/health/ingest.c) against
the separate steps it replaced: HealthMonitor.run, a plain sliding window of
symbol counts, and EntropyPool.absorb.  Same failures, same counts and
estimates, the same absorbed byte stream (equal pool fingerprints and draws)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from chaosmagnet.config import Config
from chaosmagnet.engine import Engine
from chaosmagnet.estimates import OnlineEstimator, collision_entropy, mcv_min_entropy, shannon_entropy
from chaosmagnet.health.monitor import HealthMonitor
from chaosmagnet.ingest import ingest_batch
from chaosmagnet.pool import EntropyPool
from hypothesis import given, settings
from hypothesis import strategies as st
from source_helpers import ScriptedSource


class WindowReference:
    """The last ``window`` samples, counted the slow, obvious way."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.data = np.zeros(0, dtype=np.uint8)

    def update(self, samples: np.ndarray) -> None:
        self.data = np.concatenate([self.data, samples])[-self.window :]

    def counts(self) -> np.ndarray:
        return np.bincount(self.data, minlength=256).astype(np.int64)


def batches_for(seed: int, bits: int, sizes: list[int]) -> list[np.ndarray]:
    """Random batches with stuck stretches (RCT/APT failures), values beyond the width."""
    rng = np.random.default_rng(seed)
    out = []
    for i, size in enumerate(sizes):
        if i % 3 == 2:
            batch = np.full(size, rng.integers(0, 256), dtype=np.uint8)  # stuck
        else:
            batch = rng.integers(0, 256, size).astype(np.uint8)  # high bits to be masked off
        out.append(batch)
    return out


SIZES = [1, 7, 4096, 4097, 10_000, 3, 70_000, 512, 9000, 1]


@pytest.mark.parametrize("bits", [1, 2, 4, 7, 8])
@pytest.mark.parametrize("window", [64, 4096, 65536])
def test_ingest_equals_the_separate_steps(bits: int, window: int) -> None:
    mask = (1 << bits) - 1
    fast_pool, slow_pool = EntropyPool(), EntropyPool()
    fast_monitor, slow_monitor = HealthMonitor(min(2.0, bits), bits), HealthMonitor(min(2.0, bits), bits)
    estimator = OnlineEstimator(bits, window)
    reference = WindowReference(window)
    for batch in batches_for(bits * 1000 + window, bits, SIZES):
        masked = batch & np.uint8(mask)
        expected = slow_monitor.run(masked)
        slow_pool.absorb("src", masked, 0.0, bits)
        reference.update(masked)

        got = ingest_batch(fast_pool, "src", batch, bits, fast_monitor, estimator)

        assert got == expected
        assert fast_monitor.samples == slow_monitor.samples
        assert (fast_monitor.rct_failures, fast_monitor.apt_failures) == (
            slow_monitor.rct_failures,
            slow_monitor.apt_failures,
        )
        counts = reference.counts()
        n = len(reference.data)
        assert estimator.samples == n
        assert np.array_equal(estimator._counts, counts)
        est = estimator.estimates()
        assert est.h_min == mcv_min_entropy(counts, n) == estimator.h_min()
        assert est.h_shannon == shannon_entropy(counts, n)
        assert est.h_collision == collision_entropy(counts, n)
        assert fast_pool.fingerprint() == slow_pool.fingerprint()
        assert fast_pool.stats == slow_pool.stats
    assert fast_pool.draw(32, purpose=b"test").data == slow_pool.draw(32, purpose=b"test").data


def test_the_batch_itself_is_not_modified() -> None:
    batch = np.arange(256, dtype=np.uint8).repeat(20)
    before = batch.copy()
    ingest_batch(EntropyPool(), "s", batch, 3, HealthMonitor(1.0, 3), OnlineEstimator(3, 1000))
    assert np.array_equal(batch, before)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(min_size=0, max_size=3000), min_size=1, max_size=8),
    st.integers(min_value=2, max_value=5000),
)
def test_window_counts_match_the_reference_on_random_batches(batches: list[bytes], window: int) -> None:
    estimator = OnlineEstimator(8, window)
    reference = WindowReference(window)
    for data in batches:
        samples = np.frombuffer(data, dtype=np.uint8)
        estimator.update(samples)
        reference.update(samples)
        assert estimator.samples == len(reference.data)
        assert np.array_equal(estimator._counts, reference.counts())


def test_engine_credit_is_unchanged() -> None:
    """Credit = min(declared, MCV over the window), from the counts the C call keeps."""
    engine = Engine([ScriptedSource("weak", [], declared_h=5.0)], Config(min_samples=1024))
    data = np.random.default_rng(0).integers(0, 28, 65536).astype(np.uint8)
    credit = engine.ingest("weak", data)
    counts = np.bincount(data, minlength=256)
    h = mcv_min_entropy(counts, data.size)
    assert credit == pytest.approx(min(5.0, h) * data.size)
    assert engine.pool.stats.raw_bytes == data.size
    assert math.isclose(engine.source_states()["weak"]["h_min"], h)


def test_a_squeezing_sponge_is_refused() -> None:
    from chaosmagnet.errors import ExtractorError
    from chaosmagnet.extractor import Sponge

    sponge = Sponge()
    sponge.squeeze(1)
    with pytest.raises(ExtractorError):
        sponge.absorb_pointer()
