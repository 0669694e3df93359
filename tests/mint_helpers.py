"""Shared pieces for tests/test_mint_*.py and tests/test_audit.py.

Tests feed seeds through a real EntropyPool (PoolSeedSource) credited by the
test itself, and pass cheap scrypt parameters explicitly (the defaults stay
strong).  ``minted`` builds a host identity, an audit log and one bundle in a
temporary folder.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from chaosmagnet.audit import AuditLog
from chaosmagnet.minting.identity import (
    HostIdentity,
    IdentityPublic,
    create_identity,
    load_identity_public,
)
from chaosmagnet.minting.mint import MintedBundle, MintOptions, mint_bundle
from chaosmagnet.minting.sealing import ScryptParams, Sealer
from chaosmagnet.minting.seeds import PoolSeedSource, SeedDraw
from chaosmagnet.pool import EntropyPool
from source_helpers import ScriptedSource, uniform  # noqa: F401  (re-exported for the mint tests)

FAST_SCRYPT = ScryptParams(n=2**10, r=8, p=1)  # tests only; passed explicitly
PASSPHRASE = "correct horse battery staple"


class FullPool(PoolSeedSource):
    """A real pool that the test credits fully before every draw, half from each of
    two independent sources (so the default key quorum of 2 is met)."""

    def __init__(self, source_name: str = "test-source", second_source: str = "test-source-b") -> None:
        states = {name: {"state": "ok", "h_assessed": 6.5} for name in (source_name, second_source)}
        super().__init__(EntropyPool(), states)
        self.source_name = source_name
        self.second_source = second_source
        self.draws = 0

    async def draw(self, n_bytes: int, **kwargs) -> SeedDraw:  # type: ignore[override]
        half = self.pool.capacity_bits / 2
        self.pool.absorb(self.source_name, os.urandom(64), half)
        self.pool.absorb(self.second_source, os.urandom(64), half)
        self.draws += 1
        return await super().draw(n_bytes, **kwargs)


@dataclass
class Minted:
    """Everything one minted bundle test needs."""

    root: Path
    keys: Path
    log: Path
    identity: HostIdentity
    public: IdentityPublic
    sealer: Sealer
    audit: AuditLog
    source: FullPool
    bundle: MintedBundle


def make_minted(root: Path, **options: object) -> Minted:
    """Create an identity, an audit log and one bundle under ``root``."""

    async def build() -> Minted:
        source = FullPool()
        sealer = Sealer(PASSPHRASE, FAST_SCRYPT)
        keys = root / "keys"
        identity = await create_identity(keys, source, sealer, timeout=5.0)
        audit = AuditLog(root / "logs" / "audit.jsonl", identity.audit_signer)
        audit.record("identity_created", identity=identity.fingerprint)
        opts = MintOptions(out_dir=keys, timeout=5.0, **options)  # type: ignore[arg-type]
        opts.validate()
        bundle = await mint_bundle(
            opts, seed_source=source, identity=identity, sealer=sealer, audit=audit
        )
        return Minted(
            root,
            keys,
            audit.path,
            identity,
            load_identity_public(keys),
            sealer,
            audit,
            source,
            bundle,
        )

    return asyncio.run(build())


