"""Health tests: cutoffs against SP 800-90B's table, the C kernel against a plain
Python reading of §4.4, injected stuck and biased sources, the quarantine policy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from chaosmagnet.health import (
    HealthMonitor,
    HealthPolicy,
    HealthTest,
    PolicySettings,
    SourceState,
    apt_cutoff,
    apt_window,
    rct_cutoff,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

# SP 800-90B §4.4.2, Table 2 style values (alpha = 2^-20): (H, window, cutoff)
APT_CUTOFFS = [
    (0.5, 512, 410),
    (1.0, 512, 311),
    (2.0, 512, 177),
    (4.0, 512, 62),
    (8.0, 512, 13),
    (1.0, 1024, 589),
]

RCT_CUTOFFS = [(0.5, 41), (1.0, 21), (2.0, 11), (4.0, 6), (8.0, 4), (0.25, 81)]


@pytest.mark.parametrize(("h", "window", "expected"), APT_CUTOFFS)
def test_apt_cutoff_table(h: float, window: int, expected: int) -> None:
    assert apt_cutoff(h, window) == expected


@pytest.mark.parametrize(("h", "expected"), RCT_CUTOFFS)
def test_rct_cutoff_table(h: float, expected: int) -> None:
    assert rct_cutoff(h) == expected


@pytest.mark.parametrize("h", [0.1, 0.3, 0.7, 1.5, 3.3, 5.0, 6.5, 7.9])
def test_apt_cutoff_matches_scipy_binomial(h: float) -> None:
    """C = 1 + the smallest k with binomial CDF >= 1 - alpha (scipy as the reference)."""
    p = 2.0**-h
    k = int(binom.ppf(1 - 2.0**-20, 512, p))
    while binom.cdf(k, 512, p) < 1 - 2.0**-20:
        k += 1
    while k > 0 and binom.cdf(k - 1, 512, p) >= 1 - 2.0**-20:
        k -= 1
    assert apt_cutoff(h, 512) == 1 + k


def test_apt_window_binary() -> None:
    assert apt_window(1) == 1024
    assert apt_window(8) == 512


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_cutoffs_reject_bad_h(bad: float) -> None:
    with pytest.raises(ValueError):
        rct_cutoff(bad)
    with pytest.raises(ValueError):
        apt_cutoff(bad)


def reference_health(samples: np.ndarray, rct_c: int, apt_c: int, window: int) -> list[tuple[str, int]]:
    """A direct reading of §4.4.1/§4.4.2, restarting a test after it fails."""
    failures = []
    a_rct, b_rct = None, 0
    a_apt, b_apt, pos = None, 0, window
    for i, x in enumerate(samples.tolist()):
        if x == a_rct:
            b_rct += 1
            if b_rct >= rct_c:
                failures.append(("rct", i))
                b_rct = 1
        else:
            a_rct, b_rct = x, 1
        if pos == window:
            a_apt, b_apt, pos = x, 1, 1
        else:
            pos += 1
            if x == a_apt:
                b_apt += 1
                if b_apt >= apt_c:
                    failures.append(("apt", i))
                    pos = window
    return failures


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.integers(0, 3), min_size=0, max_size=3000),
    cuts=st.lists(st.integers(0, 3000), max_size=5),
    h=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_kernel_matches_reference_and_is_split_invariant(data: list[int], cuts: list[int], h: float) -> None:
    samples = np.array(data, dtype=np.uint8)
    monitor = HealthMonitor(h, bits_per_sample=2)
    found = []
    bounds = sorted({0, len(samples), *[c for c in cuts if c <= len(samples)]})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        found += [(f.test.value, f.sample_index) for f in monitor.run(samples[lo:hi])]
    expected = reference_health(samples, monitor.rct_cutoff, monitor.apt_cutoff, monitor.apt_window)
    assert found == expected
    assert monitor.rct_failures == sum(1 for t, _ in expected if t == "rct")
    assert monitor.apt_failures == sum(1 for t, _ in expected if t == "apt")
    assert monitor.samples == len(samples)


@pytest.mark.parametrize("h", [0.5, 1.0, 2.0, 4.0, 8.0])
def test_stuck_source_trips_rct_within_cutoff(h: float) -> None:
    """A constant source fails RCT at sample C-1 (the C-th identical sample)."""
    rng = np.random.default_rng(7)
    monitor = HealthMonitor(h, bits_per_sample=8)
    monitor.run(rng.integers(0, 256, 5000, dtype=np.uint8))
    baseline = monitor.rct_failures
    start = monitor.samples
    failures = monitor.run(np.full(monitor.rct_cutoff, 0xAB, dtype=np.uint8))
    rct = [f for f in failures if f.test is HealthTest.RCT]
    assert monitor.rct_failures > baseline
    assert rct and rct[0].sample_index - start < monitor.rct_cutoff
    assert rct[0].cutoff == monitor.rct_cutoff


@pytest.mark.parametrize("h", [1.0, 2.0, 4.0, 8.0])
def test_biased_source_trips_apt_within_one_window(h: float) -> None:
    """One value at probability well above 2^-H fails APT inside one window."""
    rng = np.random.default_rng(11)
    monitor = HealthMonitor(h, bits_per_sample=8)
    window = monitor.apt_window
    # expected count of the biased value: 1.5 x the cutoff (RCT may fire too: the tests are independent)
    p_biased = min(0.95, 1.5 * monitor.apt_cutoff / window)
    assert p_biased > 2.0 ** (-h)
    biased = np.where(rng.random(window) < p_biased, 0x5A, rng.integers(0, 256, window)).astype(np.uint8)
    biased[0] = 0x5A  # the window's reference value is the biased one
    failures = monitor.run(biased)
    assert any(f.test is HealthTest.APT for f in failures)
    assert monitor.apt_failures >= 1


def test_good_source_passes() -> None:
    rng = np.random.default_rng(3)
    monitor = HealthMonitor(4.0, bits_per_sample=8)
    assert monitor.run(rng.integers(0, 256, 200_000, dtype=np.uint8)) == []


def test_binary_source_uses_1024_window() -> None:
    monitor = HealthMonitor(1.0, bits_per_sample=1)
    assert (monitor.apt_window, monitor.apt_cutoff) == (1024, 589)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_policy_quarantine_and_recovery() -> None:
    clock = FakeClock()
    policy = HealthPolicy(PolicySettings(recovery_samples=100, max_failures=3, failure_period=60), clock)
    monitor = HealthMonitor(1.0, bits_per_sample=8)
    failures = monitor.run(np.zeros(25, dtype=np.uint8))
    assert policy.observe(failures, monitor.samples) is SourceState.QUARANTINED
    rng = np.random.default_rng(1)
    monitor.run(rng.integers(0, 256, 50, dtype=np.uint8))
    assert policy.observe([], monitor.samples) is SourceState.QUARANTINED  # not clean long enough
    monitor.run(rng.integers(0, 256, 100, dtype=np.uint8))
    assert policy.observe([], monitor.samples) is SourceState.OK


def test_policy_repeated_failures_become_permanent_until_cleared() -> None:
    clock = FakeClock()
    policy = HealthPolicy(PolicySettings(recovery_samples=10, max_failures=3, failure_period=60), clock)
    monitor = HealthMonitor(1.0, bits_per_sample=8)
    for _ in range(3):
        clock.now += 5
        policy.observe(monitor.run(np.zeros(21, dtype=np.uint8)), monitor.samples)
    assert policy.state is SourceState.FAILED
    rng = np.random.default_rng(2)
    monitor.run(rng.integers(0, 256, 5000, dtype=np.uint8))
    assert policy.observe([], monitor.samples) is SourceState.FAILED  # no recovery from failed
    policy.clear()
    assert policy.state is SourceState.OK


def test_policy_failures_outside_period_do_not_accumulate() -> None:
    clock = FakeClock()
    policy = HealthPolicy(PolicySettings(recovery_samples=10, max_failures=3, failure_period=60), clock)
    monitor = HealthMonitor(1.0, bits_per_sample=8)
    rng = np.random.default_rng(5)
    for _ in range(6):
        clock.now += 100  # each failure in its own period
        policy.observe(monitor.run(np.zeros(21, dtype=np.uint8)), monitor.samples)
        monitor.run(rng.integers(0, 256, 50, dtype=np.uint8))
        policy.observe([], monitor.samples)
    assert policy.state is SourceState.OK


@pytest.mark.parametrize("seed", range(4))
def test_kernel_matches_reference_on_wide_and_low_entropy_data(seed: int) -> None:
    """The kernel skips sixteen samples at a time when no test can fire in them (SSE2): 8-bit
    noise, noise with a favourite value (APT), stuck stretches (RCT) and 1-, 2-, 4-bit data,
    at every credited rate, cut at random places: failures and counters as the reference."""
    rng = np.random.default_rng(seed)
    for trial in range(60):
        n = int(rng.integers(1, 5000))
        kind = trial % 4
        if kind == 0:
            x = rng.integers(0, 256, n)
        elif kind == 1:
            x = np.where(rng.random(n) < 0.06, 7, rng.integers(0, 256, n))
        elif kind == 2:
            x = rng.integers(0, 256, n)
            start = int(rng.integers(0, n))
            x[start : start + int(rng.integers(0, 40))] = 9
        else:
            x = rng.integers(0, int(rng.choice([2, 4, 16])), n)
        samples = x.astype(np.uint8)
        monitor = HealthMonitor(float(rng.choice([0.5, 1.0, 2.0, 4.0, 6.0, 8.0])), bits_per_sample=8)
        expected = reference_health(samples, monitor.rct_cutoff, monitor.apt_cutoff, monitor.apt_window)
        cuts = sorted({0, n, *(int(c) for c in rng.integers(0, n + 1, 4))})
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            found = [(f.test.value, f.sample_index) for f in monitor.run(samples[lo:hi])]
            assert found == [e for e in expected if lo <= e[1] < hi][: HealthMonitor.MAX_REPORTED]
        assert monitor.rct_failures == sum(1 for t, _ in expected if t == "rct")
        assert monitor.apt_failures == sum(1 for t, _ in expected if t == "apt")
        assert monitor.samples == n
