"""SP 800-90B §5: the IID track of an entropy assessment.

Before an entropy source may be credited with the IID (most common value)
estimate of §6.1, its samples must pass every test of §5: the eleven
permutation tests of §5.1 (nineteen statistics, each ranked against 10,000
shuffles of the data), the chi-square independence and goodness-of-fit tests
of §5.2.1-§5.2.4, and the length-of-the-longest-repeated-substring test of
§5.2.5.  Where all pass, the MCV estimate (§6.3.1) is the IID entropy
estimate; for samples wider than one bit it is combined with the bitstring
MCV estimate as in §3.1.3.

The verdicts match NIST's ea_iid (SP800-90B_EntropyAssessment): the data is
translated to symbol ranks the same way, and the chi-square bins are built in
the same order.  The permutation counts depend on the shuffles, so they match
ea_iid only in distribution; the shuffles here are reproducible from
``rng_seed``.  Each test stops as soon as its outcome is certain (as ea_iid
does), and the whole run stops as soon as the IID verdict is certain: data that
already failed a chi-square or LRS test is not shuffled at all unless asked.
The whole permutation run (shuffles, statistics, the early stopping) is C
(chaosmagnet._sp80090b_iid, iid_run_*) on several threads, with no Python per
shuffle.  The compression statistic is the length libbz2 gives the decimal
text at block size 500 kB, worked out without compressing (the block split,
a Burrows-Wheeler transform sorted by words, bzip2's move-to-front and
Huffman table choices; csrc/sp80090b_iid/bzlen.c, tested equal to libbz2);
the run makes it only while the statistic is undecided, abandons one between
blocks once an earlier shuffle decided it, and makes the original's own
beside the first shuffles.
"""

from __future__ import annotations

import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chaosmagnet._sp80090b_iid import ffi as _ffi
from chaosmagnet._sp80090b_iid import lib as _lib
from chaosmagnet.assessment import suffix
from chaosmagnet.assessment._kernel import symbols_array
from chaosmagnet.assessment.samples import check_bits
from chaosmagnet.errors import UsageError

__all__ = [
    "PERMUTATIONS",
    "TEST_NAMES",
    "NIST_TEST_NAMES",
    "ChiSquareResult",
    "LrsResult",
    "McvEstimate",
    "PermutationTestResult",
    "IidResult",
    "ProgressCallback",
    "assess_iid",
    "chi_square_independence",
    "chi_square_goodness_of_fit",
    "chi_square_p_value",
    "lrs_test",
    "most_common_value",
    "permutation_statistics",
    "compression_statistic",
    "shuffled_copy",
]

#: Number of shuffles of §5.1.
PERMUTATIONS = 10_000
#: A statistic fails when at most this many shuffles rank on one side of (or tie) the original.
RANK_LIMIT = 5
#: Significance level of the chi-square (§5.2.1-§5.2.4) and LRS (§5.2.5) tests.
ALPHA = 0.001
#: Upper 99.5% point of the standard normal distribution, used by the MCV estimate (§6.3.1).
Z_ALPHA = 2.5758293035489008
#: Fewest samples the tests can be computed on (the standard asks for 1,000,000).
MIN_SAMPLES = 10
#: bzip2 block size (in units of 100 kB) of the compression statistic, as in ea_iid.
BZIP2_LEVEL = 5

#: The nineteen permutation-test statistics, in the order of §5.1.1-§5.1.11.
TEST_NAMES: tuple[str, ...] = (
    "excursion",
    "num_directional_runs",
    "len_directional_runs",
    "num_increases_decreases",
    "num_runs_median",
    "len_runs_median",
    "avg_collision",
    "max_collision",
    "periodicity_1",
    "periodicity_2",
    "periodicity_8",
    "periodicity_16",
    "periodicity_32",
    "covariance_1",
    "covariance_2",
    "covariance_8",
    "covariance_16",
    "covariance_32",
    "compression",
)

#: The same statistics as ea_iid names them in its output.
NIST_TEST_NAMES: dict[str, str] = dict(
    zip(
        TEST_NAMES,
        (
            "excursion",
            "numDirectionalRuns",
            "lenDirectionalRuns",
            "numIncreasesDecreases",
            "numRunsMedian",
            "lenRunsMedian",
            "avgCollision",
            "maxCollision",
            "periodicity(1)",
            "periodicity(2)",
            "periodicity(8)",
            "periodicity(16)",
            "periodicity(32)",
            "covariance(1)",
            "covariance(2)",
            "covariance(8)",
            "covariance(16)",
            "covariance(32)",
            "compression",
        ),
        strict=True,
    )
)

_N = len(TEST_NAMES)
_COMPRESSION = TEST_NAMES.index("compression")
assert _lib.IID_N_STATISTICS == _N and _lib.IID_COMPRESSION == _COMPRESSION

#: progress(completed, total, description), called from the calling thread as shuffles are counted.
ProgressCallback = Callable[[int, int, str], None]

_PROGRESS_LABEL = "permutation tests"


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


#: Overall verdicts of the IID track: every test passed, one failed, or none
#: failed but some could not be run on this data (so IID is not proven).
VERDICTS = ("iid", "not_iid", "not_proven")


def _status(passed: bool | None, applicable: bool) -> str:
    """A test's status word from its verdict and applicability."""
    if not applicable:
        return "not_applicable"
    if passed is None:
        return "undecided"
    return "passed" if passed else "failed"


@dataclass(frozen=True)
class McvEstimate:
    """Most common value estimate (§6.3.1): mode count, p-hat, its upper bound p_u, -log2(p_u)."""

    mode: int
    p_hat: float
    p_u: float
    h: float

    def to_json(self) -> dict[str, Any]:
        """The estimate as a JSON-ready dict."""
        return {"mode": self.mode, "p_hat": self.p_hat, "p_u": self.p_u, "h": self.h}


@dataclass(frozen=True)
class ChiSquareResult:
    """One chi-square test (§5.2): statistic, degrees of freedom, p-value, verdict."""

    statistic: float
    df: int
    p_value: float
    note: str | None = None

    @property
    def applicable(self) -> bool:
        """False when the data cannot support the test (the note says why)."""
        return self.note is None

    @property
    def passed(self) -> bool | None:
        """True unless the p-value is below 0.001; None when the test is not applicable."""
        if not self.applicable:
            return None
        return self.p_value >= ALPHA

    @property
    def status(self) -> str:
        """"passed", "failed" or "not_applicable"."""
        return _status(self.passed, self.applicable)

    def to_json(self) -> dict[str, Any]:
        """The test as a JSON-ready dict."""
        return {
            "statistic": self.statistic,
            "df": self.df,
            "p_value": self.p_value if self.applicable else None,
            "passed": self.passed,
            "status": self.status,
            "note": self.note,
        }


@dataclass(frozen=True)
class LrsResult:
    """Length of the longest repeated substring test (§5.2.5).

    ``probability`` is Pr(X >= 1), the chance that an IID source with this
    collision probability repeats a substring of that length somewhere.
    """

    length: int
    p_col: float
    probability: float | None
    passed: bool | None
    note: str | None = None

    @property
    def applicable(self) -> bool:
        """False when the data cannot support the test (the note says why)."""
        return self.note is None

    @property
    def status(self) -> str:
        """"passed", "failed" or "not_applicable"."""
        return _status(self.passed, self.applicable)

    def to_json(self) -> dict[str, Any]:
        """The test as a JSON-ready dict."""
        return {
            "length": self.length,
            "p_col": self.p_col,
            "probability": self.probability,
            "passed": self.passed,
            "status": self.status,
            "note": self.note,
        }


@dataclass(frozen=True)
class PermutationTestResult:
    """One statistic of §5.1 ranked against the shuffles.

    c0 counts shuffles whose statistic is larger than the original's, c1 ties,
    c2 smaller ones (ea_iid's C[i][0..2]).  ``passed`` is None when the run
    stopped before this statistic's outcome was certain (``note`` says why)
    or when the data cannot support it (``applicable`` is False, ``note``
    says why).
    """

    name: str
    statistic: float
    c0: int
    c1: int
    c2: int
    passed: bool | None
    note: str | None = None
    applicable: bool = True

    @property
    def shuffles(self) -> int:
        """Number of shuffles this statistic was ranked against."""
        return self.c0 + self.c1 + self.c2

    @property
    def status(self) -> str:
        """"passed", "failed", "undecided" or "not_applicable"."""
        return _status(self.passed, self.applicable)

    def to_json(self) -> dict[str, Any]:
        """The statistic as a JSON-ready dict."""
        return {
            "statistic": self.statistic,
            "c0": self.c0,
            "c1": self.c1,
            "c2": self.c2,
            "passed": self.passed,
            "status": self.status,
            "note": self.note,
        }


@dataclass
class IidResult:
    """Everything the IID track found, with the verdict and the IID entropy estimate."""

    bits: int
    samples: int
    symbols: int
    binary: bool
    mean: float
    median: float
    mcv: McvEstimate
    mcv_bitstring: McvEstimate | None
    independence: ChiSquareResult
    goodness_of_fit: ChiSquareResult
    lrs: LrsResult
    permutation_tests: list[PermutationTestResult]
    shuffles: int
    permutations: int
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def chi_square_passed(self) -> bool | None:
        """Both chi-square tests passed (True), one failed (False), or one was not applicable (None)."""
        return _all_passed([self.independence.passed, self.goodness_of_fit.passed])

    @property
    def permutation_passed(self) -> bool | None:
        """All permutation tests passed (True), one failed (False), or some undecided or not applicable (None)."""
        return _all_passed([t.passed for t in self.permutation_tests])

    @property
    def verdict(self) -> str:
        """"iid" (every test of §5 passed), "not_iid" (one failed) or "not_proven" (none failed, some not run)."""
        overall = _all_passed([self.chi_square_passed, self.lrs.passed, self.permutation_passed])
        if overall is None:
            return "not_proven"
        return "iid" if overall else "not_iid"

    @property
    def iid(self) -> bool:
        """True only when every test of §5 passed (a test that was not applicable is not a pass)."""
        return self.verdict == "iid"

    @property
    def not_applicable(self) -> list[str]:
        """Names of the tests the data could not support."""
        names = [
            name
            for name, test in (
                ("chi_square_independence", self.independence),
                ("chi_square_goodness_of_fit", self.goodness_of_fit),
                ("lrs", self.lrs),
            )
            if not test.applicable
        ]
        return names + [t.name for t in self.permutation_tests if not t.applicable]

    @property
    def h_original(self) -> float:
        """MCV estimate of the samples as symbols, bits per sample."""
        return self.mcv.h

    @property
    def h_bitstring(self) -> float | None:
        """MCV estimate of the samples as a bitstring, bits per bit (None for binary data)."""
        return None if self.mcv_bitstring is None else self.mcv_bitstring.h

    @property
    def h_assessed(self) -> float:
        """min(H_original, B x H_bitstring) (§3.1.3); H_original for binary data."""
        if self.mcv_bitstring is None:
            return self.mcv.h
        return min(self.mcv.h, self.bits * self.mcv_bitstring.h)

    @property
    def h_iid(self) -> float | None:
        """The IID entropy estimate per sample where IID holds, else None."""
        return self.h_assessed if self.iid else None

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict: the ``iid`` object of ``chaos-host assess --json``."""
        return {
            "iid": self.iid,
            "verdict": self.verdict,
            "h_iid": self.h_iid,
            "h_original": self.h_original,
            "h_bitstring": self.h_bitstring,
            "h_assessed": self.h_assessed,
            "bits": self.bits,
            "samples": self.samples,
            "symbols": self.symbols,
            "binary": self.binary,
            "mean": self.mean,
            "median": self.median,
            "mcv": self.mcv.to_json(),
            "mcv_bitstring": None if self.mcv_bitstring is None else self.mcv_bitstring.to_json(),
            "chi_square": {
                "passed": self.chi_square_passed,
                "independence": self.independence.to_json(),
                "goodness_of_fit": self.goodness_of_fit.to_json(),
            },
            "lrs": self.lrs.to_json(),
            "permutation": {
                "passed": self.permutation_passed,
                "shuffles": self.shuffles,
                "permutations": self.permutations,
                "tests": {t.name: t.to_json() for t in self.permutation_tests},
            },
            "seconds": self.seconds,
            "notes": list(self.notes),
        }


def _all_passed(verdicts: list[bool | None]) -> bool | None:
    """False if any verdict is False, True if all are True, else None."""
    if any(v is False for v in verdicts):
        return False
    if all(v is True for v in verdicts):
        return True
    return None


# --------------------------------------------------------------------------
# Preparing the data
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    raw: np.ndarray  # uint8 sample values as given
    symbols: np.ndarray  # uint8 rank of each value among the distinct values present
    counts: np.ndarray  # occurrences of each symbol (length k)
    raw_counts: np.ndarray  # occurrences of each raw value (length 256)
    rank: np.ndarray  # raw value -> symbol (256 entries; absent values map to 0)
    bits: int

    @property
    def k(self) -> int:
        return len(self.counts)

    @property
    def n(self) -> int:
        return len(self.raw)


def _prepare(samples: np.ndarray, bits: int) -> _Data:
    raw = symbols_array(samples, "samples")
    check_bits(raw, bits)
    if raw.size < MIN_SAMPLES:
        raise UsageError(f"the IID tests need at least {MIN_SAMPLES} samples, got {raw.size}")
    raw_counts = np.bincount(raw, minlength=256).astype(np.int64)
    present = np.flatnonzero(raw_counts)
    if len(present) < 2:
        raise UsageError("every sample has the same value: there is no entropy to assess")
    rank = np.zeros(256, dtype=np.uint8)
    rank[present] = np.arange(len(present), dtype=np.uint8)
    return _Data(
        raw=raw,
        symbols=rank[raw],
        counts=raw_counts[present],
        raw_counts=raw_counts,
        rank=rank,
        bits=int(bits),
    )


def _median(data: _Data) -> float:
    """Median of the symbols (ranks); 0.5 for binary data, as §5.1.5 prescribes."""
    if data.k == 2:
        return 0.5
    cumulative = np.cumsum(data.counts)
    n = data.n

    def order_statistic(i: int) -> int:
        return int(np.searchsorted(cumulative, i, side="right"))

    half = n // 2
    if n % 2:
        return float(order_statistic(half))
    return (order_statistic(half) + order_statistic(half - 1)) / 2.0


# --------------------------------------------------------------------------
# §6.3.1 most common value
# --------------------------------------------------------------------------


def most_common_value(mode: int, n: int) -> McvEstimate:
    """MCV estimate (§6.3.1) from the count of the most common value among n samples."""
    p_hat = mode / n
    p_u = min(1.0, p_hat + Z_ALPHA * math.sqrt(p_hat * (1.0 - p_hat) / (n - 1.0)))
    return McvEstimate(mode=int(mode), p_hat=p_hat, p_u=p_u, h=-math.log2(p_u))


def _bitstring_mcv(data: _Data) -> McvEstimate:
    """MCV estimate of the samples' bits (each sample's B bits, most significant first)."""
    popcount = np.array([bin(v).count("1") for v in range(256)], dtype=np.int64)
    ones = int(np.dot(data.raw_counts, popcount))
    total = data.n * data.bits
    return most_common_value(max(ones, total - ones), total)


# --------------------------------------------------------------------------
# §5.2 chi-square tests
# --------------------------------------------------------------------------


def chi_square_p_value(statistic: float, df: int) -> float:
    """Upper tail of the chi-square distribution: Q(df/2, statistic/2); 1.0 when df <= 0."""
    if df <= 0 or statistic <= 0.0:
        return 1.0
    return _regularized_upper_gamma(df / 2.0, statistic / 2.0)


def _regularized_upper_gamma(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a): power series below a + 1, continued fraction above."""
    log_prefactor = a * math.log(x) - x - math.lgamma(a)
    eps = 1e-16
    if x < a + 1.0:
        term = 1.0 / a
        total = term
        denominator = a
        for _ in range(1_000_000):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * eps:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    # Modified Lentz evaluation of the continued fraction for Q.
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 1_000_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < tiny:
            d = tiny
        c = b + an / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return math.exp(log_prefactor) * h


def _proportions(counts: np.ndarray, n: int) -> np.ndarray:
    """Symbol proportions as ea_iid forms them: 1/n added once per occurrence.

    Summing 1/n count times rounds differently from count/n; the bins of the
    chi-square tests are ordered by these values, so the rounding is kept to
    bin exactly as the reference tool does.
    """
    step = np.full(int(counts.max()), 1.0 / n)
    running = np.cumsum(step)  # numpy's cumsum adds strictly left to right
    return running[counts - 1]


def _plural(count: int, word: str) -> str:
    """'1 bin', '3 bins'."""
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _allocate_bins(expected: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group cells, smallest expectation first, into bins expecting at least 5 each.

    Returns (bin of each cell, expectation of each bin).  A last bin short of
    5 is merged into the one before it (§5.2.1 step 3).
    """
    expected = np.ascontiguousarray(expected, dtype=np.float64)
    order = np.ascontiguousarray(order, dtype=np.int64)
    bin_of = np.empty(len(expected), dtype=np.int64)
    bin_expected = np.empty(max(1, len(expected)), dtype=np.float64)
    bins = _lib.iid_allocate_bins(
        _ffi.from_buffer("double[]", expected),
        _ffi.from_buffer("int64_t[]", order),
        len(expected),
        _ffi.from_buffer("int64_t[]", bin_of),
        _ffi.from_buffer("double[]", bin_expected),
    )
    return bin_of, bin_expected[:bins].copy()


def _chi_square_statistic(observed: np.ndarray, expected: np.ndarray) -> float:
    return float(np.sum((observed - expected) ** 2 / expected))


def chi_square_independence(symbols: np.ndarray, k: int) -> ChiSquareResult:
    """Chi-square independence test: §5.2.1 (k > 2) or §5.2.3 (binary, k == 2).

    ``symbols`` holds values 0..k-1 (ranks of the distinct sample values).
    """
    n = len(symbols)
    if k == 2:
        return _binary_independence(symbols)
    counts = np.bincount(symbols, minlength=k)
    p = _proportions(counts, n)
    expected = (np.outer(p, p) * math.floor(n * 0.5)).ravel()
    cells = np.arange(k * k)
    order = np.lexsort((cells, expected))
    bin_of, bin_expected = _allocate_bins(expected, order)
    pairs = symbols[: 2 * (n // 2)].astype(np.int64).reshape(-1, 2)
    pair_counts = np.bincount(pairs[:, 0] * k + pairs[:, 1], minlength=k * k)
    observed = np.bincount(bin_of, weights=pair_counts, minlength=len(bin_expected))
    statistic = _chi_square_statistic(observed, bin_expected)
    df = len(bin_expected) - k
    note = None
    if df < 1:
        note = (
            f"not applicable: too few samples: the {n // 2:,} pairs fill only {_plural(len(bin_expected), 'bin')} "
            f"of expected count >= 5 for {k} symbols, so df = {df} (a chi-square test needs df >= 1)"
        )
    return ChiSquareResult(statistic, df, chi_square_p_value(statistic, df), note)


def _binary_independence(bits: np.ndarray) -> ChiSquareResult:
    n = len(bits)
    p1 = float(np.count_nonzero(bits)) / n
    p0 = 1.0 - p1
    smaller = min(p0, p1)
    m = 11
    while m > 1 and not smaller**m * (n // m) >= 5:
        m -= 1
    if m < 2:
        return ChiSquareResult(
            0.0,
            0,
            1.0,
            "not applicable: too few samples: no block length m >= 2 expects every m-bit "
            "pattern at least 5 times, so there is nothing to bin (df = 0)",
        )
    blocks = n // m
    tuples = bits[: blocks * m].astype(np.int64).reshape(blocks, m)
    values = tuples @ (1 << np.arange(m - 1, -1, -1, dtype=np.int64))
    observed = np.bincount(values, minlength=1 << m)
    weights = np.array([bin(v).count("1") for v in range(1 << m)])
    expected = np.array([p1 ** int(w) * p0 ** (m - int(w)) * blocks for w in weights])
    statistic = _chi_square_statistic(observed, expected)
    df = (1 << m) - 2
    return ChiSquareResult(statistic, df, chi_square_p_value(statistic, df))


def chi_square_goodness_of_fit(symbols: np.ndarray, k: int) -> ChiSquareResult:
    """Chi-square goodness-of-fit test over ten equal parts: §5.2.2 (k > 2) or §5.2.4 (k == 2)."""
    n = len(symbols)
    if k == 2:
        return _binary_goodness_of_fit(symbols)
    counts = np.bincount(symbols, minlength=k)
    p = _proportions(counts, n)
    expected = p * math.floor(n / 10.0)
    order = np.lexsort((np.arange(k), expected))
    bin_of, bin_expected = _allocate_bins(expected, order)
    block = n // 10
    statistic = 0.0
    for part in range(10):
        part_counts = np.bincount(symbols[part * block : (part + 1) * block], minlength=k)
        observed = np.bincount(bin_of, weights=part_counts, minlength=len(bin_expected))
        statistic += _chi_square_statistic(observed, bin_expected)
    df = 9 * (len(bin_expected) - 1)
    note = None
    if df < 1:
        note = (
            f"not applicable: too few samples: each tenth of the data ({_plural(block, 'sample')}) fills "
            f"only {_plural(len(bin_expected), 'bin')} of expected count >= 5, so df = {df} "
            "(a chi-square test needs df >= 1)"
        )
    return ChiSquareResult(statistic, df, chi_square_p_value(statistic, df), note)


def _binary_goodness_of_fit(bits: np.ndarray) -> ChiSquareResult:
    n = len(bits)
    p = float(np.count_nonzero(bits)) / n
    block = n // 10
    e0 = (1.0 - p) * block
    e1 = p * block
    statistic = 0.0
    for part in range(10):
        o1 = int(np.count_nonzero(bits[part * block : (part + 1) * block]))
        o0 = block - o1
        statistic += (o0 - e0) ** 2 / e0 + (o1 - e1) ** 2 / e1
    note = None
    if min(e0, e1) < 5.0:
        note = (
            f"not applicable: too few samples: each tenth of the data ({_plural(block, 'bit')}) expects "
            f"{min(e0, e1):.2f} of the rarer value, fewer than the 5 a chi-square cell needs"
        )
    return ChiSquareResult(statistic, 9, chi_square_p_value(statistic, 9), note)


# --------------------------------------------------------------------------
# §5.2.5 longest repeated substring
# --------------------------------------------------------------------------


def _longest_repeated_substring(symbols: np.ndarray) -> int:
    return suffix.longest_repeat(suffix.lcp_array(symbols, suffix.suffix_array(symbols)))


def lrs_test(symbols: np.ndarray, k: int) -> LrsResult:
    """LRS test (§5.2.5): is the longest repeat plausible for IID data?

    With W the length of the longest repeated substring and p_col the
    probability that two samples are equal, an IID source shows a repeat of
    length W among the C(n - W + 1, 2) pairs of positions with probability
    1 - (1 - p_col^W)^N; the test fails when that is below 0.001.
    """
    n = len(symbols)
    counts = np.bincount(symbols, minlength=k)
    p = counts / n
    p_col = float(np.sum(p * p))
    if p_col >= 1.0:
        return LrsResult(length=n - 1, p_col=1.0, probability=1.0, passed=True)
    length = _longest_repeated_substring(symbols)
    if length < 1:
        return LrsResult(
            length=0,
            p_col=p_col,
            probability=None,
            passed=None,
            note="not applicable: too few samples: no value repeats, so there is no repeated substring to test",
        )
    pairs = (n - length + 1) * (n - length) // 2
    log_no_collision = pairs * math.log1p(-(p_col**length))
    probability = -math.expm1(log_no_collision)
    passed = math.log(1.0 - ALPHA) >= log_no_collision
    return LrsResult(length=length, p_col=p_col, probability=probability, passed=passed)


# --------------------------------------------------------------------------
# §5.1 permutation tests: kernels
# --------------------------------------------------------------------------


def _params(data: _Data, median: float) -> Any:
    params = _ffi.new("iid_params *")
    params.binary = 1 if data.k == 2 else 0
    params.total = int(data.raw.sum(dtype=np.int64))  # the same for every shuffle
    # Symbols are ranks of the raw values, so "symbol >= median" is "raw value
    # >= the smallest present value whose rank reaches the median".
    present = np.flatnonzero(data.raw_counts)
    params.median_threshold = int(present[np.searchsorted(np.arange(data.k), median)])
    bit = data.rank if data.k == 2 else np.zeros(256, dtype=np.uint8)
    _ffi.memmove(params.bit, np.ascontiguousarray(bit, dtype=np.uint8).tobytes(), 256)
    return params


def _check_samples(samples: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(samples, dtype=np.uint8)
    if array.ndim != 1 or len(array) < 2:
        raise UsageError("samples must be a one-dimensional array of at least 2 values")
    return array


def _cheap_statistics(data: _Data, params: Any) -> np.ndarray:
    """Statistics 0..17 of the unshuffled data (the compression slot is left 0)."""
    out = _ffi.new("double[]", _N)
    buf = _ffi.from_buffer("uint8_t[]", data.raw)
    active = bytes([1] * (_N - 1) + [0])
    if _lib.iid_statistics(buf, data.n, params, active, out) != 0:
        raise MemoryError("iid_statistics failed")
    return np.array(list(out), dtype=np.float64)


def permutation_statistics(samples: np.ndarray, bits: int) -> np.ndarray:
    """The nineteen §5.1 statistics of the samples in TEST_NAMES order (compression included)."""
    data = _prepare(samples, bits)
    out = _cheap_statistics(data, _params(data, _median(data)))
    out[_COMPRESSION] = compression_statistic(data.raw)
    return out


def compression_statistic(samples: np.ndarray) -> int:
    """§5.1.11: bzip2-compressed length of the samples written in decimal, space separated.

    The length libbz2's BZ2_bzBuffToBuffCompress gives at BZIP2_LEVEL, as
    NIST's tool computes it, worked out without compressing (csrc/sp80090b_iid/bzlen.c).
    """
    array = _check_samples(samples)
    length = _lib.iid_compressed_length(_ffi.from_buffer("uint8_t[]", array), len(array), BZIP2_LEVEL)
    if length < 0:
        raise MemoryError("the compression statistic ran out of memory")
    return int(length)


def shuffled_copy(samples: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """A uniformly shuffled copy of the samples; the same (seed, stream) gives the same order."""
    array = _check_samples(samples)
    out = np.empty_like(array)
    _lib.iid_shuffle_copy(
        _ffi.from_buffer("uint8_t[]", array),
        _ffi.from_buffer("uint8_t[]", out),
        len(array),
        seed & (2**64 - 1),
        stream & (2**64 - 1),
    )
    return out


# --------------------------------------------------------------------------
# §5.1 permutation tests: the run
# --------------------------------------------------------------------------


def _permutation_run(
    data: _Data,
    params: Any,
    original: np.ndarray,
    permutations: int,
    seed: int,
    workers: int,
    stop_on_failure: bool,
    progress: ProgressCallback | None,
) -> tuple[np.ndarray, list[bool | None], int]:
    """Rank the original statistics against shuffles, in C (iid_run_*), on ``workers`` threads.

    Shuffle j is the data shuffled by generator stream j of the seed and the
    shuffles are counted strictly in the order j = 0, 1, 2, ..., so the counts
    depend only on the seed.  No Python runs per shuffle: the threads below
    each make one call that returns when the run is over, and this thread
    polls the count for the progress callback.  A NaN compression statistic
    in ``original`` is made by the run (while the shuffling starts) and
    written back into ``original``.
    """
    run = _lib.iid_run_new(
        _ffi.from_buffer("uint8_t[]", data.raw),
        data.n,
        params,
        _ffi.new("double[]", [float(v) for v in original]),
        permutations,
        seed & (2**64 - 1),
        1 if stop_on_failure else 0,
        BZIP2_LEVEL,
        RANK_LIMIT,
    )
    if run == _ffi.NULL:
        raise MemoryError("iid_run_new failed")
    try:
        statuses: list[int] = []

        def work() -> None:
            statuses.append(_lib.iid_run_work(run))

        threads = [threading.Thread(target=work, name=f"iid-shuffle-{i}", daemon=True) for i in range(workers)]
        for thread in threads:
            thread.start()
        reported = 0
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.1)
                    reported = _report_progress(run, reported, permutations, progress)
        finally:
            _lib.iid_run_stop(run)
            for thread in threads:
                thread.join()
        _report_progress(run, reported, permutations, progress)
        if any(status != 0 for status in statuses):
            raise MemoryError("the permutation run ran out of memory")
        counts = _ffi.new("int64_t[]", _N * 3)
        decided = _ffi.new("int8_t[]", _N)
        committed = _ffi.new("uint64_t *")
        statistics = _ffi.new("double[]", _N)
        _lib.iid_run_result(run, counts, decided, committed, statistics)
        original[_COMPRESSION] = statistics[_COMPRESSION]
        verdicts: list[bool | None] = [None if d < 0 else bool(d) for d in decided]
        return np.array(list(counts), dtype=np.int64).reshape(_N, 3), verdicts, int(committed[0])
    finally:
        _lib.iid_run_free(run)


def _report_progress(run: Any, reported: int, permutations: int, progress: ProgressCallback | None) -> int:
    """Pass the number of counted shuffles to the progress callback when it grew."""
    done = int(_lib.iid_run_committed(run))
    if done > reported and progress is not None:
        progress(done, permutations, _PROGRESS_LABEL)
    return max(done, reported)


# --------------------------------------------------------------------------
# The IID track
# --------------------------------------------------------------------------

_LAGS = (1, 2, 8, 16, 32)


def _distinct_orderings_log(counts: np.ndarray) -> float:
    """Natural log of the number of distinct orderings of the samples: n! / prod(count_i!)."""
    n = int(counts.sum())
    return math.lgamma(n + 1) - sum(math.lgamma(int(c) + 1) for c in counts)


def _permutation_not_applicable(data: _Data, permutations: int) -> dict[int, str]:
    """Statistics (by index) the data cannot support, with the reason for each."""
    log_orderings = _distinct_orderings_log(data.counts)
    if log_orderings < math.log(permutations):
        orderings = round(math.exp(log_orderings))
        reason = (
            f"not applicable: too few samples: they have only {orderings:,} distinct orderings, "
            f"fewer than the {permutations:,} shuffles the statistic is ranked against"
        )
        return dict.fromkeys(range(_N), reason)
    reasons: dict[int, str] = {}
    length = (data.n + 7) // 8 if data.k == 2 else data.n
    unit = "blocks of 8 bits" if data.k == 2 else "samples"
    for lag in _LAGS:
        if length <= lag:
            reason = (
                f"not applicable: too few samples: lag {lag} needs more than {lag} {unit}, "
                f"there are {length:,}"
            )
            reasons[TEST_NAMES.index(f"periodicity_{lag}")] = reason
            reasons[TEST_NAMES.index(f"covariance_{lag}")] = reason
    return reasons


def _failed_names(names: list[str], limit: int = 0) -> str:
    """'a', 'a and b', 'a, b and c' for test names; past ``limit`` names (if set), 'a, b and 5 more'."""
    if len(names) == 1:
        return names[0]
    if limit and len(names) > limit:
        return ", ".join(names[:limit]) + f" and {len(names) - limit} more"
    return ", ".join(names[:-1]) + " and " + names[-1]


def assess_iid(
    samples: np.ndarray,
    bits: int,
    progress: ProgressCallback | None = None,
    rng_seed: int | None = None,
    *,
    stop_early: bool = True,
    workers: int | None = None,
    permutations: int = PERMUTATIONS,
) -> IidResult:
    """Run the IID track of SP 800-90B §5 on samples of ``bits`` bits each.

    ``rng_seed`` makes the shuffles reproducible (default: a fresh random
    seed).  With ``stop_early`` (the default) the run ends as soon as the IID
    verdict is certain: after a failed chi-square or LRS test no shuffles are
    made, and the shuffling stops once a permutation test has certainly
    failed; statistics left undecided report ``passed = None``.  Without it,
    every permutation test runs to its own verdict, as ea_iid does.
    ``progress(completed, total, description)`` is called from this thread as
    shuffles are counted.  Samples with at most two distinct values are
    binary (as in ea_iid): the binary tests and conversions apply and there
    is no bitstring MCV estimate.
    """
    if not isinstance(permutations, int) or permutations < 2 * (RANK_LIMIT + 1):
        raise UsageError(f"permutations must be an integer of at least {2 * (RANK_LIMIT + 1)}")
    started = time.perf_counter()
    data = _prepare(samples, bits)
    n, k = data.n, data.k
    mean = float(data.raw.sum(dtype=np.int64)) / n
    median = _median(data)
    notes: list[str] = []

    mcv = most_common_value(int(data.counts.max()), n)
    mcv_bitstring = _bitstring_mcv(data) if k > 2 else None

    # The LRS test's suffix array (C, without the GIL) is built in another
    # thread while this one runs the chi-square tests.
    lrs_outcome: list[LrsResult | BaseException] = []

    def lrs_thread() -> None:
        try:
            lrs_outcome.append(lrs_test(data.symbols, k))
        except BaseException as exc:  # raised again in this thread
            lrs_outcome.append(exc)

    lrs_worker = threading.Thread(target=lrs_thread, name="iid-lrs", daemon=True)
    lrs_worker.start()
    try:
        independence = chi_square_independence(data.symbols, k)
        goodness_of_fit = chi_square_goodness_of_fit(data.symbols, k)
    finally:
        lrs_worker.join()
    if isinstance(lrs_outcome[0], BaseException):
        raise lrs_outcome[0]
    lrs = lrs_outcome[0]

    params = _params(data, median)
    original = _cheap_statistics(data, params)

    failed_before = [
        label
        for label, test in (
            ("chi-square independence", independence),
            ("chi-square goodness-of-fit", goodness_of_fit),
            ("longest-repeated-substring", lrs),
        )
        if test.passed is False
    ]
    not_applicable = _permutation_not_applicable(data, permutations)
    undecided_note: dict[int, str] = {}
    if (stop_early and failed_before) or len(not_applicable) == _N:
        original[_COMPRESSION] = compression_statistic(data.raw)
        counts = np.zeros((_N, 3), dtype=np.int64)
        decided: list[bool | None] = [None] * _N
        shuffles = 0
        if len(not_applicable) < _N:
            which = _failed_names(failed_before)
            test_word = "test" if len(failed_before) == 1 else "tests"
            reason = f"not run: the {which} {test_word} failed, so no shuffles were made"
            undecided_note = dict.fromkeys(range(_N), reason)
            notes.append(f"permutation tests not run: the {which} {test_word} already rejected IID")
        if progress is not None:
            progress(permutations, permutations, _PROGRESS_LABEL)
    else:
        if workers is None:
            workers = max(1, min(2, os.cpu_count() or 1))
        seed = secrets.randbits(64) if rng_seed is None else rng_seed
        original[_COMPRESSION] = math.nan  # made by the run, beside the first shuffles
        counts, decided, shuffles = _permutation_run(
            data, params, original, permutations, seed, workers, stop_early, progress
        )
        if math.isnan(original[_COMPRESSION]):  # the run ended before it (cannot happen unless stopped)
            original[_COMPRESSION] = compression_statistic(data.raw)
        if progress is not None and shuffles < permutations:
            progress(permutations, permutations, _PROGRESS_LABEL)
        if any(d is None for i, d in enumerate(decided) if i not in not_applicable):
            failed = _failed_names([TEST_NAMES[i] for i, d in enumerate(decided) if d is False], limit=2)
            reason = f"undecided: shuffling stopped after {shuffles:,} shuffles because {failed} had failed"
            undecided_note = {i: reason for i, d in enumerate(decided) if d is None}
            notes.append(f"shuffling stopped after {shuffles:,} shuffles because {failed} had failed")

    tests = [
        PermutationTestResult(
            name=name,
            statistic=float(original[i]),
            c0=int(counts[i, 0]),
            c1=int(counts[i, 1]),
            c2=int(counts[i, 2]),
            passed=None if i in not_applicable else decided[i],
            note=not_applicable.get(i, undecided_note.get(i)),
            applicable=i not in not_applicable,
        )
        for i, name in enumerate(TEST_NAMES)
    ]
    result = IidResult(
        bits=int(bits),
        samples=n,
        symbols=k,
        binary=k == 2,
        mean=mean,
        median=median,
        mcv=mcv,
        mcv_bitstring=mcv_bitstring,
        independence=independence,
        goodness_of_fit=goodness_of_fit,
        lrs=lrs,
        permutation_tests=tests,
        shuffles=shuffles,
        permutations=permutations,
        seconds=time.perf_counter() - started,
        notes=notes,
    )
    missing = result.not_applicable
    if missing and result.verdict == "not_proven":
        notes.append(
            f"IID not proven: {_plural(len(missing), 'test')} could not be run on this data "
            f"({_failed_names(missing)}); a test that was not applicable is not a pass, "
            "so there is no IID estimate"
        )
    return result
