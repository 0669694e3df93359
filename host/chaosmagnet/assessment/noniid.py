"""The non-IID track of SP 800-90B (2018): the ten min-entropy estimators of
§6.3 and the initial entropy estimate of §3.1.3.

Each estimator turns an upper bound (at 99 % confidence) on the probability of
the most likely outcome into bits of min-entropy.  For samples wider than one
bit the estimators run twice: on the samples themselves (H_original) and on
the bitstring of all their bits, most significant bit first (H_bitstring);
the collision, Markov and compression estimators apply to binary data only,
so for such samples they run on the bitstring alone.  The result is
H_assessed = min(H_original, B x H_bitstring).

"Binary" follows NIST's reference tool (ea_non_iid): samples taking at most two
distinct values are assessed as binary, with no bitstring pass.  The
estimators run in a small thread pool; the C kernels release the GIL.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any

from chaosmagnet.assessment import suffix
from chaosmagnet.assessment._kernel import SymbolBuffer, byte_counts, check_rc, ffi, lib, symbol_bytes
from chaosmagnet.assessment.samples import check_bits, short_input_warning
from chaosmagnet.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "ESTIMATORS",
    "EstimatorResult",
    "NonIidResult",
    "ProgressCallback",
    "assess_noniid",
    "bitstring",
    "collision_estimate",
    "compression_estimate",
    "lag_estimate",
    "lz78y_estimate",
    "markov_estimate",
    "mcv_estimate",
    "multi_mcw_estimate",
    "multi_mmc_estimate",
    "prediction_bound",
    "tuple_estimates",
]

#: z_(1 - 0.005): the two-sided 99 % normal quantile the standard rounds to 2.576.
Z_ALPHA = 2.5758293035489008

#: The estimators, keyed as in the JSON output, with their section and name.
ESTIMATORS: dict[str, tuple[str, str]] = {
    "mcv": ("6.3.1", "Most common value"),
    "collision": ("6.3.2", "Collision"),
    "markov": ("6.3.3", "Markov"),
    "compression": ("6.3.4", "Compression"),
    "t_tuple": ("6.3.5", "t-Tuple"),
    "lrs": ("6.3.6", "Longest repeated substring"),
    "multi_mcw": ("6.3.7", "MultiMCW prediction"),
    "lag": ("6.3.8", "Lag prediction"),
    "multi_mmc": ("6.3.9", "MultiMMC prediction"),
    "lz78y": ("6.3.10", "LZ78Y prediction"),
}

#: Estimators defined for binary data only (§6.3.2-6.3.4).
BINARY_ONLY = ("collision", "markov", "compression")

#: progress(completed, total, description): called as each estimator run ends.
ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Estimate:
    """One estimator run on one sequence: its min-entropy (None when the data is
    too short for it) and its intermediate values."""

    h: float | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EstimatorResult:
    """An estimator's min-entropy per sample (h_original) and per bit
    (h_bitstring), with the intermediate values of each run."""

    key: str
    h_original: float | None = None
    h_bitstring: float | None = None
    ran_original: bool = False
    ran_bitstring: bool = False
    details_original: dict[str, Any] = field(default_factory=dict)
    details_bitstring: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, float | None]:
        """The JSON object: h_original and/or h_bitstring, whichever ran."""
        out: dict[str, float | None] = {}
        if self.ran_original:
            out["h_original"] = self.h_original
        if self.ran_bitstring:
            out["h_bitstring"] = self.h_bitstring
        return out


@dataclass(frozen=True)
class NonIidResult:
    """The non-IID assessment of one sequence of samples (§6.3, §3.1.3)."""

    bits: int
    samples: int
    alphabet: int
    h_original: float
    h_bitstring: float | None
    h_assessed: float
    estimators: dict[str, EstimatorResult]
    file: str | None = None
    warnings: tuple[str, ...] = ()
    sha256: str | None = None

    @property
    def binary(self) -> bool:
        """True when the samples were assessed as binary (no bitstring pass)."""
        return self.h_bitstring is None

    def to_json(self) -> dict[str, Any]:
        """The JSON object of `chaos-host assess --json`."""
        return {
            "file": self.file,
            "sha256": self.sha256,
            "bits": self.bits,
            "samples": self.samples,
            "h_original": self.h_original,
            "h_bitstring": self.h_bitstring,
            "h_assessed": self.h_assessed,
            "estimators": {key: self.estimators[key].to_json() for key in ESTIMATORS},
        }


# --------------------------------------------------------------------------
# shared pieces


def _upper_bound(p: float, n: int) -> float:
    """p + z sqrt(p (1 - p) / (n - 1)), capped at 1: the 99 % upper bound."""
    return min(1.0, p + Z_ALPHA * math.sqrt(p * (1.0 - p) / (n - 1)))


def _bits_of(p: float) -> float:
    """-log2(p), with 0.0 (not -0.0) for p = 1."""
    return -math.log2(p) + 0.0


def _ptr(kind: str, arr: SymbolBuffer) -> Any:
    return ffi.from_buffer(kind, arr)


def bitstring(samples: SymbolBuffer, bits: int) -> np.ndarray:
    """The bits of each sample's low `bits` bits, most significant first."""
    import numpy as np

    return np.frombuffer(_bitstring_bytes(samples, bits), dtype=np.uint8)


def _bitstring_bytes(samples: SymbolBuffer, bits: int) -> bytearray:
    """bitstring as a bytearray, one bit per byte (without numpy)."""
    raw = symbol_bytes(samples, "samples")
    out = bytearray(len(raw) * bits)
    if len(raw):
        rc = lib.sp_unpack_bits(_ptr("uint8_t[]", raw), len(raw), bits, _ptr("uint8_t[]", out))
        check_rc(rc, "bitstring")
    return out


# --------------------------------------------------------------------------
# §6.3.1 most common value


def mcv_estimate(s: SymbolBuffer, alphabet: int) -> Estimate:
    """§6.3.1: bound the frequency of the most common value."""
    n = len(s)
    if n < 2:
        return Estimate(None)
    mode = max(byte_counts(s))
    p_hat = mode / n
    p_u = _upper_bound(p_hat, n)
    return Estimate(_bits_of(p_u), {"mode": mode, "p_hat": p_hat, "p_u": p_u})


# --------------------------------------------------------------------------
# §6.3.2 collision (binary)


def collision_estimate(b: SymbolBuffer) -> Estimate:
    """§6.3.2: mean time to the first repeated bit, lowered to its 99 % bound.

    For binary data the expected time is 2 + 2p(1 - p), so the standard's
    solve for p has the closed form p = (1 + sqrt(5 - 2 X'))/2.
    """
    stats = ffi.new("sp_collision_stats *")
    check_rc(lib.sp_collision_times(_ptr("uint8_t[]", b), len(b), stats), "collision")
    v, total, squares = stats.v, stats.sum, stats.sum_squares
    if v < 2:
        return Estimate(None)
    x_bar = total / v
    sigma = math.sqrt(max(0.0, (squares - total * x_bar) / (v - 1)))
    x_low = x_bar - Z_ALPHA * sigma / math.sqrt(v)
    details: dict[str, Any] = {"v": v, "x_bar": x_bar, "sigma": sigma, "x_bar_low": x_low}
    # col_exp(0.5) = 2.5: at or above it no p > 1/2 fits, and the estimate is 1 bit.
    p = min(1.0, (1.0 + math.sqrt(max(0.0, 5.0 - 2.0 * x_low))) / 2.0) if x_low < 2.5 else 0.5
    details["p"] = p
    return Estimate(_bits_of(p) if p > 0.5 else 1.0, details)


# --------------------------------------------------------------------------
# §6.3.3 Markov (binary)


def markov_estimate(b: SymbolBuffer) -> Estimate:
    """§6.3.3: the most likely 128-bit sequence under a first-order Markov model."""
    n = len(b)
    if n < 2:
        return Estimate(None)
    counts = ffi.new("int64_t[4]")  # transitions 00, 01, 10, 11
    check_rc(lib.sp_markov_counts(_ptr("uint8_t[]", b), n, counts), "markov")
    c00, c10 = int(counts[0]), int(counts[2])
    zeros_head = c00 + int(counts[1])
    ones_head = n - 1 - zeros_head
    p00 = c00 / zeros_head if zeros_head else 0.0
    p01 = 1.0 - p00 if zeros_head else 0.0
    p10 = c10 / ones_head if ones_head else 0.0
    p11 = 1.0 - p10 if ones_head else 0.0
    p0 = (zeros_head + (1 if b[-1] == 0 else 0)) / n
    p1 = 1.0 - p0
    candidates = []
    if p00 > 0:
        candidates.append(-math.log2(p0) - 127 * math.log2(p00))
    if p01 > 0 and p10 > 0:
        candidates.append(-math.log2(p0) - 64 * math.log2(p01) - 63 * math.log2(p10))
        candidates.append(-math.log2(p1) - 64 * math.log2(p10) - 63 * math.log2(p01))
    if p01 > 0 and p11 > 0:
        candidates.append(-math.log2(p0) - math.log2(p01) - 126 * math.log2(p11))
    if p10 > 0 and p00 > 0:
        candidates.append(-math.log2(p1) - math.log2(p10) - 126 * math.log2(p00))
    if p11 > 0:
        candidates.append(-math.log2(p1) - 127 * math.log2(p11))
    h_min = min([128.0, *candidates])
    details = {
        "p0": p0,
        "p1": p1,
        "p00": p00,
        "p01": p01,
        "p10": p10,
        "p11": p11,
        "p_max": 2.0**-h_min,
    }
    return Estimate(min(h_min / 128.0, 1.0) + 0.0, details)


# --------------------------------------------------------------------------
# §6.3.4 compression (binary)

_COMP_BITS = 6
_COMP_DICT = 1000


def compression_estimate(b: SymbolBuffer) -> Estimate:
    """§6.3.4: Maurer's universal statistic on 6-bit blocks, solved for the most
    likely block probability by bisection."""
    total = ffi.new("double *")
    squares = ffi.new("double *")
    blocks = ffi.new("int64_t *")
    rc = lib.sp_compression_stats(_ptr("uint8_t[]", b), len(b), total, squares, blocks)
    if rc == lib.SP_ERR_ARGS:
        return Estimate(None, {"reason": "needs more than 6,000 bits"})
    check_rc(rc, "compression")
    num_blocks = int(blocks[0])
    v = num_blocks - _COMP_DICT
    if v < 2:
        return Estimate(None, {"reason": "needs at least 1,002 blocks of 6 bits"})
    x_bar = total[0] / v
    sigma = 0.5907 * math.sqrt(max(0.0, squares[0] / (v - 1) - x_bar * x_bar))
    x_low = x_bar - Z_ALPHA * sigma / math.sqrt(v)
    details: dict[str, Any] = {"x_bar": x_bar, "sigma": sigma, "x_bar_low": x_low}
    floor = 1.0 / (1 << _COMP_BITS)
    solved = ffi.new("double *")
    check_rc(lib.sp_compression_solve(x_low, num_blocks, solved), "compression")
    p = float(solved[0])
    details["p"] = p
    h = _bits_of(p) / _COMP_BITS if p > floor else 1.0
    return Estimate(h, details)


def _bisect_decreasing(f: Callable[[float], float], target: float, lo: float, hi: float) -> float:
    """Solve f(p) = target for f decreasing on [lo, hi], f(lo) > target."""
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if mid <= lo or mid >= hi:
            break
        value = f(mid)
        if value == target:
            return mid
        if value > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


# --------------------------------------------------------------------------
# §6.3.5 t-tuple and §6.3.6 longest repeated substring


_TUPLE_CUTOFF = 35


def tuple_estimates(s: SymbolBuffer) -> tuple[Estimate, Estimate]:
    """§6.3.5 and §6.3.6 from one suffix array: (t-tuple, LRS).

    t-tuple: over tuple lengths t whose most common t-tuple occurs at least 35
    times, the largest (count / (L - t + 1))^(1/t).  LRS: for the longer
    lengths up to the longest repeat, the largest collision probability of
    t-tuples, to the power 1/t.
    """
    n = len(s)
    if n < 2:
        return Estimate(None), Estimate(None)
    counts = suffix.bit_tuple_counts_lists(s) if max(byte_counts(s)[2:]) == 0 else None
    q, pairs = counts if counts is not None else suffix.tuple_counts_lists(s)
    v = len(q) - 1
    u = next((t for t in range(1, v + 1) if q[t] < _TUPLE_CUTOFF), v + 1)
    if u > 1:
        p_max = max((q[t] / (n - t + 1)) ** (1.0 / t) for t in range(1, u))
        p_u = _upper_bound(p_max, n)
        t_tuple = Estimate(_bits_of(p_u), {"t": u - 1, "p_hat_max": p_max, "p_u": p_u})
    else:
        t_tuple = Estimate(None, {"reason": "no tuple occurs 35 times"})
    if v >= u:
        # as floats before dividing: the pair counts pass 2^53 on long inputs
        p_max = max(
            (float(pairs[t]) / float((n - t) * (n - t + 1) // 2)) ** (1.0 / t) for t in range(u, v + 1)
        )
        p_u = _upper_bound(p_max, n)
        lrs = Estimate(_bits_of(p_u), {"u": u, "v": v, "p_hat": p_max, "p_u": p_u})
    else:
        lrs = Estimate(None, {"reason": "longest repeat is shorter than u", "u": u, "v": v})
    return t_tuple, lrs


# --------------------------------------------------------------------------
# §6.3.7-6.3.10 predictors


_LOG_099 = math.log(0.99)


def _no_long_run_log_probability(p: float, r: int, n: int) -> float:
    """log Pr(no run of r correct predictions in n + ... trials), §6.3.7 step 6.

    With q = 1 - p and x the root near 1 of 1 - x + q p^r x^(r+1) = 0, this is
    log[(1 - p x) / ((r + 1 - r x) q) / x^(n+1)].  It is evaluated in y = x - 1
    so the (n + 1) log x term keeps its precision.
    """
    q = 1.0 - p
    if q <= 0.0:
        return -math.inf
    coef = q * math.exp(r * math.log(p))
    y = 0.0
    for _ in range(2000):
        nxt = coef * math.exp((r + 1) * math.log1p(y))
        if nxt == y:
            break
        y = nxt
    a = q - p * y
    c = 1.0 - r * y
    if a <= 0.0 or c <= 0.0:
        return -math.inf
    return math.log(a) - math.log(c * q) - (n + 1) * math.log1p(y)


def prediction_bound(correct: int, predictions: int, longest_run: int, alphabet: int) -> Estimate:
    """§6.3.7 steps 5-7: min-entropy from C correct of N predictions and the
    longest run of correct predictions, bounding both the global and the
    local (run-based) probability of a correct prediction."""
    n = predictions
    r = longest_run + 1
    p_global = correct / n
    if correct > 0:
        p_prime = min(1.0, p_global + Z_ALPHA * math.sqrt(p_global * (1.0 - p_global) / (n - 1)))
    else:
        p_prime = 1.0 - 0.01 ** (1.0 / n)
    p = max(1.0 / alphabet, p_prime)
    p_local = None
    if p < 1.0 and _no_long_run_log_probability(p, r, n) > _LOG_099:
        p_local = _bisect_decreasing(
            lambda x: _no_long_run_log_probability(x, r, n), _LOG_099, p, 1.0
        )
        p = max(p, p_local)
    details = {"N": n, "C": correct, "r": r, "p_global_prime": p_prime, "p_local": p_local}
    return Estimate(_bits_of(p), details)


def _predictor(
    kernel: Callable[..., int], name: str, s: SymbolBuffer, alphabet: int, minimum: int
) -> Estimate:
    if len(s) < minimum:
        return Estimate(None, {"reason": f"needs at least {minimum} samples"})
    out = ffi.new("sp_predictor_result *")
    check_rc(kernel(_ptr("uint8_t[]", s), len(s), max(alphabet, 2), out), name)
    return prediction_bound(out.correct, out.predictions, out.longest_run, alphabet)


def multi_mcw_estimate(s: SymbolBuffer, alphabet: int) -> Estimate:
    """§6.3.7: predict the most common value in windows of 63..4095 samples."""
    return _predictor(lib.sp_multi_mcw, "multi_mcw", s, alphabet, 4096)


def lag_estimate(s: SymbolBuffer, alphabet: int) -> Estimate:
    """§6.3.8: predict the sample 1..128 positions back."""
    return _predictor(lib.sp_lag, "lag", s, alphabet, 3)


def multi_mmc_estimate(s: SymbolBuffer, alphabet: int) -> Estimate:
    """§6.3.9: Markov models of order 1..16 with counting."""
    return _predictor(lib.sp_multi_mmc, "multi_mmc", s, alphabet, 4)


def lz78y_estimate(s: SymbolBuffer, alphabet: int) -> Estimate:
    """§6.3.10: LZ78-style dictionary of contexts up to 16 samples long."""
    return _predictor(lib.sp_lz78y, "lz78y", s, alphabet, 19)


# --------------------------------------------------------------------------
# the assessment


# Cost of one estimator run, in ns per symbol (measured on the reference
# files), for scheduling only: on binary symbols, and on wider ones, where
# the context models hash and the suffix array is SA-IS.
_COST = {
    "multi_mmc": (39.0, 230.0),
    "tuple": (32.0, 60.0),
    "lz78y": (35.0, 60.0),
    "lag": (9.5, 33.0),
    "multi_mcw": (8.0, 50.0),
    "compression": (3.0, 3.0),
    "collision": (1.5, 1.5),
    "markov": (0.5, 0.5),
    "mcv": (0.2, 1.0),
}


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _run_in_order(jobs: list[Callable[[], Any]], workers: int, done: Callable[[int, Any], None]) -> None:
    """Run the jobs, in list order, on `workers` threads (one: in this thread), calling
    done(index, value) in this thread as each ends; the first exception is raised once
    the running jobs end.  (concurrent.futures would do, but it brings logging and
    some megabytes into the 1-bit assessment's start-up.)"""
    if workers <= 1 or len(jobs) <= 1:
        for index, job in enumerate(jobs):
            done(index, job())
        return
    # (index, value, None) or (index, None, exception) per job; None as each thread ends
    results: SimpleQueue[tuple[int, Any, BaseException | None] | None] = SimpleQueue()
    claim = threading.Lock()
    upcoming = iter(range(len(jobs)))
    failed = threading.Event()

    def work() -> None:
        try:
            while not failed.is_set():
                with claim:
                    index = next(upcoming, None)
                if index is None:
                    break
                try:
                    value = jobs[index]()
                except BaseException as exc:  # handed to the calling thread, raised there
                    failed.set()
                    results.put((index, None, exc))
                    break
                results.put((index, value, None))
        finally:
            results.put(None)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(min(workers, len(jobs)))]
    for thread in threads:
        thread.start()
    error: BaseException | None = None
    try:
        ended = 0
        while ended < len(threads):
            item = results.get()
            if item is None:
                ended += 1
            elif item[2] is not None:
                error = error or item[2]
            elif error is None:
                done(item[0], item[1])
    finally:
        failed.set()
        for thread in threads:
            thread.join()
    if error is not None:
        raise error


def assess_noniid(
    samples: SymbolBuffer,
    bits: int,
    progress: ProgressCallback | None = None,
    *,
    workers: int | None = None,
) -> NonIidResult:
    """Run the SP 800-90B non-IID assessment on samples of `bits` bits each (a
    numpy array or bytes-like data, one sample per byte).

    Returns every estimator's h_original / h_bitstring and H_original,
    H_bitstring and H_assessed = min(H_original, bits x H_bitstring).
    progress(completed, total, description) is called (from this thread) as
    each estimator run finishes.  Raises UsageError for an empty sequence,
    bits outside 1..8 or a value wider than bits.
    """
    raw = symbol_bytes(samples, "samples")
    check_bits(raw, bits)
    if len(raw) < 2:
        raise UsageError(f"{len(raw)} samples: the assessment needs at least 2")
    present = [value for value, count in enumerate(byte_counts(raw)) if count]
    alphabet = len(present)
    binary = alphabet <= 2
    # Symbols renumbered 0..k-1 in order (equalities and order are kept); no copy
    # when they already are (binary 0/1 data, every byte value present).
    if present[-1] == alphabet - 1:
        symbols = raw
    else:
        lookup = bytearray(256)
        for index, value in enumerate(present):
            lookup[value] = index
        symbols = memoryview(bytes(raw).translate(lookup))
    bitseq = None if binary else memoryview(_bitstring_bytes(raw, bits))

    jobs: list[tuple[str, str, Callable[[], Any]]] = [
        ("multi_mmc", "original", lambda: multi_mmc_estimate(symbols, alphabet)),
        ("lz78y", "original", lambda: lz78y_estimate(symbols, alphabet)),
        ("tuple", "original", lambda: tuple_estimates(symbols)),
        ("multi_mcw", "original", lambda: multi_mcw_estimate(symbols, alphabet)),
        ("lag", "original", lambda: lag_estimate(symbols, alphabet)),
        ("mcv", "original", lambda: mcv_estimate(symbols, alphabet)),
    ]
    if binary:
        jobs += [
            ("compression", "original", lambda: compression_estimate(symbols)),
            ("collision", "original", lambda: collision_estimate(symbols)),
            ("markov", "original", lambda: markov_estimate(symbols)),
        ]
    if bitseq is not None:
        b = bitseq
        jobs += [
            ("multi_mmc", "bitstring", lambda: multi_mmc_estimate(b, 2)),
            ("tuple", "bitstring", lambda: tuple_estimates(b)),
            ("lz78y", "bitstring", lambda: lz78y_estimate(b, 2)),
            ("lag", "bitstring", lambda: lag_estimate(b, 2)),
            ("multi_mcw", "bitstring", lambda: multi_mcw_estimate(b, 2)),
            ("compression", "bitstring", lambda: compression_estimate(b)),
            ("collision", "bitstring", lambda: collision_estimate(b)),
            ("markov", "bitstring", lambda: markov_estimate(b)),
            ("mcv", "bitstring", lambda: mcv_estimate(b, 2)),
        ]
    # Longest first, so that two workers finish together.
    def cost(job: tuple[str, str, Callable[[], Any]]) -> float:
        key, which, _ = job
        if which == "bitstring":
            return _COST[key][0] * bits
        return _COST[key][0 if binary else 1]

    jobs.sort(key=cost, reverse=True)

    found: dict[tuple[str, str], Estimate] = {}
    total = len(jobs)
    done_count = 0

    def record(index: int, value: Any) -> None:
        nonlocal done_count
        key, which, _ = jobs[index]
        if key == "tuple":
            found[("t_tuple", which)], found[("lrs", which)] = value
        else:
            found[(key, which)] = value
        done_count += 1
        if progress is not None:
            label = "t-tuple/LRS" if key == "tuple" else ESTIMATORS[key][1]
            progress(done_count, total, f"{label} ({which})")

    n_workers = workers if workers is not None else _default_workers()
    _run_in_order([fn for _, _, fn in jobs], max(1, n_workers), record)

    estimators: dict[str, EstimatorResult] = {}
    h_original = float(bits)
    h_bitstring = 1.0
    for key in ESTIMATORS:
        orig = found.get((key, "original"))
        bit = found.get((key, "bitstring"))
        estimators[key] = EstimatorResult(
            key=key,
            h_original=orig.h if orig else None,
            h_bitstring=bit.h if bit else None,
            ran_original=orig is not None,
            ran_bitstring=bit is not None,
            details_original=orig.details if orig else {},
            details_bitstring=bit.details if bit else {},
        )
        if orig is not None and orig.h is not None:
            h_original = min(h_original, orig.h)
        if bit is not None and bit.h is not None:
            h_bitstring = min(h_bitstring, bit.h)

    if binary:
        h_assessed = h_original
        h_bits_out = None
    else:
        h_assessed = min(h_original, bits * h_bitstring)
        h_bits_out = h_bitstring
    warnings = []
    short = short_input_warning(len(raw))
    if short:
        warnings.append(short)
    return NonIidResult(
        bits=int(bits),
        samples=len(raw),
        alphabet=alphabet,
        h_original=h_original,
        h_bitstring=h_bits_out,
        h_assessed=h_assessed,
        estimators=estimators,
        warnings=tuple(warnings),
    )
