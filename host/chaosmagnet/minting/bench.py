"""Minting benchmark: one bundle (ML-KEM-768 + Falcon-512 and ML-DSA-65 signatures).

Measured the way the issue states the target (under 50 ms): identity already
loaded, passphrase already stretched, entropy available.  The pool is a real
EntropyPool refilled before each bundle with OS-RNG bytes *credited by the
benchmark itself* (labelled ``bench``), so waiting for credit is not timed.
Everything runs in a temporary folder; nothing is left behind.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from chaosmagnet.audit import AuditLog
from chaosmagnet.minting.identity import create_identity
from chaosmagnet.minting.mint import MintOptions, mint_bundle
from chaosmagnet.minting.sealing import DEFAULT_SCRYPT, ScryptParams, Sealer
from chaosmagnet.minting.seeds import PoolSeedSource
from chaosmagnet.pool import EntropyPool


def mint_benchmark(runs: int = 20, scrypt: ScryptParams = DEFAULT_SCRYPT) -> dict[str, Any]:
    """Time minting one sealed, signed, audited bundle; returns figures in ms."""
    return asyncio.run(_bench(runs, scrypt))


def _refill(pool: EntropyPool) -> None:
    # two independent sources, half each: the key quorum (k = 2) is met
    for name in ("bench-a", "bench-b"):
        pool.absorb(name, os.urandom(64), pool.capacity_bits / 2)


async def _bench(runs: int, scrypt: ScryptParams) -> dict[str, Any]:
    pool = EntropyPool()
    source = PoolSeedSource(pool)
    with tempfile.TemporaryDirectory(prefix="chaosmagnet-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        sealer = Sealer("benchmark passphrase", scrypt)
        stretch_ms = (time.perf_counter() - started) * 1e3
        _refill(pool)
        identity = await create_identity(folder / "keys", _AlwaysFull(pool), sealer, timeout=5.0)
        audit = AuditLog(folder / "logs" / "audit.jsonl", identity.audit_signer)
        options = MintOptions(out_dir=folder / "keys", timeout=5.0)
        options.validate()
        times = []
        for _ in range(runs + 1):  # the first one warms caches and is not counted
            _refill(pool)
            started = time.perf_counter()
            await mint_bundle(
                options, seed_source=source, identity=identity, sealer=sealer, audit=audit
            )
            times.append((time.perf_counter() - started) * 1e3)
        times = times[1:]
    return {
        "bundle": "ML-KEM-768 sealed; Falcon-512 + ML-DSA-65 signatures; audit entry; "
        "0600 atomic write",
        "runs": runs,
        "median_ms": round(statistics.median(times), 2),
        "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2),
        "target_ms": 50,
        "passphrase_stretch_ms (once per session)": round(stretch_ms, 1),
        "scrypt": f"n={scrypt.n} r={scrypt.r} p={scrypt.p}",
    }


class _AlwaysFull(PoolSeedSource):
    """Refills the pool before each draw (identity creation needs several draws)."""

    async def draw(self, n_bytes: int, **kwargs: Any):  # type: ignore[override]
        _refill(self.pool)
        return await super().draw(n_bytes, **kwargs)
