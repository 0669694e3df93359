"""The entropy pool: a Keccak sponge (our C code) with a credit ledger.

* Every absorb is domain-separated: a header with the source id, a global
  sequence number and the payload length precedes the payload.
* The ledger holds credited bits (min-entropy) per source; the total never
  exceeds the capacity.  When new credit would overflow it, every entry is
  scaled down so the total equals the capacity and recent sources stay
  represented.
* Beside the (scaled) ledger, the pool counts each source's credit absorbed
  since the last draw, unscaled: a slow source's ledger share shrinks as a
  fast one fills the pool, but what it put in since the last ratchet is still
  in the state.  The key quorum (chaosmagnet.quorum) looks at this.
* draw() squeezes output for a purpose, debits credit, and ratchets: the
  sponge is replaced by a fresh one keyed from a further squeeze, so a later
  compromise of the state does not expose earlier outputs.
* The state is never exposed: fingerprint() and commitment() come from copies
  of the sponge in their own domains.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chaosmagnet.errors import UsageError
from chaosmagnet.extractor import Sponge

_DOMAIN_ABSORB = b"chaosmagnet.pool.absorb/1"
_DOMAIN_DRAW = b"chaosmagnet.pool.draw/1"
_DOMAIN_RATCHET = b"chaosmagnet.pool.ratchet/1"
_DOMAIN_FINGERPRINT = b"chaosmagnet.pool.fingerprint/1"
_DOMAIN_COMMITMENT = b"chaosmagnet.pool.commitment/1"
_RATCHET_BYTES = 64  # carried into the next state: the sponge's 512-bit capacity

DEFAULT_CAPACITY_BITS = 512


_SEQUENCE_AND_LENGTH = struct.Struct("<QQ")


def _framed(label: bytes) -> bytes:
    return struct.pack("<H", len(label)) + label


@dataclass(frozen=True)
class PoolDraw:
    """Output of one draw, with where its credit came from."""

    data: bytes = field(repr=False)
    debited: dict[str, float]  # credited bits drawn, per source
    debited_total: float
    fill_before: float
    commitment: str  # hex, from the state before the draw, in its own domain


@dataclass
class PoolStats:
    """Counters shown in the live view; none reveals the state."""

    raw_bytes: int = 0  # payload bytes absorbed
    raw_bits: int = 0  # samples x bits per sample absorbed
    credited_total: float = 0.0  # all credit ever added (before capping)
    drawn_bits: float = 0.0  # credit debited by draws
    output_bytes: int = 0
    absorbs: int = 0
    draws: int = 0
    per_source_raw_bytes: dict[str, int] = field(default_factory=dict)


class EntropyPool:
    """Thread-safe pool: absorb raw samples with credit, draw conditioned output."""

    def __init__(self, capacity_bits: int = DEFAULT_CAPACITY_BITS) -> None:
        if capacity_bits <= 0:
            raise UsageError("pool capacity must be positive")
        self.capacity_bits = capacity_bits
        self._lock = threading.Lock()
        self._sponge = Sponge()
        self._sponge.absorb(_framed(b"chaosmagnet.pool/1"))
        self._sequence = 0
        self._ledger: dict[str, float] = {}
        self._prefixes: dict[str, bytes] = {}  # absorb header up to the sequence number, per source
        self._fresh: dict[str, float] = {}  # credit absorbed since the last draw, unscaled
        self.stats = PoolStats()

    def __repr__(self) -> str:
        return f"<EntropyPool credited={self.credited_bits:.1f}/{self.capacity_bits} bits>"

    # -- credit -----------------------------------------------------------
    @property
    def credited_bits(self) -> float:
        """Credited bits currently in the pool (<= capacity)."""
        with self._lock:
            return sum(self._ledger.values())

    @property
    def fill(self) -> float:
        """Credited bits as a fraction of the capacity (0..1)."""
        return self.credited_bits / self.capacity_bits

    def credited_by_source(self) -> dict[str, float]:
        """Credited bits currently attributed to each source."""
        with self._lock:
            return dict(self._ledger)

    def fresh_credit_by_source(self) -> dict[str, float]:
        """Credited bits each source absorbed since the last draw (not scaled to the capacity)."""
        with self._lock:
            return dict(self._fresh)

    @property
    def extraction_ratio(self) -> float:
        """Credited bits per raw bit absorbed, over the pool's life."""
        raw = self.stats.raw_bits
        return self.stats.credited_total / raw if raw else 0.0

    # -- absorb -----------------------------------------------------------
    def absorb(
        self,
        source: str,
        samples: np.ndarray | bytes,
        credited_bits: float = 0.0,
        bits_per_sample: int = 8,
    ) -> None:
        """Mix a batch from ``source`` in, crediting it ``credited_bits``."""
        if credited_bits < 0:
            raise UsageError("credit cannot be negative")
        payload = np.ascontiguousarray(samples, dtype=np.uint8) if not isinstance(samples, bytes) else samples
        length = len(payload)
        name = source.encode("utf-8")
        with self._lock:
            self._sequence += 1
            header = _framed(_DOMAIN_ABSORB) + _framed(name) + struct.pack("<QQ", self._sequence, length)
            self._sponge.absorb(header)
            self._sponge.absorb(payload)
            self.stats.absorbs += 1
            self.stats.raw_bytes += length
            self.stats.raw_bits += length * bits_per_sample
            self.stats.per_source_raw_bytes[source] = self.stats.per_source_raw_bytes.get(source, 0) + length
            if credited_bits > 0:
                self._credit_locked(source, credited_bits)

    def absorb_through(
        self,
        source: str,
        length: int,
        bits_per_sample: int,
        absorb: Callable[[bytes, Any], None],
    ) -> None:
        """Mix a batch in through a C kernel: ``absorb(header, sponge)`` must absorb the
        header, then the ``length`` payload bytes, through chaos_keccak_absorb (``sponge``
        is the sponge's C state pointer, Sponge.absorb_pointer).

        The byte stream, the sequence numbers and the statistics are those of
        absorb(); no credit is given here (see credit()).  The engine uses it to
        health-test, count and absorb a batch in one C call.
        """
        with self._lock:
            self._sequence += 1
            header = self._absorb_prefix(source) + _SEQUENCE_AND_LENGTH.pack(self._sequence, length)
            absorb(header, self._sponge.absorb_pointer())
            stats = self.stats
            stats.absorbs += 1
            stats.raw_bytes += length
            stats.raw_bits += length * bits_per_sample
            stats.per_source_raw_bytes[source] = stats.per_source_raw_bytes.get(source, 0) + length

    def credit(self, source: str, credited_bits: float) -> None:
        """Credit ``source`` with bits for samples it already mixed in (absorb_through)."""
        if credited_bits < 0:
            raise UsageError("credit cannot be negative")
        if credited_bits == 0:
            return
        with self._lock:
            self._credit_locked(source, credited_bits)

    def _credit_locked(self, source: str, credited_bits: float) -> None:
        """Add credit to the ledger, capped at the capacity by scaling every share (lock held)."""
        self.stats.credited_total += credited_bits
        self._ledger[source] = self._ledger.get(source, 0.0) + credited_bits
        self._fresh[source] = self._fresh.get(source, 0.0) + credited_bits  # the quorum's unscaled count
        total = sum(self._ledger.values())
        if total > self.capacity_bits:
            scale = self.capacity_bits / total
            for key in self._ledger:
                self._ledger[key] *= scale

    def _absorb_prefix(self, source: str) -> bytes:
        prefix = self._prefixes.get(source)
        if prefix is None:
            prefix = self._prefixes[source] = _framed(_DOMAIN_ABSORB) + _framed(source.encode("utf-8"))
        return prefix

    # -- output -----------------------------------------------------------
    def draw(self, n_bytes: int, *, purpose: bytes) -> PoolDraw:
        """Squeeze n_bytes for ``purpose``, debit up to 8*n_bytes credited bits, ratchet."""
        if n_bytes <= 0:
            raise UsageError("draw size must be positive")
        with self._lock:
            total = sum(self._ledger.values())
            fill_before = total / self.capacity_bits
            commitment = self._derive(_DOMAIN_COMMITMENT, 32).hex()
            debit_total = min(total, 8.0 * n_bytes)
            debited: dict[str, float] = {}
            if total > 0:
                share = debit_total / total
                for key, value in self._ledger.items():
                    debited[key] = value * share
                    self._ledger[key] = value - value * share
                self._ledger = {k: v for k, v in self._ledger.items() if v > 1e-9}
            self._sequence += 1
            self._sponge.absorb(_framed(_DOMAIN_DRAW) + _framed(purpose) + struct.pack("<QQ", self._sequence, n_bytes))
            out = self._sponge.squeeze(n_bytes + _RATCHET_BYTES)
            self._sponge.wipe()
            fresh = Sponge()
            fresh.absorb(_framed(_DOMAIN_RATCHET) + out[n_bytes:])
            self._sponge = fresh
            self._fresh = {}
            self.stats.draws += 1
            self.stats.drawn_bits += debit_total
            self.stats.output_bytes += n_bytes
        return PoolDraw(out[:n_bytes], debited, debit_total, fill_before, commitment)

    def _derive(self, domain: bytes, n: int) -> bytes:
        """n bytes from a copy of the state in its own domain (caller holds the lock)."""
        probe = self._sponge.copy()
        probe.absorb(_framed(domain) + struct.pack("<Q", self._sequence))
        value = probe.squeeze(n)
        probe.wipe()
        return value

    def fingerprint(self) -> str:
        """A short public fingerprint of the current state (16 hex digits), safe to show."""
        with self._lock:
            return self._derive(_DOMAIN_FINGERPRINT, 8).hex()

    def commitment(self) -> str:
        """A 256-bit commitment to the current state, in its own domain (hex)."""
        with self._lock:
            return self._derive(_DOMAIN_COMMITMENT, 32).hex()
