"""cpu-jitter characterises its timer the way jitterentropy does (issue 10).

The source is driven by simulated timers instead of the TSC: a timer that
advances in steps of 1, 2 or 64 ticks with jitter must give samples whose
every bit varies; the same timers without jitter, and a stuck timer, must
make the source unavailable with a reason.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from chaosmagnet.errors import SourceUnavailable
from chaosmagnet.sources.local import CpuJitterSource, characterise_timer, stuck_mask, timer_step


def simulated_timer(step: int, jitter: int, seed: int = 7, base: int = 40):
    """A measurement function: durations of `base` + U[0, jitter] steps of `step` ticks."""
    rng = np.random.default_rng(seed)

    def measure(n: int) -> np.ndarray:
        ticks = base + (rng.integers(0, jitter + 1, n) if jitter else np.zeros(n, dtype=np.int64))
        return (ticks * step).astype(np.uint64)

    return measure


def stuck_timer(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.uint64)


@pytest.mark.parametrize("step", [1, 2, 64])
def test_a_jittery_timer_of_any_step_gives_bits_that_all_vary(step: int) -> None:
    source = CpuJitterSource(measure=simulated_timer(step, jitter=255))
    assert source.availability().available
    assert source.profile is not None and source.profile.step == step
    asyncio.run(source.start())
    samples = source.read(20_000)
    for bit in range(8):
        ones = np.count_nonzero(samples & (1 << bit))
        assert 0.4 < ones / samples.size < 0.6, f"bit {bit} is (nearly) constant with a timer step of {step}"


@pytest.mark.parametrize("step", [1, 2, 64])
def test_a_timer_without_jitter_is_unavailable_with_a_reason(step: int) -> None:
    source = CpuJitterSource(measure=simulated_timer(step, jitter=0))
    availability = source.availability()
    assert not availability.available
    assert "too coarse to carry jitter" in availability.reason
    with pytest.raises(SourceUnavailable, match="too coarse"):
        asyncio.run(source.start())


def test_a_stuck_timer_is_unavailable() -> None:
    source = CpuJitterSource(measure=stuck_timer)
    availability = source.availability()
    assert not availability.available and "does not advance" in availability.reason


def test_mostly_stuck_timer_is_refused_like_jitterentropy() -> None:
    # two durations alternating in long runs: 15 in 16 measurements have a zero difference
    deltas = np.repeat(np.array([100, 101] * 128, dtype=np.uint64), 16)
    profile = characterise_timer(deltas)
    assert profile.stuck_share > 0.9 and "stuck" in profile.problem


def test_a_virtual_machine_counter_with_odd_ticks_keeps_its_step() -> None:
    # a 26-tick counter that now and then reads one tick short (seen on this kind of VM)
    rng = np.random.default_rng(1)
    deltas = (rng.integers(30, 90, 4096) * 26).astype(np.uint64)
    deltas[rng.random(4096) < 0.02] -= np.uint64(1)
    assert timer_step(deltas) == 26


def test_a_backwards_timer_is_refused() -> None:
    deltas = (np.arange(1000, dtype=np.uint64) % 50 + 10).astype(np.uint64)
    deltas[:10] = np.uint64(2**64 - 5)  # t1 < t0
    assert "backwards" in characterise_timer(deltas).problem


def test_stuck_measurements_are_counted_across_batches() -> None:
    source = CpuJitterSource(measure=simulated_timer(1, jitter=3))
    asyncio.run(source.start())
    total = 0
    for _ in range(5):
        source.read(1000)
        total += 1000
    details = source.details()
    assert details["timer_step"] == 1
    assert source.measurements == total and 0 < details["stuck"] < total
    # the batched count equals one pass over the whole stream
    whole = stuck_mask(np.array([5, 5, 6, 7, 9, 9, 9], dtype=np.uint64))
    split = np.concatenate(
        (
            stuck_mask(np.array([5, 5, 6], dtype=np.uint64)),
            stuck_mask(np.array([7, 9, 9, 9], dtype=np.uint64), previous=(5, 6)),
        )
    )
    assert whole.tolist() == split.tolist()


def test_the_real_timer_here_gives_both_values_of_bit_zero() -> None:
    source = CpuJitterSource()
    if not source.availability().available:
        pytest.skip(f"cpu-jitter unavailable here: {source.availability().reason}")
    asyncio.run(source.start())
    samples = source.read(20_000)
    assert set(np.unique(samples & 1).tolist()) == {0, 1}
