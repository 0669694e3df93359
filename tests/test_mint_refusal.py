"""Minting refuses without enough credited entropy from healthy sources, and writes nothing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import pytest
from chaosmagnet.audit import AuditLog
from chaosmagnet.config import Config
from chaosmagnet.engine import Engine
from chaosmagnet.errors import PoolError, UsageError
from chaosmagnet.minting.mint import MintOptions, mint_bundle, mint_bundles
from chaosmagnet.minting.sealing import Sealer
from chaosmagnet.minting.seeds import EngineSeedSource, PoolSeedSource
from chaosmagnet.pool import EntropyPool
from mint_helpers import FAST_SCRYPT, PASSPHRASE, FullPool, ScriptedSource, make_minted, uniform


@pytest.fixture(scope="module")
def minted(tmp_path_factory: pytest.TempPathFactory):
    return make_minted(tmp_path_factory.mktemp("refusal"))


def _mint(minted, source, out: Path, **options) -> None:
    opts = MintOptions(out_dir=out, **options)
    opts.validate()
    asyncio.run(
        mint_bundle(
            opts,
            seed_source=source,
            identity=minted.identity,
            sealer=Sealer(PASSPHRASE, FAST_SCRYPT),
            audit=minted.audit,
        )
    )


def _nothing_written(minted, out: Path, log_before: bytes) -> None:
    assert not out.exists() or not any(out.iterdir())
    assert minted.log.read_bytes() == log_before


def test_too_little_credit_times_out(minted, tmp_path: Path) -> None:
    pool = EntropyPool()
    pool.absorb("weak", os.urandom(64), 150.0)  # together below the 384 bits ML-KEM-768 needs
    pool.absorb("weak-b", os.urandom(64), 150.0)
    before = minted.log.read_bytes()
    progress: list[tuple[float, float]] = []
    with pytest.raises(PoolError, match="timed out .* 300 of 384 credited bits"):
        opts = MintOptions(out_dir=tmp_path / "out", timeout=0.2)
        asyncio.run(
            mint_bundle(
                opts,
                seed_source=PoolSeedSource(pool),
                identity=minted.identity,
                sealer=None if not opts.seal else Sealer(PASSPHRASE, FAST_SCRYPT),
                audit=minted.audit,
                on_progress=lambda what, have, need: progress.append((have, need)),
            )
        )
    assert progress and progress[-1] == (300.0, 384.0)
    assert pool.credited_bits == pytest.approx(300.0)  # nothing was drawn
    _nothing_written(minted, tmp_path / "out", before)


def test_credit_from_quarantined_sources_does_not_count(minted, tmp_path: Path) -> None:
    pool = EntropyPool()
    pool.absorb("stuck", os.urandom(64), 512.0)
    pool.absorb("fine", os.urandom(64), 100.0)
    source = PoolSeedSource(pool, {"stuck": {"state": "quarantined"}, "fine": {"state": "ok"}})
    before = minted.log.read_bytes()
    with pytest.raises(PoolError, match="timed out"):
        _mint(minted, source, tmp_path / "out", timeout=0.2)
    _nothing_written(minted, tmp_path / "out", before)


def test_every_source_quarantined_refuses_at_once(minted, tmp_path: Path) -> None:
    pool = EntropyPool()
    pool.absorb("a", os.urandom(64), 512.0)
    source = PoolSeedSource(pool, {"a": {"state": "quarantined"}, "b": {"state": "failed"}})
    with pytest.raises(PoolError, match="no healthy source"):
        _mint(minted, source, tmp_path / "out", timeout=30.0)


def test_engine_with_quarantined_source_refuses(minted, tmp_path: Path) -> None:
    """A real Engine: a stuck source fails its RCT, is quarantined, and mint refuses."""
    engine = Engine([ScriptedSource("stuck", [], declared_h=4.0)], Config(min_samples=1024))
    engine.ingest("stuck", np.zeros(4096, dtype=np.uint8))
    assert engine.source_states()["stuck"]["state"] in ("quarantined", "failed")
    with pytest.raises(PoolError, match="no healthy source|no enabled source can earn credit: stuck is"):
        _mint(minted, EngineSeedSource(engine), tmp_path / "out", timeout=30.0)


def test_engine_with_healthy_sources_mints(minted, tmp_path: Path) -> None:
    sources = [ScriptedSource(name, [], declared_h=2.0) for name in ("good", "good-b")]
    engine = Engine(sources, Config(min_samples=1024))
    engine.ingest("good", uniform(65536))
    engine.ingest("good-b", uniform(65536))
    assert engine.healthy_credited_bits() >= 384
    _mint(minted, EngineSeedSource(engine), tmp_path / "out", timeout=5.0)
    (bundle,) = list((tmp_path / "out").iterdir())
    import json

    draw = json.loads(bundle.read_text())["provenance"]["keys"]["kem"]["draw"]
    assert draw["via"] == "engine" and draw["sources"]["good"]["state"] == "ok"
    assert draw["sources"]["good"]["credited_bits"] + draw["sources"]["good-b"]["credited_bits"] == pytest.approx(512.0)
    assert sorted(draw["quorum"]["met_by"]) == ["good", "good-b"]


def test_engine_without_enough_credit_times_out(minted, tmp_path: Path) -> None:
    engine = Engine([ScriptedSource("slow", [], declared_h=0.01)], Config(min_samples=1024))
    engine.ingest("slow", uniform(8192))  # 0.01 bit/sample: ~80 bits
    assert 0 < engine.healthy_credited_bits() < 384
    with pytest.raises(PoolError, match="timed out"):
        _mint(minted, EngineSeedSource(engine), tmp_path / "out", timeout=0.3)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"kem": "ML-DSA-65"}, "not a KEM"),
        ({"sign_keypair": "ML-KEM-768"}, "not a signature"),
        ({"credit_factor": 0.5}, "at least 1"),
        ({"count": 0}, "at least 1"),
    ],
)
def test_bad_options_refused_before_drawing(options: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=message):
        MintOptions(out_dir=tmp_path, **options).validate()


def test_count_mints_each_from_its_own_draw(minted, tmp_path: Path) -> None:
    source = FullPool()
    opts = MintOptions(out_dir=tmp_path / "many", count=3)
    bundles = asyncio.run(
        mint_bundles(
            opts,
            seed_source=source,
            identity=minted.identity,
            sealer=Sealer(PASSPHRASE, FAST_SCRYPT),
            audit=AuditLog(tmp_path / "audit.jsonl", minted.identity.audit_signer),
        )
    )
    assert len(bundles) == 3 and source.draws == 3
    assert len({b.bundle_id for b in bundles}) == 3 and [b.audit_seq for b in bundles] == [1, 2, 3]
