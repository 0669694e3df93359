"""Cutoff values of the repetition count and adaptive proportion tests.

SP 800-90B §4.4.1: RCT cutoff C = 1 + ceil(-log2(alpha) / H).
SP 800-90B §4.4.2: APT window W = 1024 for binary sources, 512 otherwise, and
C = 1 + CRITBINOM(W, 2^-H, 1 - alpha), the smallest k whose binomial CDF
reaches 1 - alpha.  H is the min-entropy per sample the source is credited
with (its declared rate); alpha = 2^-20 by default.
"""

from __future__ import annotations

import math

DEFAULT_ALPHA = 2.0**-20


def _check_h(h: float) -> None:
    if not (h > 0 and math.isfinite(h)):
        raise ValueError(f"min-entropy per sample must be positive, got {h!r}")


def rct_cutoff(h: float, alpha: float = DEFAULT_ALPHA) -> int:
    """Repetition count test cutoff for a source credited h bits per sample."""
    _check_h(h)
    return 1 + math.ceil(-math.log2(alpha) / h)


def apt_window(bits_per_sample: int) -> int:
    """APT window size: 1024 for 1-bit samples, 512 for wider ones."""
    return 1024 if bits_per_sample == 1 else 512


def critbinom(n: int, p: float, q: float) -> int:
    """Smallest k with P[Binomial(n, p) <= k] >= q (the spreadsheet CRITBINOM).

    The comparison is made on the upper tail, P[X > k] <= 1 - q, summed from the
    top, so that a q as close to 1 as 1 - 2^-20 keeps full precision.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError("p must be in [0, 1]")
    tail_limit = 1.0 - q
    if p == 0.0:
        return 0
    if p == 1.0:
        return n
    log_p, log_q = math.log(p), math.log1p(-p)

    def log_pmf(k: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q

    # Upper tail P[X > k] for k = n-1, n-2, ...: the first k (from the top)
    # where the tail exceeds the limit, plus one, is the answer.
    tail = 0.0
    for k in range(n, -1, -1):
        # tail currently holds P[X > k]
        if tail > tail_limit * (1 + 1e-12):
            return k + 1
        tail += math.exp(log_pmf(k))
    return 0


def apt_cutoff(h: float, window: int = 512, alpha: float = DEFAULT_ALPHA) -> int:
    """Adaptive proportion test cutoff for h bits per sample and window W."""
    _check_h(h)
    p = 2.0 ** (-h)
    return 1 + critbinom(window, p, 1.0 - alpha)
