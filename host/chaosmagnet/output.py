"""Conditioned random output: a generator seeded from the pool.

The generator is a SHAKE256 key-erasure stream on our C sponge: from a
256-bit key K, squeeze a block of output followed by the next key, then
forget K.  It is seeded only from a pool draw backed by at least 256
credited bits, and reseeds from the pool (mixing the old key in) every
``reseed_bytes`` of output or ``reseed_seconds``, whichever comes first, when
the pool again holds 256 credited bits.

What a seed carries follows SP 800-90B §3.1.5 for the pool's vetted Keccak
conditioning (chaosmagnet.assessment.conditioning.pool_output_entropy): a
256-bit seed squeezed from 256 credited bits carries 255 bits of
min-entropy, and full entropy needs 256 + 64 = 320 credited bits
(``FULL_ENTROPY_SEED_BITS``); ``seed_bits`` and ``can_seed`` let a caller ask
for that (``chaos-host random --full-entropy``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chaosmagnet.errors import PoolError, UsageError
from chaosmagnet.extractor import Sponge
from chaosmagnet.pool import EntropyPool

SEED_BITS = 256
#: Credited bits for a full-entropy 256-bit seed: h_in >= n_out + 64 (SP 800-90B §3.1.5).
FULL_ENTROPY_SEED_BITS = SEED_BITS + 64
_KEY_BYTES = 32
_DOMAIN = b"chaosmagnet.output/1"


class OutputGenerator:
    """Key-erasure SHAKE256 generator, reseeded from an EntropyPool."""

    BLOCK = 1 << 20  # output bytes per key

    def __init__(
        self,
        pool: EntropyPool,
        *,
        reseed_bytes: int = 16 << 20,
        reseed_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        seed_bits: float = SEED_BITS,
        can_seed: Callable[[], bool] | None = None,
    ) -> None:
        self.pool = pool
        self.seed_bits = seed_bits
        self._can_seed = can_seed
        self.seed_credit: float = 0.0  # credited bits in the pool when the last seed was squeezed
        self.reseed_bytes = reseed_bytes
        self.reseed_seconds = reseed_seconds
        self._clock = clock
        self._key: bytes | None = None
        self._since_reseed = 0
        self._reseeded_at = 0.0
        self.reseeds = 0

    def __repr__(self) -> str:
        return f"<OutputGenerator seeded={self.seeded} reseeds={self.reseeds}>"

    @property
    def seeded(self) -> bool:
        return self._key is not None

    def seed(self) -> None:
        """(Re)seed from the pool; PoolError unless seed_bits credited bits (and can_seed) are there."""
        if self.pool.credited_bits < self.seed_bits:
            raise PoolError(f"the pool holds fewer than {self.seed_bits:g} credited bits")
        if self._can_seed is not None and not self._can_seed():
            raise PoolError("the pool's credit does not come from enough independent sources")
        draw = self.pool.draw(_KEY_BYTES, purpose=b"output-seed")
        self.seed_credit = draw.fill_before * self.pool.capacity_bits
        sponge = Sponge()
        sponge.absorb(_DOMAIN + b"/seed")
        sponge.absorb(draw.data)
        if self._key is not None:
            sponge.absorb(self._key)
        self._key = sponge.squeeze(_KEY_BYTES)
        self._since_reseed = 0
        self._reseeded_at = self._clock()
        self.reseeds += 1

    def _maybe_reseed(self) -> None:
        due = self._since_reseed >= self.reseed_bytes or self._clock() - self._reseeded_at >= self.reseed_seconds
        if due and self.pool.credited_bits >= self.seed_bits and (self._can_seed is None or self._can_seed()):
            self.seed()

    def generate_into(self, out: bytearray | memoryview) -> None:
        """Fill ``out`` with output (at most BLOCK bytes per key)."""
        if self._key is None:
            raise PoolError("the output generator is not seeded")
        view = memoryview(out)
        pos = 0
        while pos < len(view):
            self._maybe_reseed()
            n = min(self.BLOCK, len(view) - pos)
            sponge = Sponge()
            sponge.absorb(_DOMAIN + b"/block")
            sponge.absorb(self._key)
            sponge.squeeze_into(view[pos : pos + n])
            self._key = sponge.squeeze(_KEY_BYTES)
            sponge.wipe()
            pos += n
            self._since_reseed += n

    def generate(self, n: int) -> bytes:
        """Return n bytes of output."""
        if n < 0:
            raise UsageError("byte count cannot be negative")
        buf = bytearray(n)
        self.generate_into(buf)
        return bytes(buf)
