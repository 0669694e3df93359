"""Restart testing, SP 800-90B §3.1.4: is the entropy still there right after a restart?

The data is a matrix of 1,000 restarts x 1,000 samples: row i holds the first
1,000 samples after restart i (the "row dataset"); the column dataset is its
transpose.  The assessment has three steps, as in NIST's ea_restart:

1. The sanity check (§3.1.4.3): in no row and no column may one value occur
   more often than X_cutoff, the count that a source of min-entropy H_I (the
   initial estimate) exceeds with probability below alpha = 1 - 0.99^(1/2000),
   i.e. 1 % over the 2,000 rows and columns.  A source that starts from the
   same state after every restart fails here.
2. The estimators (non-IID, §6.3, or the IID MCV estimate, §6.3.1) on the row
   dataset and on the column dataset: h_r and h_c, each the minimum over its
   estimators, per sample, on the symbols themselves (no bitstring pass).
3. The validation (§3.1.4.2): min(h_r, h_c) must be at least H_I / 2; the
   validated entropy is then min(H_I, h_r, h_c).

X_cutoff: NIST's tool estimates it by simulating 5,000,000 rows of a source
with k = ceil(2^H_I) symbols (k - 1 of them with probability p = 2^-H_I) and
taking the (1 - alpha) quantile of the largest symbol count, so its value can
move by one between runs.  We compute the same quantile exactly: the
distribution of the largest count of that multinomial, by Poissonisation and
convolution of truncated Poisson laws.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chaosmagnet.assessment._kernel import symbols_array
from chaosmagnet.assessment.noniid import (
    ESTIMATORS,
    Estimate,
    ProgressCallback,
    collision_estimate,
    compression_estimate,
    lag_estimate,
    lz78y_estimate,
    markov_estimate,
    mcv_estimate,
    multi_mcw_estimate,
    multi_mmc_estimate,
    tuple_estimates,
)
from chaosmagnet.assessment.samples import check_bits
from chaosmagnet.errors import InputFileError, UsageError

__all__ = [
    "RESTARTS",
    "SAMPLES_PER_RESTART",
    "RestartResult",
    "SanityCheck",
    "assess_restart",
    "check_restart_input",
    "restart_alpha",
    "restart_cutoff",
    "sanity_check",
    "translate_symbols",
]

#: The matrix the standard asks for: 1,000 restarts of 1,000 samples each.
RESTARTS = 1000
SAMPLES_PER_RESTART = 1000


def restart_alpha(rows: int = RESTARTS, cols: int = SAMPLES_PER_RESTART) -> float:
    """The per-row/column significance: 1 - 0.99^(1/(rows + cols)), about 0.01 / 2000."""
    return -math.expm1(math.log(0.99) / (rows + cols))


def _poisson_pmf(mean: float, top: int) -> np.ndarray:
    """Pr(X = j) for X ~ Poisson(mean), j = 0..top."""
    j = np.arange(top + 1, dtype=np.float64)
    if mean <= 0.0:
        out = np.zeros(top + 1)
        out[0] = 1.0
        return out
    lgam = np.array([math.lgamma(x + 1.0) for x in range(top + 1)])
    return np.exp(j * math.log(mean) - mean - lgam)


def _max_count_cdf(x: int, probs: list[float], n: int) -> float:
    """Pr(every symbol count <= x) for n draws from the distribution probs."""
    acc = np.zeros(n + 1)
    acc[0] = 1.0
    for p in probs:
        acc = np.convolve(acc, _poisson_pmf(n * p, min(x, n)))[: n + 1]
    return float(acc[n] / _poisson_pmf(float(n), n)[n])


def restart_cutoff(h_initial: float, n: int = SAMPLES_PER_RESTART, alpha: float | None = None) -> int:
    """X_cutoff: the (1 - alpha) quantile of the largest symbol count in n samples
    of a source with min-entropy h_initial (k - 1 symbols of probability 2^-H_I)."""
    if not math.isfinite(h_initial) or h_initial < 0.0 or h_initial > 8.0:
        raise UsageError(f"H_I must be between 0 and 8 bits, got {h_initial!r}")
    a = restart_alpha() if alpha is None else alpha
    p = 2.0**-h_initial
    k = math.ceil(1.0 / p)
    probs = [p] * (k - 1) + [max(0.0, 1.0 - (k - 1) * p)]
    if k == 1:
        return n
    lo, hi = math.ceil(n / k), n  # the largest count is at least n/k
    while lo < hi:  # smallest x with Pr(max <= x) >= 1 - alpha
        mid = (lo + hi) // 2
        if 1.0 - _max_count_cdf(mid, probs, n) <= a:
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass(frozen=True)
class SanityCheck:
    """§3.1.4.3: the largest count of one value in any row (x_rows) and any column
    (x_cols) against X_cutoff."""

    alpha: float
    x_cutoff: int
    x_rows: int
    x_cols: int

    @property
    def x_max(self) -> int:
        """The larger of the row and column counts."""
        return max(self.x_rows, self.x_cols)

    @property
    def passed(self) -> bool:
        """True when no row or column has one value more than X_cutoff times."""
        return self.x_max <= self.x_cutoff

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the sanity check."""
        return {
            "passed": self.passed,
            "alpha": self.alpha,
            "x_cutoff": self.x_cutoff,
            "x_max": self.x_max,
            "x_rows": self.x_rows,
            "x_cols": self.x_cols,
        }


def translate_symbols(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """The samples renumbered 0..k-1 in order of value, and k (as ea_restart does)."""
    present = np.flatnonzero(np.bincount(samples, minlength=256))
    lookup = np.zeros(256, dtype=np.uint8)
    lookup[present] = np.arange(present.size, dtype=np.uint8)
    return lookup[samples], int(present.size)


def _largest_count(matrix: np.ndarray, alphabet: int) -> int:
    """The largest number of times one value occurs in one row of matrix."""
    rows = matrix.shape[0]
    offsets = (np.arange(rows, dtype=np.int64) * alphabet)[:, None]
    counts = np.bincount((matrix.astype(np.int64) + offsets).ravel(), minlength=rows * alphabet)
    return int(counts.max())


def sanity_check(matrix: np.ndarray, h_initial: float, alphabet: int | None = None) -> SanityCheck:
    """§3.1.4.3 on a restarts x samples matrix of symbols."""
    k = alphabet if alphabet is not None else int(matrix.max()) + 1
    rows, cols = matrix.shape
    if rows != cols:
        raise UsageError(f"the restart matrix must be square, got {rows} x {cols}")
    return SanityCheck(
        alpha=restart_alpha(rows, cols),
        x_cutoff=restart_cutoff(h_initial, cols),
        x_rows=_largest_count(matrix, k),
        x_cols=_largest_count(np.ascontiguousarray(matrix.T), k),
    )


@dataclass(frozen=True)
class RestartResult:
    """The restart assessment: sanity check, h_r and h_c with every estimate, and
    the validated min-entropy (None when a check failed)."""

    bits: int
    alphabet: int
    h_initial: float
    iid: bool
    sanity: SanityCheck
    h_r: float | None = None
    h_c: float | None = None
    rows: dict[str, float | None] = field(default_factory=dict)
    cols: dict[str, float | None] = field(default_factory=dict)
    iid_tests: dict[str, Any] | None = None
    file: str | None = None

    @property
    def validation_passed(self) -> bool | None:
        """§3.1.4.2: min(h_r, h_c) >= H_I / 2 (None when the sanity check failed)."""
        if self.h_r is None or self.h_c is None:
            return None
        return min(self.h_r, self.h_c) >= self.h_initial / 2.0

    @property
    def passed(self) -> bool:
        """Both the sanity check and the validation passed."""
        return self.sanity.passed and self.validation_passed is True

    @property
    def h_final(self) -> float | None:
        """min(H_I, h_r, h_c) when every check passed, else None: no entropy is awarded."""
        if not self.passed or self.h_r is None or self.h_c is None:
            return None
        return min(self.h_initial, self.h_r, self.h_c)

    @property
    def verdict(self) -> str:
        """One line saying what the assessment found."""
        if not self.sanity.passed:
            return (
                f"restart sanity check FAILED: one value occurs {self.sanity.x_max} times in a "
                f"{'row' if self.sanity.x_rows >= self.sanity.x_cols else 'column'} "
                f"(cutoff {self.sanity.x_cutoff} for H_I = {self.h_initial:g}); "
                "the source does not start fresh after a restart: no entropy awarded"
            )
        if not self.validation_passed:
            return (
                f"restart validation FAILED: min(h_r, h_c) = "
                f"{min(self.h_r or 0.0, self.h_c or 0.0):.6f} < H_I / 2 = "
                f"{self.h_initial / 2:.6f}: no entropy awarded"
            )
        return f"restart tests passed: min(H_I, h_r, h_c) = {self.h_final:.6f} bits per sample"

    def to_json(self) -> dict[str, Any]:
        """The JSON object of `chaos-host assess-restart --json`."""
        out: dict[str, Any] = {
            "file": self.file,
            "bits": self.bits,
            "alphabet": self.alphabet,
            "track": "iid" if self.iid else "non-iid",
            "h_initial": self.h_initial,
            "sanity_check": self.sanity.to_json(),
            "h_r": self.h_r,
            "h_c": self.h_c,
            "validation": {"passed": self.validation_passed},
            "passed": self.passed,
            "h_final": self.h_final,
            "verdict": self.verdict,
            "estimators": {
                key: {"rows": self.rows.get(key), "cols": self.cols.get(key)}
                for key in ESTIMATORS
                if key in self.rows or key in self.cols
            },
        }
        if self.iid_tests is not None:
            out["iid_tests"] = self.iid_tests
        return out


def _estimator_jobs(data: np.ndarray, alphabet: int) -> list[tuple[str, Callable[[], Any]]]:
    jobs: list[tuple[str, Callable[[], Any]]] = [
        ("multi_mmc", lambda: multi_mmc_estimate(data, alphabet)),
        ("tuple", lambda: tuple_estimates(data)),
        ("lz78y", lambda: lz78y_estimate(data, alphabet)),
        ("lag", lambda: lag_estimate(data, alphabet)),
        ("multi_mcw", lambda: multi_mcw_estimate(data, alphabet)),
        ("mcv", lambda: mcv_estimate(data, alphabet)),
    ]
    if alphabet == 2:
        jobs += [
            ("compression", lambda: compression_estimate(data)),
            ("collision", lambda: collision_estimate(data)),
            ("markov", lambda: markov_estimate(data)),
        ]
    return jobs


def _run_noniid(
    datasets: dict[str, np.ndarray],
    alphabet: int,
    progress: ProgressCallback | None,
    workers: int,
) -> dict[str, dict[str, float | None]]:
    """Every applicable §6.3 estimator on each dataset: {dataset: {estimator: h}}."""
    jobs = [(which, key, fn) for which, data in datasets.items() for key, fn in _estimator_jobs(data, alphabet)]
    found: dict[str, dict[str, float | None]] = {which: {} for which in datasets}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: dict[Future[Any], tuple[str, str]] = {pool.submit(fn): (which, key) for which, key, fn in jobs}
        done = 0
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                which, key = pending.pop(fut)
                value = fut.result()
                if key == "tuple":
                    t_tuple, lrs = value
                    found[which]["t_tuple"] = t_tuple.h
                    found[which]["lrs"] = lrs.h
                else:
                    estimate: Estimate = value
                    found[which][key] = estimate.h
                done += 1
                if progress is not None:
                    label = "t-tuple/LRS" if key == "tuple" else ESTIMATORS[key][1]
                    progress(done, len(jobs), f"{label} ({which})")
    return found


def _minimum(bits: int, estimates: dict[str, float | None]) -> float:
    """min over the estimates that ran, starting from the sample width (as ea_restart)."""
    return min([float(bits), *[h for h in estimates.values() if h is not None]])


def check_restart_input(
    samples: np.ndarray, bits: int, h_initial: float, restarts: int = RESTARTS
) -> tuple[np.ndarray, np.ndarray, int, float]:
    """Validate a restart dataset: (raw samples, translated symbols, alphabet size, H_I).

    Raises UsageError for H_I outside 0..bits, InputFileError for a dataset that
    is not restarts x restarts samples or has too few distinct values for H_I.
    """
    raw = symbols_array(samples, "samples")
    check_bits(raw, bits)
    if isinstance(h_initial, bool) or not isinstance(h_initial, (int, float)):
        raise UsageError(f"H_I must be a number, got {h_initial!r}")
    h_initial = float(h_initial)
    if not math.isfinite(h_initial) or not 0.0 <= h_initial <= bits:
        raise UsageError(f"H_I must be between 0 and the sample width ({bits} bits), got {h_initial:g}")
    if raw.size != restarts * restarts:
        raise InputFileError(
            f"{raw.size:,} samples: restart testing needs {restarts:,} restarts x "
            f"{restarts:,} samples = {restarts * restarts:,}"
        )
    symbols, alphabet = translate_symbols(raw)
    needed = math.ceil(2.0**h_initial - 1e-9)
    if alphabet < needed:
        raise InputFileError(
            f"the matrix has {alphabet} distinct value(s): it cannot carry H_I = {h_initial:g} "
            f"bits per sample (that needs at least {needed}); lower --h-initial"
        )
    return raw, symbols, alphabet, h_initial


def assess_restart(
    samples: np.ndarray,
    bits: int,
    h_initial: float,
    *,
    iid: bool = False,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    restarts: int = RESTARTS,
) -> RestartResult:
    """Run the §3.1.4 restart tests on a row dataset (restarts rows, concatenated).

    Returns the sanity check, h_r, h_c and the validated min-entropy.  When the
    sanity check fails the estimators are not run (h_r = h_c = None).  Raises
    UsageError for H_I outside 0..bits, InputFileError for a dataset that is
    not restarts x restarts samples or has too few distinct values for H_I.
    """
    raw, symbols, alphabet, h_initial = check_restart_input(samples, bits, h_initial, restarts)
    matrix = symbols.reshape(restarts, restarts)
    sanity = sanity_check(matrix, h_initial, alphabet)
    if not sanity.passed:
        return RestartResult(bits=int(bits), alphabet=alphabet, h_initial=h_initial, iid=iid, sanity=sanity)
    datasets = {"rows": symbols, "cols": np.ascontiguousarray(matrix.T).ravel()}
    n_workers = workers if workers is not None else max(1, min(2, os.cpu_count() or 1))
    iid_tests: dict[str, Any] | None = None
    if iid:
        from chaosmagnet.assessment import iid as iid_track

        found = {which: {"mcv": mcv_estimate(data, alphabet).h} for which, data in datasets.items()}
        iid_tests = {}
        raw_sets = {"rows": raw, "cols": np.ascontiguousarray(raw.reshape(restarts, restarts).T).ravel()}
        for which, data in raw_sets.items():

            def step(done: int, total: int, description: str, which: str = which) -> None:
                if progress is not None:
                    progress(done, total, f"IID tests ({which}): {description}")

            result = iid_track.assess_iid(data, bits, step, workers=n_workers)
            iid_tests[which] = {
                "iid": result.iid,
                "chi_square": result.chi_square_passed,
                "lrs": result.lrs.passed,
                "permutation": result.permutation_passed,
            }
    else:
        found = _run_noniid(datasets, alphabet, progress, n_workers)
    return RestartResult(
        bits=int(bits),
        alphabet=alphabet,
        h_initial=h_initial,
        iid=iid,
        sanity=sanity,
        h_r=_minimum(bits, found["rows"]),
        h_c=_minimum(bits, found["cols"]),
        rows=found["rows"],
        cols=found["cols"],
        iid_tests=iid_tests,
    )
