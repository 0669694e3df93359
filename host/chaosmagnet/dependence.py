"""Cross-source dependence: find sources that share a cause, so the pool credits them once.

Sans-IO: the engine hands every batch to ``observe(source, samples, t)`` (a
bounded copy appended to a bounded deque: the ingest hot path does nothing
else here) and calls ``tick(t, credit_rates)`` once a second; all the
statistics run there.  docs/pipeline.md "Dependence" has the measured figures.

What is compared
    Samples are binned by *arrival time* into bins of ``bin_seconds``; each
    source gets one level per bin (the circular mean of its samples on the
    2^bits circle, so a wrapping low byte is a small step; the plain mean for
    1- and 2-bit sources) and per-second statistics (level, rate, min-entropy
    of that second's samples).  Two sources are compared on the bins and
    seconds both filled.

Two tests per pair
    * Mutual information of the bin levels.  The first differences of each
      series (a drifting level would otherwise look shared) are turned into
      ``levels`` equiprobable symbols by rank; the plug-in estimate of
      I(X;Y) is reported with the Miller-Madow bias correction,
      I_MM = I_plugin - (K_xy - K_x - K_y + 1) / (2 n ln 2) bits (K: occupied
      cells).  Significance comes from a shuffle-in-time null: the G
      statistic (2 n ln 2 I_plugin) of ``shifts`` circular shifts of one series
      against the other (which keeps each series' own autocorrelation) gives
      the null's inflation c over the chi-square with (levels-1)^2 degrees of
      freedom (from its mean, or its spread when larger); p = P(chi2 > G / c).
      The permutation p (rank among the shifts) is reported too.
    * Lag correlation of the per-second statistics, differenced, at lags
      -max_lag..max_lag seconds: a slow shared cause (one power rail, mains
      flicker, load) moves them together.  Rank correlation, tested with a
      Newey-West variance, Bonferroni over the (statistic, lag) cells.  Only
      ``deciding_stats`` (level and min-entropy) count: equal-rate framed
      sources share their frames-per-second pattern without sharing noise.

    The pair's p is twice the smaller of the two (Bonferroni over the tests).

Decisions, with hysteresis
    A pair becomes dependent when p < ``join_p``; it stays so until
    ``clear_tests`` tests in a row give p > ``clear_p``, or until it has not
    been testable for ``stale_seconds`` (or two rounds of the schedule, if
    longer: a source stopped).  Dependent pairs form groups (union-find).
    While a group holds, only its best member (highest credit rate in
    bits/s, switched only when another is ``switch_margin`` better) is
    credited: ``credit_factor`` is 0 for the others, so the group's credit is
    that of its best member, not the sum.

Cost and schedule
    Per source and tick: a histogram of each batch kept (at most
    ``max_batch_samples`` samples per batch).  Per pair test: one
    (shifts + 1) x mi_bins symbol table (bincount) plus
    len(deciding_stats) x (2 max_lag + 1) rank correlations over
    ``stat_seconds`` points: O(shifts x mi_bins + lags x stat_seconds).  At
    most ``pairs_per_tick`` pairs are tested per tick, round-robin over all
    pairs, so the cost per tick is bounded whatever the number of sources;
    with S sources each pair is re-tested every
    ceil(S(S-1)/2 / pairs_per_tick) seconds.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from chaosmagnet.errors import UsageError

__all__ = [
    "DependenceEvent",
    "DependenceSettings",
    "DependenceTracker",
    "PairResult",
    "chi2_sf",
    "lag_correlation_test",
    "mutual_information_test",
]

_LN2 = math.log(2.0)
STATS = ("mean", "rate", "h_min")


@dataclass(frozen=True)
class DependenceSettings:
    """Windows, thresholds and the pair budget of the dependence tracker."""

    bin_seconds: float = 0.25
    mi_bins: int = 480  # MI window: the last 480 bins (120 s)
    min_bins: int = 96  # paired bins needed before a pair's MI is tested
    levels: int = 4  # symbols per series (equiprobable, by rank)
    shifts: int = 48  # circular shifts for the null
    stat_seconds: int = 240  # lag-correlation window of per-second statistics
    min_stat_points: int = 45
    max_lag: int = 3  # seconds each way
    join_p: float = 1e-7
    clear_p: float = 1e-2
    clear_tests: int = 3
    stale_seconds: float = 60.0
    pairs_per_tick: int = 16
    max_batch_samples: int = 4096  # kept per batch (the bin mean of a larger batch uses its first ones)
    deciding_stats: tuple[str, ...] = ("mean", "h_min")  # see docs/pipeline.md on why not "rate"
    switch_margin: float = 1.25  # another member must be this much better to become the credited one

    def __post_init__(self) -> None:
        if self.bin_seconds <= 0 or self.levels < 2 or self.shifts < 8 or self.pairs_per_tick < 1:
            raise UsageError("dependence settings: bin_seconds > 0, levels >= 2, shifts >= 8, pairs_per_tick >= 1")
        if self.min_bins < 4 * self.levels * self.levels:
            raise UsageError(f"dependence settings: min_bins must be at least 4 x levels^2 ({4 * self.levels**2})")
        if self.mi_bins <= self.min_bins or self.stat_seconds < self.min_stat_points + 2 * self.max_lag:
            raise UsageError("dependence settings: the windows must be longer than their minimum fill")
        if not 0 < self.join_p < self.clear_p < 1:
            raise UsageError("dependence settings: need 0 < join_p < clear_p < 1")


@dataclass(frozen=True)
class PairResult:
    """One test of one pair: the evidence, and the verdict with hysteresis applied."""

    a: str
    b: str
    t: float
    mi_bits: float | None  # Miller-Madow corrected, of the binned means' symbols
    mi_p: float | None  # chi-square calibrated on the shift-in-time null
    mi_p_perm: float | None  # rank among the shifts
    mi_n: int
    lag_r: float | None  # largest |r| of the per-second statistics, signed
    lag_s: int | None  # at this lag (seconds, b after a)
    lag_stat: str | None  # of this statistic
    lag_p: float | None
    p_value: float  # 2 x the smaller p (1.0 when neither test could run)
    dependent: bool
    detector: str  # "mi", "lag" or "" (which test gave p_value)

    def to_json(self) -> dict[str, Any]:
        """Plain data for the snapshot, the health log and provenance."""

        def r(value: float | None, digits: int = 4) -> float | None:
            return None if value is None else float(f"{value:.{digits}g}")

        return {
            "sources": [self.a, self.b],
            "mi_bits": r(self.mi_bits),
            "mi_p": r(self.mi_p, 3),
            "mi_p_perm": r(self.mi_p_perm, 3),
            "mi_bins": self.mi_n,
            "lag_r": r(self.lag_r),
            "lag_seconds": self.lag_s,
            "lag_stat": self.lag_stat,
            "lag_p": r(self.lag_p, 3),
            "p_value": r(self.p_value, 3),
            "detector": self.detector,
            "dependent": self.dependent,
        }


@dataclass(frozen=True)
class DependenceEvent:
    """A pair found dependent, or cleared; ``group`` is the group after the change."""

    kind: str  # "dependence_found" | "dependence_cleared"
    result: PairResult
    reason: str
    group: tuple[str, ...]


# -- statistics (pure functions) ---------------------------------------------


def chi2_sf(x: float, df: int) -> float:
    """Upper tail P(chi2_df > x) for integer df (regularized upper incomplete gamma at df/2)."""
    if df < 1:
        raise UsageError("chi-square needs df >= 1")
    if x <= 0:
        return 1.0
    h = x / 2.0
    # Q(a+1, h) = Q(a, h) + h^a e^-h / Gamma(a+1), from Q(1, h) = e^-h or Q(1/2, h) = erfc(sqrt h)
    if df % 2 == 0:
        a, q = 1.0, math.exp(-h)
    else:
        a, q = 0.5, math.erfc(math.sqrt(h))
    while a < df / 2.0 - 1e-9:
        q += math.exp(a * math.log(h) - h - math.lgamma(a + 1.0))
        a += 1.0
    return min(1.0, max(0.0, q))


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 as floats, ties given their average rank (so ties carry no order in time)."""
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    if values.size == x.size:
        ranks = np.empty(x.size, dtype=np.float64)
        ranks[np.argsort(x, kind="stable")] = np.arange(x.size, dtype=np.float64)
        return ranks
    starts = np.cumsum(counts) - counts
    return (starts + (counts - 1) / 2.0)[inverse.ravel()]


def _rank_symbols(x: np.ndarray, levels: int) -> np.ndarray:
    """Equiprobable symbols 0..levels-1 by rank; tied values share a symbol (their average rank)."""
    return np.minimum((_ranks(x) * levels / x.size).astype(np.int64), levels - 1)


def _mi_bits_many(xs: np.ndarray, ys: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Plug-in MI (bits) and Miller-Madow corrected MI of each row pair of symbol matrices."""
    rows, n = ys.shape
    cells = levels * levels
    codes = xs * levels + ys + (np.arange(rows)[:, None] * cells)
    joint = np.bincount(codes.ravel(), minlength=rows * cells).reshape(rows, levels, levels).astype(np.float64)
    px = joint.sum(axis=2)
    py = joint.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = joint * np.log2(joint * n / (px[:, :, None] * py[:, None, :]))
    plugin = np.nansum(terms, axis=(1, 2)) / n
    k_xy = (joint > 0).sum(axis=(1, 2))
    k_x = (px > 0).sum(axis=1)
    k_y = (py > 0).sum(axis=1)
    corrected = plugin - (k_xy - k_x - k_y + 1) / (2.0 * n * _LN2)
    return plugin, corrected


@functools.lru_cache(maxsize=8)
def _shift_index(n: int, count: int) -> np.ndarray:
    """Row 0: the series as it is; rows 1..count: circular shifts spread evenly over n/8..7n/8
    (away from 0, and so from the true alignment), as one gather index (cached per n)."""
    low, high = max(1, n // 8), max(2, n - n // 8)
    offsets = np.concatenate([[0], np.linspace(low, high, count).astype(np.int64)])
    return (np.arange(n)[None, :] + offsets[:, None]) % n


def mutual_information_test(
    x: np.ndarray, y: np.ndarray, *, levels: int = 4, shifts: int = 48
) -> tuple[float, float, float]:
    """MI of two aligned series (the tracker passes increments), rank-quantized: (MI_MM bits, p, permutation p)."""
    dx, dy = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = dx.size
    if n < 4 * levels * levels or dy.size != n:
        raise UsageError(f"mutual information needs two aligned series of at least {4 * levels * levels} points")
    sx, sy = _rank_symbols(dx, levels), _rank_symbols(dy, levels)
    ys = sy[_shift_index(n, shifts)]
    xs = np.broadcast_to(sx, ys.shape)
    plugin, corrected = _mi_bits_many(xs, ys, levels)
    g = 2.0 * n * _LN2 * plugin
    df = (levels - 1) ** 2
    # the null's inflation over chi2_df: from its mean, or its spread when that is larger (conservative)
    inflation = max(1.0, float(np.mean(g[1:])) / df, float(np.std(g[1:])) / math.sqrt(2.0 * df))
    p = chi2_sf(float(g[0]) / inflation, df)
    p_perm = (1.0 + float(np.sum(g[1:] >= g[0]))) / (shifts + 1.0)
    return float(corrected[0]), p, p_perm


def _corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row of a with each row of b (NaN-free, same shape)."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (a * b).sum(axis=-1) / den
    return np.where(den > 0, r, 0.0)


def lag_correlation_test(
    xs: dict[str, np.ndarray],
    ys: dict[str, np.ndarray],
    *,
    max_lag: int = 3,
    min_points: int = 45,
    hac_lags: int = 2,
) -> tuple[float, int, str, float] | None:
    """Largest rank (Spearman) lag correlation of per-second statistics: (r, lag, statistic, p) or None.

    xs[stat] and ys[stat] are aligned per-second series, already differenced
    by the caller (NaN where a source gave nothing).  Lag L compares x[t]
    with y[t + L].  Each r is tested with a heteroscedasticity- and
    autocorrelation-consistent (Newey-West, ``hac_lags``) variance of the
    sum of rank products: robust to both series being noisier at the same
    moments (frames arriving in step), which a shift null misses.  p is the
    smallest two-sided normal tail times the number of (statistic, lag)
    cells tried (Bonferroni).
    """
    best: tuple[float, int, str, float] | None = None
    tried = 0
    for stat in xs:
        x, y = np.asarray(xs[stat], dtype=np.float64), np.asarray(ys[stat], dtype=np.float64)
        n = x.size
        if n < min_points + 2 * max_lag or y.size != n:
            continue
        fx, fy = np.isfinite(x), np.isfinite(y)
        if fx.sum() < min_points or fy.sum() < min_points or np.ptp(x[fx]) == 0 or np.ptp(y[fy]) == 0:
            continue
        # ranks once per series (Spearman: a wrapped or clipped reading is one rank, not an outlier)
        rx, ry = np.full(n, math.nan), np.full(n, math.nan)
        rx[fx], ry[fy] = _ranks(x[fx]), _ranks(y[fy])
        for lag in range(-max_lag, max_lag + 1):
            xl = rx[max(0, -lag) : n - max(0, lag)]
            yl = ry[max(0, lag) : n - max(0, -lag)]
            keep = np.isfinite(xl) & np.isfinite(yl)
            if keep.sum() < min_points:
                continue
            xr, yr = xl[keep], yl[keep]
            xr = xr - xr.mean()
            yr = yr - yr.mean()
            if not xr.any() or not yr.any():
                continue
            tried += 1
            prod = xr * yr
            var = float(prod @ prod)
            for k in range(1, hac_lags + 1):
                var += 2.0 * (1.0 - k / (hac_lags + 1.0)) * float(prod[k:] @ prod[:-k])
            if var <= 0:
                continue
            total = float(prod.sum())
            p_one = math.erfc(abs(total) / math.sqrt(2.0 * var))
            if best is None or p_one < best[3]:
                best = (total / math.sqrt(float(xr @ xr) * float(yr @ yr)), lag, stat, p_one)
    if best is None:
        return None
    return best[0], best[1], best[2], min(1.0, best[3] * tried)


# -- per-source windows ----------------------------------------------------

_VALUES = np.arange(256, dtype=np.float64)
_MAX_PENDING = 512  # batches kept per source between ticks (the oldest go first)


_CIRCLES: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # bits -> (sin, cos) of each value's angle


def _circle(bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The sines and cosines of the 256 values' angles on a 2^bits circle, made once per width."""
    if bits not in _CIRCLES:
        angle = _VALUES * (2.0 * math.pi / (1 << bits))
        _CIRCLES[bits] = (np.sin(angle), np.cos(angle))
    return _CIRCLES[bits]


def _level(hist: np.ndarray, bits: int) -> float:
    """A bin's level: the circular mean of its samples on a 2^bits circle (radians, -pi..pi),
    so that a reading wrapping from 255 to 0 is a small step; the plain mean for 1- and 2-bit sources."""
    if bits <= 2:
        return float(hist @ _VALUES) / float(hist.sum())
    sin, cos = _circle(bits)
    return math.atan2(float(hist @ sin), float(hist @ cos))


def _differences(x: np.ndarray, circular: bool) -> np.ndarray:
    """First differences; on the circle, wrapped into -pi..pi."""
    d = np.diff(x)
    return (d + math.pi) % (2.0 * math.pi) - math.pi if circular else d


@dataclass
class _SourceWindow:
    """What one source delivered, binned: bin means and per-second statistics."""

    bits: int = 8
    # batches since the last tick; bounded, so an engine that never ticks cannot grow it without end
    pending: deque[tuple[float, np.ndarray]] = field(default_factory=lambda: deque(maxlen=_MAX_PENDING))
    open_bins: dict[int, np.ndarray] = field(default_factory=dict)  # bin -> histogram of its samples
    bin_index: deque[int] = field(default_factory=deque)
    bin_mean: deque[float] = field(default_factory=deque)
    # per-second mean, rate, h_min in a ring indexed by tick % stat_seconds (NaN: nothing that second)
    second_stats: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))
    second_tick: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    samples: int = 0


# -- the tracker -------------------------------------------------------------


class DependenceTracker:
    """Tests pairs of sources for a shared cause and keeps the groups it finds (sans-IO)."""

    def __init__(self, settings: DependenceSettings | None = None) -> None:
        self.settings = settings or DependenceSettings()
        self._windows: dict[str, _SourceWindow] = {}
        self._tick_index = 0
        self._last_tick: float | None = None
        self._cursor = 0  # round-robin position in the pair list
        self._results: dict[tuple[str, str], PairResult] = {}
        self._dependent: dict[tuple[str, str], PairResult] = {}  # pairs currently held dependent
        self._quiet: dict[tuple[str, str], int] = {}  # consecutive tests above clear_p
        self._tested_at: dict[tuple[str, str], float] = {}
        self._groups: list[tuple[str, ...]] = []
        self._credited: dict[tuple[str, ...], str] = {}  # group -> the member that keeps its credit
        self._factor: dict[str, float] = {}
        self.tests_run = 0
        self.last_tested: list[PairResult] = []  # the pair tests of the latest tick

    # -- the hot path: nothing but a bounded copy ---------------------------
    def observe(self, source: str, samples: np.ndarray, t: float, bits_per_sample: int = 8) -> None:
        """Keep (a bounded copy of) a batch of uint8 samples with its arrival time, for the next tick."""
        window = self._windows.get(source)
        if window is None:
            window = self._windows[source] = _SourceWindow(bits=bits_per_sample)
        kept = samples[: self.settings.max_batch_samples]
        window.pending.append((t, kept & ((1 << bits_per_sample) - 1) if bits_per_sample < 8 else kept.copy()))

    def forget(self, source: str) -> None:
        """Drop a source (removed or stopped for good): its pairs and group membership go."""
        self._windows.pop(source, None)
        for pair in [p for p in self._results if source in p]:
            self._results.pop(pair, None)
            self._dependent.pop(pair, None)
            self._quiet.pop(pair, None)
            self._tested_at.pop(pair, None)

    @property
    def sources(self) -> list[str]:
        """Sources seen so far, in the order they appeared."""
        return list(self._windows)

    def pairs(self) -> list[tuple[str, str]]:
        """Every pair of sources seen, in a stable order (the schedule's ring)."""
        return list(combinations(sorted(self._windows), 2))

    # -- once a second -----------------------------------------------------
    def tick(self, t: float, credit_rates: dict[str, float] | None = None) -> list[DependenceEvent]:
        """Bin what arrived, test the next scheduled pairs, update groups; return found/cleared events."""
        elapsed = 1.0 if self._last_tick is None else max(1e-6, t - self._last_tick)
        self._last_tick = t
        self._tick_index += 1
        for window in self._windows.values():
            self._bin(window, t, elapsed)
        events: list[DependenceEvent] = []
        self.last_tested = []
        pairs = self.pairs()
        if pairs:
            budget = min(self.settings.pairs_per_tick, len(pairs))
            start = self._cursor % len(pairs)
            for k in range(budget):
                pair = pairs[(start + k) % len(pairs)]
                event = self._test(pair, t)
                if event is not None:
                    events.append(event)
            self._cursor = (start + budget) % len(pairs)
        # a pair that cannot be tested any more does not stay grouped (allowing two rounds of the schedule)
        stale = max(self.settings.stale_seconds, 2.0 * math.ceil(len(pairs) / self.settings.pairs_per_tick))
        for pair in list(self._dependent):
            if t - self._tested_at.get(pair, t) > stale:
                result = self._dependent.pop(pair)
                self._quiet.pop(pair, None)
                events.append(DependenceEvent("dependence_cleared", result, "no paired data to test", ()))
        self._regroup(credit_rates or {})
        return [DependenceEvent(e.kind, e.result, e.reason, self.group_of(e.result.a) or ()) for e in events]

    def _bin(self, window: _SourceWindow, t: float, elapsed: float) -> None:
        width = self.settings.bin_seconds
        hist_all = np.zeros(256, dtype=np.int64)
        for arrival, samples in window.pending:
            if samples.size == 0:
                continue
            hist = np.bincount(samples, minlength=256)[:256]
            hist_all += hist
            slot = window.open_bins.setdefault(int(math.floor(arrival / width)), np.zeros(256, dtype=np.int64))
            slot += hist
        window.pending.clear()
        total = int(hist_all.sum())
        window.samples += total
        current = int(math.floor(t / width))
        for b in sorted(k for k in window.open_bins if k < current):
            window.bin_index.append(b)
            window.bin_mean.append(_level(window.open_bins.pop(b), window.bits))
        while len(window.bin_index) > self.settings.mi_bins:
            window.bin_index.popleft()
            window.bin_mean.popleft()
        size = self.settings.stat_seconds
        if window.second_stats.shape[0] != size:
            window.second_stats = np.full((size, 3), math.nan)
            window.second_tick = np.full(size, -1, dtype=np.int64)
        row = self._tick_index % size
        window.second_tick[row] = self._tick_index
        if total:
            h_min = -math.log2(float(hist_all.max()) / total) if total >= 16 else math.nan
            window.second_stats[row] = (_level(hist_all, window.bits), total / elapsed, h_min)
        else:
            window.second_stats[row] = math.nan

    def _aligned_bins(self, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
        wa, wb = self._windows[a], self._windows[b]
        ia, ib = np.fromiter(wa.bin_index, dtype=np.int64), np.fromiter(wb.bin_index, dtype=np.int64)
        _, ka, kb = np.intersect1d(ia, ib, assume_unique=True, return_indices=True)
        ma, mb = np.fromiter(wa.bin_mean, dtype=np.float64), np.fromiter(wb.bin_mean, dtype=np.float64)
        return ma[ka], mb[kb]

    def _aligned_stats(self, a: str, b: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        size = self.settings.stat_seconds
        ticks = np.arange(self._tick_index - size + 1, self._tick_index + 1)
        slots = ticks % size
        out: list[dict[str, np.ndarray]] = []
        for name in (a, b):
            window = self._windows[name]
            if window.second_stats.shape[0] != size:
                table = np.full((size, 3), math.nan)
            else:
                table = np.where((window.second_tick[slots] == ticks)[:, None], window.second_stats[slots], math.nan)
            circular = window.bits > 2
            out.append(
                {
                    stat: _differences(table[:, i], circular and stat == "mean")
                    for i, stat in enumerate(STATS)
                    if stat in self.settings.deciding_stats
                }
            )
        return out[0], out[1]

    def _test(self, pair: tuple[str, str], t: float) -> DependenceEvent | None:
        s = self.settings
        a, b = pair
        xa, xb = self._aligned_bins(a, b)
        mi: tuple[float, float, float] | None = None
        if xa.size > s.min_bins:
            da = _differences(xa, self._windows[a].bits > 2)
            db = _differences(xb, self._windows[b].bits > 2)
            if np.ptp(da) > 0 and np.ptp(db) > 0:
                mi = mutual_information_test(da, db, levels=s.levels, shifts=s.shifts)
        sa, sb = self._aligned_stats(a, b)
        lag = lag_correlation_test(sa, sb, max_lag=s.max_lag, min_points=s.min_stat_points)
        if mi is None and lag is None:
            return None
        self.tests_run += 1
        self._tested_at[pair] = t
        p_mi = mi[1] if mi is not None else 1.0
        p_lag = lag[3] if lag is not None else 1.0
        p = min(1.0, 2.0 * min(p_mi, p_lag))
        detector = "mi" if p_mi <= p_lag else "lag"
        was = pair in self._dependent
        if p < s.join_p:
            dependent = True
            self._quiet[pair] = 0
        elif was and p > s.clear_p:
            self._quiet[pair] = self._quiet.get(pair, 0) + 1
            dependent = self._quiet[pair] < s.clear_tests
        else:
            dependent = was
            if was:
                self._quiet[pair] = 0
        result = PairResult(
            a=a,
            b=b,
            t=t,
            mi_bits=mi[0] if mi else None,
            mi_p=mi[1] if mi else None,
            mi_p_perm=mi[2] if mi else None,
            mi_n=int(xa.size),
            lag_r=lag[0] if lag else None,
            lag_s=lag[1] if lag else None,
            lag_stat=lag[2] if lag else None,
            lag_p=lag[3] if lag else None,
            p_value=p,
            dependent=dependent,
            detector=detector,
        )
        self._results[pair] = result
        self.last_tested.append(result)
        if dependent and not was:
            self._dependent[pair] = result
            return DependenceEvent("dependence_found", result, f"p {p:.2g} < {s.join_p:g} ({detector})", ())
        if dependent:
            if p < s.join_p:
                self._dependent[pair] = result  # keep the strongest recent evidence on show
            return None
        if was:
            del self._dependent[pair]
            self._quiet.pop(pair, None)
            return DependenceEvent(
                "dependence_cleared", result, f"p > {s.clear_p:g} in {s.clear_tests} tests in a row", ()
            )
        return None

    # -- groups and credit -------------------------------------------------
    def _regroup(self, credit_rates: dict[str, float]) -> None:
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            parent.setdefault(x, x)
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for a, b in self._dependent:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        members: dict[str, list[str]] = {}
        for name in parent:
            members.setdefault(find(name), []).append(name)
        groups = sorted(tuple(sorted(m)) for m in members.values() if len(m) > 1)
        credited: dict[tuple[str, ...], str] = {}
        factor: dict[str, float] = {}
        previous = {m: c for g, c in self._credited.items() for m in g}
        for group in groups:
            rate = {m: float(credit_rates.get(m, 0.0)) for m in group}
            best = max(group, key=lambda m: (rate[m], m))
            held = next((previous[m] for m in group if m in previous and previous[m] in group), None)
            if held is not None and rate[best] <= rate[held] * self.settings.switch_margin:
                best = held  # hysteresis: keep crediting the same member unless another is clearly better
            credited[group] = best
            for m in group:
                factor[m] = 1.0 if m == best else 0.0
        self._groups, self._credited, self._factor = groups, credited, factor

    def credit_factor(self, source: str) -> float:
        """1.0, or 0.0 for a grouped source that is not its group's credited member."""
        return self._factor.get(source, 1.0)

    def groups(self) -> list[tuple[str, ...]]:
        """The current groups of dependent sources (two or more members each)."""
        return list(self._groups)

    def group_of(self, source: str) -> tuple[str, ...] | None:
        """The group a source belongs to, or None."""
        return next((g for g in self._groups if source in g), None)

    def credited_member(self, group: tuple[str, ...]) -> str | None:
        """The member whose credit the group keeps."""
        return self._credited.get(group)

    def evidence(self, group: tuple[str, ...]) -> list[PairResult]:
        """The dependent pairs that hold a group together."""
        return [r for (a, b), r in sorted(self._dependent.items()) if a in group and b in group]

    def source_view(self, source: str) -> dict[str, Any] | None:
        """Per-source summary for the snapshot: its group, whether it keeps credit, why."""
        group = self.group_of(source)
        if group is None:
            return None
        partners = [
            {
                "with": r.b if r.a == source else r.a,
                "p_value": r.to_json()["p_value"],
                "mi_bits": r.to_json()["mi_bits"],
                "lag_seconds": r.lag_s,
                "detector": r.detector,
            }
            for r in self.evidence(group)
            if source in (r.a, r.b)
        ]
        return {
            "group": "+".join(group),
            "credited": self._credited.get(group) == source,
            "credited_member": self._credited.get(group),
            "partners": partners,
        }

    def snapshot(self) -> dict[str, Any]:
        """Groups with their evidence, the latest test of each pair and the schedule (plain data)."""
        n_pairs = len(self.pairs())
        budget = self.settings.pairs_per_tick
        return {
            "groups": [
                {
                    "members": list(g),
                    "credited_member": self._credited.get(g),
                    "evidence": [r.to_json() for r in self.evidence(g)],
                }
                for g in self._groups
            ],
            "pairs": [r.to_json() for _, r in sorted(self._results.items())],
            "schedule": {
                "sources": len(self._windows),
                "pairs": n_pairs,
                "pairs_per_tick": budget,
                "retest_seconds": max(1, math.ceil(n_pairs / budget)) if n_pairs else 0,
            },
            "tests_run": self.tests_run,
        }

    def provenance(self) -> list[dict[str, Any]]:
        """The groups in force, for a minted bundle's provenance: members, credited member, evidence."""
        return self.snapshot()["groups"]
