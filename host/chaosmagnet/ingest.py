"""One batch of a source into the pool in one C call: health tests, window counts, absorb.

The engine's hot path.  ``ingest_batch`` masks the samples to the source's
width, runs RCT and APT, adds them to the online estimator's window and
absorbs them into the pool (header first: source id, sequence number,
length) in a single call of chaos_ingest (csrc/health/ingest.c), which reaches
the pool's Keccak sponge through chaos_keccak_absorb.  The numbers and the
absorbed byte stream are those of HealthMonitor.run, OnlineEstimator.update
and EntropyPool.absorb called one after the other (tests/test_ingest.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chaosmagnet._health import ffi, lib
from chaosmagnet.errors import PoolError
from chaosmagnet.estimates import OnlineEstimator
from chaosmagnet.extractor import ABSORB_FUNCTION_ADDRESS
from chaosmagnet.health.monitor import HealthFailure, HealthMonitor
from chaosmagnet.pool import EntropyPool

__all__ = ["ingest_batch"]

_ABSORB = ffi.cast("chaos_absorb_fn", ABSORB_FUNCTION_ADDRESS)
_FAILED = ffi.cast("size_t", -1)


def ingest_batch(
    pool: EntropyPool,
    source: str,
    samples: np.ndarray,
    bits_per_sample: int,
    monitor: HealthMonitor,
    estimator: OnlineEstimator,
) -> list[HealthFailure]:
    """Health-test, count and absorb one batch of uint8 samples (no credit); return its failures."""
    n = samples.size
    health, records, capacity = monitor.c_state()
    window = estimator.c_state()
    mask = (1 << bits_per_sample) - 1
    buffer = ffi.from_buffer("uint8_t[]", samples)
    found = 0

    def kernel(header: bytes, sponge: Any) -> None:
        nonlocal found
        found = lib.chaos_ingest(
            health,
            records,
            capacity,
            window,
            _ABSORB,
            sponge,  # the pool's chaos_keccak_state *, passed as the kernel's void *
            header,
            len(header),
            buffer,
            n,
            mask,
        )

    pool.absorb_through(source, n, bits_per_sample, kernel)
    estimator.changed()
    if found == _FAILED_VALUE:  # pragma: no cover - the pool checked the sponge's phase
        raise PoolError("the pool's sponge refused the batch")
    return monitor.failures_found(found)


_FAILED_VALUE = int(_FAILED)
