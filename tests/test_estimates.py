"""Online estimates against direct computation over the same window."""

from __future__ import annotations

import math

import numpy as np
import pytest
from chaosmagnet.estimates import OnlineEstimator, mcv_min_entropy
from hypothesis import given, settings
from hypothesis import strategies as st


def direct(window: np.ndarray) -> tuple[float, float, float]:
    n = window.size
    values, counts = np.unique(window, return_counts=True)
    p = counts / n
    shannon = float(-(p * np.log2(p)).sum())
    p_hat = counts.max() / n
    p_u = min(1.0, p_hat + 2.576 * math.sqrt(p_hat * (1 - p_hat) / (n - 1)))
    return shannon, -math.log2(p_u), -math.log2(float((p * p).sum()))


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 700), min_size=1, max_size=20),
    alphabet=st.integers(1, 255),
    seed=st.integers(0, 2**32 - 1),
)
def test_sliding_window_matches_direct(sizes: list[int], alphabet: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    est = OnlineEstimator(8, window=1000)
    stream = []
    for size in sizes:
        batch = rng.integers(0, alphabet + 1, size).astype(np.uint8)
        stream.append(batch)
        est.update(batch)
    window = np.concatenate(stream)[-1000:]
    if window.size < 2:
        return
    got = est.estimates()
    expected = direct(window)
    assert got.samples == window.size
    assert got.h_shannon == pytest.approx(expected[0], abs=1e-9)
    assert got.h_min == pytest.approx(expected[1], abs=1e-9)
    assert got.h_collision == pytest.approx(expected[2], abs=1e-9)


def test_constant_source_has_zero_min_entropy() -> None:
    est = OnlineEstimator(8, window=4096)
    est.update(np.zeros(4096, dtype=np.uint8))
    e = est.estimates()
    assert (e.h_min, e.h_shannon, e.h_collision) == (0.0, 0.0, 0.0)


def test_uniform_bytes_estimate_close_to_eight_bits() -> None:
    est = OnlineEstimator(8)
    est.update(np.frombuffer(np.random.default_rng(0).bytes(65536), dtype=np.uint8))
    e = est.estimates()
    assert 7.99 < e.h_shannon <= 8.0
    assert 7.0 < e.h_min < 8.0  # the 99% upper bound costs some
    assert 7.9 < e.h_collision <= 8.0


def test_mcv_bound_matches_standard_example() -> None:
    # p_hat = 0.5 over 1,000 samples: p_u = 0.5 + 2.576 * sqrt(0.25 / 999)
    counts = np.array([500, 500])
    assert mcv_min_entropy(counts, 1000) == pytest.approx(-math.log2(0.5 + 2.576 * math.sqrt(0.25 / 999)))
