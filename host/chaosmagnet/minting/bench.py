"""Minting benchmark: one bundle (ML-KEM-768 + Falcon-512 and ML-DSA-65 signatures).

Measured the way the issue states the target (under 50 ms, and under twice
the raw library work): identity already loaded, passphrase already
stretched, entropy available.  The pool is a real EntropyPool refilled
before each bundle with OS-RNG bytes *credited by the benchmark itself*
(labelled ``bench``), so waiting for credit is not timed.  The raw library
work (ML-KEM-768 keygen from a seed, a Falcon-512 and an ML-DSA-65 signature,
through the same backends) is timed in the same loop, alternating with the
bundles, so that both medians see the same load; the CPU time of each
(time.process_time) is reported beside the wall time, since on a shared
machine it moves less.  The time the bundle spends in fsync is measured too:
on a slow disk it is most of the difference.
Everything runs in a temporary folder; nothing is left behind.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaosmagnet.audit import AuditLog
from chaosmagnet.minting.identity import create_identity
from chaosmagnet.minting.mint import MintOptions, mint_bundle
from chaosmagnet.minting.sealing import DEFAULT_SCRYPT, ScryptParams, Sealer
from chaosmagnet.minting.seeds import PoolSeedSource
from chaosmagnet.pool import EntropyPool
from chaosmagnet.pqc.registry import backend_for


def mint_benchmark(runs: int = 40, scrypt: ScryptParams = DEFAULT_SCRYPT) -> dict[str, Any]:
    """Time minting one sealed, signed, audited bundle; returns figures in ms."""
    return asyncio.run(_bench(runs, scrypt))


def _refill(pool: EntropyPool) -> None:
    # two independent sources, half each: the key quorum (k = 2) is met
    for name in ("bench-a", "bench-b"):
        pool.absorb(name, os.urandom(64), pool.capacity_bits / 2)


class _FsyncClock:
    """Counts and times os.fsync calls while the benchmark runs (the bundle's durable writes)."""

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self._real = os.fsync

    def __enter__(self) -> _FsyncClock:
        real = self._real

        def timed(fd: Any) -> None:
            started = time.perf_counter()
            try:
                real(fd)
            finally:
                self.calls += 1
                self.seconds += time.perf_counter() - started

        os.fsync = timed  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        os.fsync = self._real  # type: ignore[assignment]


def _raw_work(message: bytes) -> Callable[[], None]:
    """The raw library work of one bundle: ML-KEM-768 keygen (seeded where the backend can),
    a Falcon-512 and an ML-DSA-65 signature, through the backends minting uses."""
    kem = backend_for("ML-KEM-768")
    signers = [(backend_for(a), a, backend_for(a).generate_keypair(a)) for a in ("Falcon-512", "ML-DSA-65")]
    seeded = kem.can_seed("ML-KEM-768")

    def work() -> None:
        kem.generate_keypair("ML-KEM-768", os.urandom(64) if seeded else None)
        for backend, algorithm, pair in signers:
            backend.sign(algorithm, pair.secret, pair.secret_encoding, message)

    return work


async def _bench(runs: int, scrypt: ScryptParams) -> dict[str, Any]:
    pool = EntropyPool()
    source = PoolSeedSource(pool)
    raw_work = _raw_work(os.urandom(1024))
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
        times: list[float] = []
        raw_times: list[float] = []
        cpu: list[float] = []
        raw_cpu: list[float] = []
        fsync_ms: list[float] = []
        fsync_calls: list[int] = []
        for _ in range(runs + 1):  # the first round warms caches and is not counted
            _refill(pool)
            with _FsyncClock() as clock:
                started, cpu_started = time.perf_counter(), time.process_time()
                await mint_bundle(
                    options, seed_source=source, identity=identity, sealer=sealer, audit=audit
                )
                times.append((time.perf_counter() - started) * 1e3)
                cpu.append((time.process_time() - cpu_started) * 1e3)
            fsync_ms.append(clock.seconds * 1e3)
            fsync_calls.append(clock.calls)
            started, cpu_started = time.perf_counter(), time.process_time()
            raw_work()
            raw_times.append((time.perf_counter() - started) * 1e3)
            raw_cpu.append((time.process_time() - cpu_started) * 1e3)
        times, raw_times, fsync_ms, fsync_calls = times[1:], raw_times[1:], fsync_ms[1:], fsync_calls[1:]
        cpu, raw_cpu = cpu[1:], raw_cpu[1:]
    median = statistics.median(times)
    raw = statistics.median(raw_times)
    return {
        "bundle": "ML-KEM-768 sealed; Falcon-512 + ML-DSA-65 signatures; audit entry; "
        "0600 atomic write",
        "runs": runs,
        "median_ms": round(median, 2),
        "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2),
        "target_median_ms": 50,
        "raw_library_work_median_ms": round(raw, 2),
        "bundle_over_raw": round(median / raw, 2),
        "cpu_median_ms": round(statistics.median(cpu), 2),
        "raw_library_work_cpu_median_ms": round(statistics.median(raw_cpu), 2),
        "fsyncs_per_bundle": max(fsync_calls),
        "fsync_per_bundle_median_ms": round(statistics.median(fsync_ms), 2),
        "passphrase_stretch_ms (once per session)": round(stretch_ms, 1),
        "scrypt": f"n={scrypt.n} r={scrypt.r} p={scrypt.p}",
    }


class _AlwaysFull(PoolSeedSource):
    """Refills the pool before each draw (identity creation needs several draws)."""

    async def draw(self, n_bytes: int, **kwargs: Any):  # type: ignore[override]
        _refill(self.pool)
        return await super().draw(n_bytes, **kwargs)
