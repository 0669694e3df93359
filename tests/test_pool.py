"""The pool: domain-separated absorb, credit ledger and capping, draw with
debit and ratchet, fingerprints that never reveal the state, and the output
generator seeded from it."""

from __future__ import annotations

import numpy as np
import pytest
from chaosmagnet.errors import PoolError, UsageError
from chaosmagnet.output import OutputGenerator
from chaosmagnet.pool import EntropyPool


def filled_pool(bits: float = 512, capacity: int = 512) -> EntropyPool:
    pool = EntropyPool(capacity)
    pool.absorb("a", b"\x01" * 100, credited_bits=bits / 2)
    pool.absorb("b", np.arange(100, dtype=np.uint8), credited_bits=bits / 2)
    return pool


def test_credit_ledger_and_stats() -> None:
    pool = EntropyPool(512)
    pool.absorb("a", b"x" * 1000, credited_bits=100, bits_per_sample=8)
    pool.absorb("b", b"y" * 500, credited_bits=50, bits_per_sample=4)
    assert pool.credited_bits == pytest.approx(150)
    assert pool.credited_by_source() == pytest.approx({"a": 100, "b": 50})
    assert pool.stats.raw_bytes == 1500
    assert pool.stats.raw_bits == 1000 * 8 + 500 * 4
    assert pool.extraction_ratio == pytest.approx(150 / 10000)
    assert pool.fill == pytest.approx(150 / 512)


def test_credit_is_capped_at_capacity_keeping_proportions() -> None:
    pool = EntropyPool(512)
    pool.absorb("a", b"x", credited_bits=400)
    pool.absorb("b", b"y", credited_bits=400)
    assert pool.credited_bits == pytest.approx(512)
    ledger = pool.credited_by_source()
    assert ledger["a"] == pytest.approx(ledger["b"])


def test_draw_debits_proportionally_and_reports_provenance() -> None:
    pool = EntropyPool(512)
    pool.absorb("a", b"x", credited_bits=300)
    pool.absorb("b", b"y", credited_bits=100)
    draw = pool.draw(32, purpose=b"test")
    assert len(draw.data) == 32
    assert draw.debited_total == pytest.approx(256)
    assert draw.debited["a"] == pytest.approx(192) and draw.debited["b"] == pytest.approx(64)
    assert pool.credited_bits == pytest.approx(144)
    assert draw.fill_before == pytest.approx(400 / 512)
    assert len(bytes.fromhex(draw.commitment)) == 32


def test_draw_never_debits_more_than_available() -> None:
    pool = EntropyPool(512)
    pool.absorb("a", b"x", credited_bits=10)
    draw = pool.draw(64, purpose=b"test")
    assert draw.debited_total == pytest.approx(10)
    assert pool.credited_bits == 0


def test_same_inputs_same_outputs_and_domain_separation() -> None:
    def run(order: list[tuple[str, bytes]]) -> bytes:
        pool = EntropyPool()
        for name, data in order:
            pool.absorb(name, data)
        return pool.draw(32, purpose=b"p").data

    base = [("a", b"hello"), ("b", b"world")]
    assert run(base) == run(base)
    assert run(base) != run([("b", b"world"), ("a", b"hello")])  # sequence matters
    assert run(base) != run([("a", b"hellow"), ("b", b"orld")])  # lengths are framed
    assert run(base) != run([("ab", b"hello"), ("b", b"world")])  # source id is framed


def test_ratchet_makes_consecutive_draws_differ() -> None:
    pool = filled_pool()
    outputs = {pool.draw(32, purpose=b"p").data for _ in range(50)}
    assert len(outputs) == 50


def test_fingerprint_and_commitment_do_not_change_the_state() -> None:
    a, b = filled_pool(), filled_pool()
    fp = a.fingerprint()
    assert len(fp) == 16 and fp == b.fingerprint()
    a.commitment()
    a.fingerprint()
    assert a.draw(32, purpose=b"p").data == b.draw(32, purpose=b"p").data


def test_outputs_are_independent_of_fingerprint_values() -> None:
    pool = filled_pool()
    fp = bytes.fromhex(pool.fingerprint())
    commitment = bytes.fromhex(pool.commitment())
    out = pool.draw(64, purpose=b"p").data
    assert fp not in out and commitment[:8] not in out


def test_repr_never_shows_state() -> None:
    pool = filled_pool()
    text = repr(pool) + repr(pool.stats)
    assert "credited" in repr(pool)
    assert pool.fingerprint() not in text


def test_bad_arguments() -> None:
    with pytest.raises(UsageError):
        EntropyPool(0)
    pool = EntropyPool()
    with pytest.raises(UsageError):
        pool.draw(0, purpose=b"p")
    with pytest.raises(UsageError):
        pool.absorb("a", b"x", credited_bits=-1)


def test_output_generator_requires_256_credited_bits() -> None:
    pool = EntropyPool()
    pool.absorb("a", b"x", credited_bits=255)
    generator = OutputGenerator(pool)
    with pytest.raises(PoolError):
        generator.seed()
    with pytest.raises(PoolError):
        generator.generate(10)
    pool.absorb("a", b"y", credited_bits=1)
    generator.seed()
    assert pool.credited_bits == pytest.approx(0)
    out = generator.generate(3 * OutputGenerator.BLOCK + 17)
    assert len(out) == 3 * OutputGenerator.BLOCK + 17
    # blocks under successive keys differ
    assert out[:64] != out[OutputGenerator.BLOCK : OutputGenerator.BLOCK + 64]


def test_output_generator_reseeds_when_due_and_credit_is_there() -> None:
    clock = [0.0]
    pool = filled_pool()
    generator = OutputGenerator(pool, reseed_bytes=1 << 20, reseed_seconds=5, clock=lambda: clock[0])
    generator.seed()
    assert generator.reseeds == 1
    generator.generate(1 << 20)
    pool.absorb("a", b"more", credited_bits=300)
    generator.generate(10)
    assert generator.reseeds == 2  # by bytes
    pool.absorb("a", b"more", credited_bits=300)
    clock[0] += 6
    generator.generate(10)
    assert generator.reseeds == 3  # by time
    generator.generate(10)
    assert generator.reseeds == 3  # not due, and no credit left anyway


def test_output_byte_distribution_is_flat() -> None:
    pool = filled_pool()
    generator = OutputGenerator(pool)
    generator.seed()
    data = np.frombuffer(generator.generate(1 << 20), dtype=np.uint8)
    counts = np.bincount(data, minlength=256)
    chi2 = float(((counts - data.size / 256) ** 2 / (data.size / 256)).sum())
    assert chi2 < 350  # df = 255; p(chi2 > 350) ~ 1e-4
