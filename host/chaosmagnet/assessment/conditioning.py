"""The entropy of a conditioned output, SP 800-90B §3.1.5 (what NIST's ea_conditioning computes).

A conditioning component maps n_in input bits carrying h_in bits of min-entropy
to n_out output bits; nw is its narrowest internal width.  §3.1.5.1.2 bounds
the output's min-entropy with Output_Entropy(n_in, n_out, nw, h_in):

    P_high = 2^-h_in,  P_low = (1 - P_high) / (2^n_in - 1)
    n      = min(n_out, nw)                      (with nw = min(nw, n_in), Appendix E)
    psi    = 2^(n_in - n) P_low + P_high
    U      = 2^(n_in - n) + sqrt(2 n 2^(n_in - n) ln 2)
    omega  = U P_low
    Output_Entropy = -log2(max(psi, omega))

A vetted component (SHA-2, SHA-3/SHAKE, HMAC, CMAC, CBC-MAC, Hash_df...)
gets h_out = Output_Entropy; a non-vetted one gets
h_out = min(Output_Entropy, 0.999 n_out, h' n_out), h' being the measured
entropy per bit of its output (§3.1.5.2).  The output has full entropy when
h_in >= n_out + 64 for a vetted function (then h_out > n_out (1 - 2^-64)).

The numbers are computed with Python's decimal module at a precision of 80
significant digits with an exponent range wide enough for 2^n_in, so
2^n_in - 1 and the sums keep far more precision than the double returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, localcontext
from typing import Any

from chaosmagnet.errors import UsageError

__all__ = [
    "FULL_ENTROPY_MARGIN",
    "POOL_NARROWEST_WIDTH",
    "ConditioningResult",
    "assess_conditioning",
    "output_entropy",
    "pool_output_entropy",
]

#: §3.1.5.1.2: a vetted function's output has full entropy when h_in >= n_out + 64.
FULL_ENTROPY_MARGIN = 64

#: Our pool is a Keccak-f[1600] sponge with a 512-bit capacity: its narrowest
#: internal width (the part of the state input never overwrites) is 512 bits.
POOL_NARROWEST_WIDTH = 512

_DIGITS = 80


def _check_bits(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be a whole number of bits, at least 1, got {value!r}")
    return value


def output_entropy(n_in: int, n_out: int, nw: int, h_in: float) -> float:
    """§3.1.5.1.2 Output_Entropy(n_in, n_out, nw, h_in), bits of min-entropy in the output."""
    _check_bits("n_in", n_in)
    _check_bits("n_out", n_out)
    _check_bits("nw", nw)
    if isinstance(h_in, bool) or not isinstance(h_in, (int, float)) or not math.isfinite(h_in):
        raise UsageError(f"h_in must be a number, got {h_in!r}")
    if not 0.0 < h_in <= n_in:
        raise UsageError(f"h_in must be above 0 and at most n_in ({n_in}), got {h_in:g}")
    nw = min(nw, n_in)
    n = min(n_out, nw)
    ctx = Context(prec=_DIGITS, Emax=MAX_EMAX, Emin=MIN_EMIN)
    with localcontext(ctx):
        two = Decimal(2)
        ln2 = two.ln()
        p_high = (-Decimal(h_in) * ln2).exp()
        p_low = (1 - p_high) / (two**n_in - 1)
        power = two ** (n_in - n)
        psi = min(Decimal(1), power * p_low + p_high)
        omega = min(Decimal(1), (power + (2 * n * power * ln2).sqrt()) * p_low)
        value = -(max(psi, omega).ln() / ln2)
    return float(value) + 0.0


def pool_output_entropy(credited_bits: float, n_out: int, n_in: int | None = None) -> float:
    """Min-entropy of an n_out-bit squeeze of our Keccak pool holding credited_bits.

    The sponge is a vetted conditioning function (SHAKE256 parameters), nw =
    512; n_in, the input bits absorbed, defaults to far more than n_out (raw
    samples are many times their credit), where its value no longer matters.
    """
    if credited_bits <= 0:
        return 0.0
    width = n_in if n_in is not None else max(n_out, POOL_NARROWEST_WIDTH) + 1024
    return output_entropy(width, n_out, POOL_NARROWEST_WIDTH, min(float(credited_bits), float(width)))


@dataclass(frozen=True)
class ConditioningResult:
    """The §3.1.5 calculation for one conditioning component."""

    n_in: int
    n_out: int
    nw: int
    h_in: float
    vetted: bool
    h_prime: float | None
    output_entropy: float
    h_out: float

    @property
    def full_entropy(self) -> bool:
        """Vetted, and h_in >= n_out + 64: the output may be used as full entropy."""
        return self.vetted and self.h_in >= self.n_out + FULL_ENTROPY_MARGIN

    @property
    def epsilon_log2(self) -> float | None:
        """-log2(1 - h_out / n_out): how close h_out is to n_out (None at exactly n_out)."""
        gap = 1.0 - self.h_out / self.n_out
        return None if gap <= 0 else -math.log2(gap)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of `chaos-host assess-conditioning --json`."""
        return {
            "vetted": self.vetted,
            "n_in": self.n_in,
            "n_out": self.n_out,
            "nw": self.nw,
            "nw_effective": min(self.nw, self.n_in),
            "h_in": self.h_in,
            "h_prime": self.h_prime,
            "output_entropy": self.output_entropy,
            "h_out": self.h_out,
            "full_entropy": self.full_entropy,
        }


def assess_conditioning(
    n_in: int, n_out: int, nw: int, h_in: float, *, vetted: bool = True, h_prime: float | None = None
) -> ConditioningResult:
    """h_out for a vetted component, or (with h_prime) a non-vetted one (§3.1.5.1, §3.1.5.2)."""
    if vetted and h_prime is not None:
        raise UsageError("h' applies to non-vetted conditioning only (add --non-vetted)")
    if not vetted:
        if h_prime is None:
            raise UsageError("a non-vetted conditioning component needs h' (--h-prime), its output's entropy per bit")
        if isinstance(h_prime, bool) or not math.isfinite(h_prime) or not 0.0 < h_prime <= 1.0:
            raise UsageError(f"h' must be above 0 and at most 1 (bits per output bit), got {h_prime!r}")
    value = output_entropy(n_in, n_out, nw, h_in)
    h_out = value if vetted else min(value, 0.999 * n_out, float(h_prime or 0.0) * n_out)
    return ConditioningResult(
        n_in=n_in,
        n_out=n_out,
        nw=nw,
        h_in=float(h_in),
        vetted=vetted,
        h_prime=None if vetted else h_prime,
        output_entropy=value,
        h_out=h_out,
    )
