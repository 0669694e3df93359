"""The k-of-n key quorum: one healthy source alone never funds a bundle; two independent ones do."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from chaosmagnet.config import Config, parse_config
from chaosmagnet.engine import Engine
from chaosmagnet.errors import ConfigError, PoolError
from chaosmagnet.minting.mint import MintOptions, mint_bundle
from chaosmagnet.minting.seeds import EngineSeedSource, PoolSeedSource
from chaosmagnet.pool import EntropyPool
from chaosmagnet.quorum import Quorum, quorum_from_config
from mint_helpers import ScriptedSource, make_minted, uniform


@pytest.fixture(scope="module")
def minted(tmp_path_factory):
    return make_minted(tmp_path_factory.mktemp("quorum"))


def _mint(minted, source, out: Path, timeout: float):
    opts = MintOptions(out_dir=out, timeout=timeout, seal=False)
    return asyncio.run(mint_bundle(opts, seed_source=source, identity=minted.identity, sealer=None, audit=minted.audit))


def _engine(names: list[str], config: Config | None = None) -> Engine:
    engine = Engine([ScriptedSource(n, [], declared_h=2.0) for n in names], config or Config(min_samples=1024))
    for i, name in enumerate(names):
        engine.ingest(name, uniform(65536, seed=i))
    return engine


def test_status_counts_independent_groups() -> None:
    q = Quorum()
    alone = q.status({"a": 512.0}, 384)
    assert not alone.met and alone.qualifying == ["a"] and alone.progress_bits == 192.0
    assert "2 independent healthy sources" in alone.reason and "1 did (a)" in alone.reason
    both = q.status({"a": 300.0, "b": 200.0}, 384)
    assert both.met and both.reason == "" and both.to_json()["met_by"] == {"a": ["a"], "b": ["b"]}
    short = q.status({"a": 300.0, "b": 100.0}, 384)  # b holds less than its share of 192
    assert not short.met and short.progress_bits == 292.0
    # the sources of one node are one group
    node = q.status({"node:n1:adc": 300.0, "node:n1:jitter": 300.0}, 384)
    assert not node.met and list(node.groups) == ["node:n1"]
    assert q.status({"node:n1:adc": 300.0, "node:n2:adc": 300.0}, 384).met


def test_configured_groups_and_k() -> None:
    q = quorum_from_config({"mint": {"quorum": 2, "dependence_groups": [["cpu-jitter", "system"]]}})
    assert not q.status({"cpu-jitter": 300.0, "system": 300.0}, 384).met
    assert q.status({"cpu-jitter": 300.0, "system": 1.0, "audio": 200.0}, 384).met
    three = quorum_from_config({"mint": {"quorum": 3}})
    assert not three.status({"a": 200.0, "b": 200.0}, 384).met
    assert three.status({"a": 128.0, "b": 128.0, "c": 128.0}, 384).met
    assert quorum_from_config({"mint": {"quorum": 1}}).status({"a": 384.0}, 384).met
    assert quorum_from_config({}).k == 2


@pytest.mark.parametrize(
    "table, message",
    [
        ({"quorum": 0}, "mint.quorum"),
        ({"quorum": True}, "mint.quorum"),
        ({"quorum": 2.5}, "mint.quorum"),
        ({"dependence_groups": ["a"]}, "dependence_groups"),
        ({"dependence_groups": [["a"], ["a", "b"]]}, "two groups"),
    ],
)
def test_bad_config_is_refused_at_load(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"mint": table})


def test_pool_counts_fresh_credit_unscaled() -> None:
    pool = EntropyPool()
    pool.absorb("slow", os.urandom(8), 200.0)
    for _ in range(50):
        pool.absorb("fast", os.urandom(8), 512.0)
    assert pool.credited_by_source()["slow"] < 5  # its ledger share is scaled away...
    assert pool.fresh_credit_by_source()["slow"] == 200.0  # ...but what it added is in the state
    assert Quorum().status(pool.fresh_credit_by_source(), 384).met
    pool.draw(32, purpose=b"t")
    assert pool.fresh_credit_by_source() == {}  # a draw starts the count again


def test_one_healthy_source_alone_never_funds_a_bundle(minted, tmp_path: Path) -> None:
    engine = _engine(["alone"])
    assert engine.healthy_credited_bits() >= 384  # plenty of credit, from one source
    said: list[str] = []
    source = EngineSeedSource(engine)
    source.on_waiting = said.append
    before = minted.log.read_bytes()
    with pytest.raises(PoolError, match="quorum: keys need 2 independent healthy sources"):
        _mint(minted, source, tmp_path / "out", timeout=0.5)
    assert said and "1 did (alone)" in said[0]  # it waited and said why
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert minted.log.read_bytes() == before
    assert engine.healthy_credited_bits() >= 384  # nothing was drawn


def test_one_source_waits_until_a_second_one_adds_its_share(minted, tmp_path: Path) -> None:
    engine = _engine(["first", "second"])
    engine.pool.draw(64, purpose=b"empty the fresh count")
    engine.ingest("first", uniform(65536, seed=5))
    said: list[str] = []
    source = EngineSeedSource(engine)
    source.on_waiting = said.append

    async def run() -> None:
        async def second_arrives() -> None:
            while not said:
                await asyncio.sleep(0.01)
            engine.ingest("second", uniform(65536, seed=6))

        helper = asyncio.create_task(second_arrives())
        opts = MintOptions(out_dir=tmp_path / "out", timeout=20.0, seal=False)
        await mint_bundle(opts, seed_source=source, identity=minted.identity, sealer=None, audit=minted.audit)
        await helper

    asyncio.run(run())
    (bundle,) = list((tmp_path / "out").iterdir())
    draw = json.loads(bundle.read_text())["provenance"]["keys"]["kem"]["draw"]
    assert draw["quorum"]["k"] == 2 and sorted(draw["quorum"]["met_by"]) == ["first", "second"]
    assert said and "1 did (first)" in said[0]


def test_two_independent_sources_fund_a_bundle_via_a_bare_pool(minted, tmp_path: Path) -> None:
    pool = EntropyPool()
    pool.absorb("a", os.urandom(64), 256.0)
    pool.absorb("b", os.urandom(64), 256.0)
    bundle = _mint(minted, PoolSeedSource(pool), tmp_path / "out", timeout=5.0)
    draw = json.loads(bundle.path.read_text())["provenance"]["keys"]["kem"]["draw"]
    assert draw["quorum"]["met_by"] == {"a": ["a"], "b": ["b"]}


def test_one_source_with_quorum_one_in_the_config_mints(minted, tmp_path: Path) -> None:
    config = parse_config({"mint": {"quorum": 1}, "estimates": {"min_samples": 1024}})
    engine = _engine(["solo"], config)
    bundle = _mint(minted, EngineSeedSource(engine), tmp_path / "out", timeout=5.0)
    draw = json.loads(bundle.path.read_text())["provenance"]["keys"]["kem"]["draw"]
    assert draw["quorum"]["k"] == 1 and list(draw["quorum"]["met_by"]) == ["solo"]


def test_random_full_entropy_waits_for_the_quorum() -> None:
    import io

    from chaosmagnet.cli.core_commands import _random
    from rich.console import Console

    engine = _engine(["alone"])
    err = io.StringIO()
    with pytest.raises(PoolError, match="quorum"):
        asyncio.run(_random(engine, 16, io.BytesIO(), 0.5, Console(file=err), full_entropy=True))
    assert "waiting: quorum" in err.getvalue()
    engine2 = _engine(["one", "two"])
    out = io.BytesIO()
    err2 = io.StringIO()
    asyncio.run(_random(engine2, 16, out, 5.0, Console(file=err2, width=200), full_entropy=True))
    assert len(out.getvalue()) == 16
    assert "256.0 bits of min-entropy" in err2.getvalue() and "full entropy" in err2.getvalue()
