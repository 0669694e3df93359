"""Anomaly detection on per-interval features of each source and node, never on samples.

The RCT and APT only trip on gross failures.  A bias that creeps up but stays
below the APT cutoff, an interference at a fixed period, a rate that sags or a
node whose frames slow down all pass them.  Once per engine tick (1 s) each
source gets a small feature vector (``source_features``): its rate, the
plug-in min-entropy and collision entropy of the interval's samples, and how
many runs and APT windows came more than halfway to the health cutoffs.  (The
samples' mean is not a feature: on real sources such as cpu-jitter and system
it moves with the machine's load without costing entropy, and a bias that
does cost entropy lowers the min-entropy and collision entropy.)  Each node gets its frame inter-arrival time and
its drops per interval (``node_features``).  Feature extraction reads the
interval's samples; the models below see only the features.

Model: one robust two-sided CUSUM control chart per feature plus a
periodogram test across the charted features (``AnomalyModel``).  Why not
river's HalfSpaceTrees: a chart per feature says *which* feature moved and by
how much (the reason shown per source), its false-alarm rate follows from h and
k (a run length we can state and measure), it costs a few microseconds per
source and tick, and it adds no dependency to import.  HalfSpaceTrees gives an
opaque score in [0, 1], needs a window of examples to calibrate and pulls in
river (and pandas/scipy) for the engine.

Per feature: the first ``warmup`` intervals learn a baseline (a winsorised
mean and standard deviation, floored); a feature whose warm-up series is not
stationary (lag-1 autocorrelation above ``max_autocorrelation``, or halves whose
means differ by more than four standard errors) is not charted until a later
warm-up's worth of values is.  After that
z = (x - mean) / sd is clipped to +-``clip`` and fed to S+ = max(0, S+ + z - k)
and S- = max(0, S- - z - k) (only S- for the rate and the entropies, only S+
for counts and the frame inter-arrival: the other way costs no credit).  An anomaly is raised when either reaches ``h``
(one clipped outlier can never do it alone: it takes h / (clip - k) intervals
at least) and cleared when every chart is back under h / 2 and no periodic
component remains; the sums are capped at h + ``cap_over`` so that clearing
takes a bounded time after the fault ends.  While nothing is raised the
baseline follows slow changes (an EWMA with weight ``adapt``).  The periodic
test is Fisher's g on the last ``period_window`` values of each charted
feature, significant when its p-value is below ``period_p`` and the component's
amplitude is at least ``period_amplitude`` baseline standard deviations.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "AnomalyModel",
    "AnomalySettings",
    "AnomalyTracker",
    "AnomalyVerdict",
    "FeatureChart",
    "NodeCounters",
    "node_features",
    "source_features",
]

#: Features of a source per interval, in the order they are shown.
SOURCE_FEATURES = ("rate", "h_min", "h_collision", "rct_near", "apt_near")
#: Features of a node per interval.
NODE_FEATURES = ("frame_interval", "drops")
_COUNT_FEATURES = {"rct_near", "apt_near", "drops"}
# Which way a feature may move before it counts: entropy that rises or near-cutoff
# events that vanish cost no credit, so those sides are not charted.
_ONLY_LOW = {"rate", "h_min", "h_collision"}
_ONLY_HIGH = _COUNT_FEATURES | {"frame_interval"}
_CREEPING_S = 30.0  # a change that took this long to raise an anomaly is a drift
_MIN_ENTROPY_SAMPLES = 64  # fewer samples in an interval: no entropy features for it


@dataclass(frozen=True)
class AnomalySettings:
    """The charts' parameters (see the module docstring); defaults are what docs/pipeline.md measured."""

    warmup: int = 60  # intervals that learn the baseline
    k: float = 0.5  # CUSUM allowance, in baseline standard deviations
    h: float = 12.0  # CUSUM decision interval
    clip: float = 4.0  # |z| is clipped here: one outlier never raises an anomaly alone
    cap_over: float = 6.0  # the sums stop at h + cap_over: bounded time to clear
    adapt: float = 1.0 / 1800  # EWMA weight of the baseline while nothing is raised
    max_autocorrelation: float = 0.3  # warm-up lag-1 autocorrelation above this: feature not charted
    period_window: int = 60  # intervals the periodogram looks at
    period_p: float = 1e-7  # Fisher's g p-value that counts as periodic
    period_amplitude: float = 2.0  # and the component's amplitude, in baseline sds
    relearn_after: float = 600.0  # an anomaly raised this long (s) is taken as the new normal: learn again

    def __post_init__(self) -> None:
        if self.warmup < 10:
            raise ValueError("warmup must be at least 10 intervals")
        if self.h <= self.clip - self.k:
            raise ValueError("h must exceed clip - k, or one outlier could raise an anomaly")


# -- features ---------------------------------------------------------------


def source_features(
    samples: np.ndarray,
    elapsed: float,
    bits_per_sample: int,
    *,
    rct_cutoff: int,
    apt_cutoff: int,
    apt_window: int,
    declared_h: float,
    count: int | None = None,
) -> dict[str, float]:
    """One interval's features of a source from its (masked, uint8) samples; NaN where undefined.

    ``count`` is how many samples the interval had when ``samples`` holds only
    the last of them (the engine's window is shorter than a fast source's second).
    """
    data = np.ascontiguousarray(samples, dtype=np.uint8)
    n = int(data.size)
    out = dict.fromkeys(SOURCE_FEATURES, math.nan)
    total = n if count is None else count
    out["rate"] = total / elapsed if elapsed > 0 else 0.0
    if n < _MIN_ENTROPY_SAMPLES:
        return out
    counts = np.bincount(data, minlength=1 << bits_per_sample).astype(np.float64)
    p = counts / n
    out["h_min"] = -math.log2(float(p.max()))
    out["h_collision"] = -math.log2(float((p * p).sum()))
    # RCT: runs more than halfway to the cutoff (at least 2 long).
    changes = np.flatnonzero(data[1:] != data[:-1])
    runs = np.diff(np.concatenate(([-1], changes, [n - 1])))
    out["rct_near"] = float(np.count_nonzero(runs >= max(2, math.ceil(rct_cutoff / 2))))
    # APT: windows whose first value came more than halfway from its expected count to the cutoff.
    blocks = n // apt_window
    if blocks:
        windows = data[: blocks * apt_window].reshape(blocks, apt_window)
        hits = np.count_nonzero(windows == windows[:, :1], axis=1)
        expected = apt_window * 2.0 ** (-declared_h)
        out["apt_near"] = float(np.count_nonzero(hits >= (expected + apt_cutoff) / 2))
    else:
        out["apt_near"] = 0.0
    return out


@dataclass(frozen=True)
class NodeCounters:
    """A node's running counters as its connection reports them."""

    frames: int
    drops: int


def node_counters(details: Mapping[str, object]) -> NodeCounters | None:
    """The counters of a node source's details() (None for other sources)."""
    frames = details.get("frames")
    if not isinstance(frames, int):
        return None
    drops = details.get("drops")
    dropped = sum(v for v in drops.values() if isinstance(v, int)) if isinstance(drops, dict) else 0
    for key in ("lost_frames", "queue_overflows"):
        value = details.get(key)
        if isinstance(value, int):
            dropped += value
    return NodeCounters(frames, dropped)


def node_features(previous: NodeCounters, current: NodeCounters, elapsed: float) -> dict[str, float]:
    """One interval's features of a node: mean frame inter-arrival (s) and drops."""
    frames = current.frames - previous.frames
    interval = elapsed / frames if frames > 0 else elapsed
    return {"frame_interval": interval, "drops": float(max(0, current.drops - previous.drops))}


# -- the model ---------------------------------------------------------------


def _floor(feature: str, mean: float) -> float:
    """The smallest standard deviation a feature's baseline may have."""
    if feature in _COUNT_FEATURES:
        return math.sqrt(max(mean, 1.0))
    if feature == "rate":
        return 0.20 * abs(mean) + 1.0
    if feature == "frame_interval":
        return 0.05 * abs(mean) + 1e-3
    return 0.08 * abs(mean) + 0.005  # entropies, bits per sample


def _stationary(x: np.ndarray, max_autocorrelation: float) -> bool:
    """Whether a warm-up series looks like noise about a level, not a wandering one.

    Two checks: the lag-1 autocorrelation, and whether the two halves' means
    differ by more than four standard errors (a walk that wrapped around).
    """
    centred = x - x.mean()
    denominator = float((centred * centred).sum())
    if denominator <= 0:
        return True
    r1 = float((centred[1:] * centred[:-1]).sum()) / denominator
    half = x.size // 2
    sd = float(x.std())
    shift = abs(float(x[:half].mean()) - float(x[half:].mean())) / (sd * math.sqrt(2.0 / half))
    return r1 <= max_autocorrelation and shift <= 4.0


class FeatureChart:
    """A robust two-sided CUSUM chart of one feature, with its warm-up."""

    def __init__(self, feature: str, settings: AnomalySettings) -> None:
        self.feature = feature
        self.settings = settings
        self.learning: list[float] | None = []
        self.learned = False  # a warm-up has ended (charted or not)
        self.charted = True
        self.mean = math.nan
        self.sd = math.nan
        self.s_hi = 0.0
        self.s_lo = 0.0
        self.recent = math.nan  # EWMA of the latest values, for the reason text
        self._hi_since: float | None = None
        self._lo_since: float | None = None
        self.values: deque[float] = deque(maxlen=settings.period_window)

    @property
    def ready(self) -> bool:
        """The first warm-up is over."""
        return self.learned

    def observe(self, value: float, now: float, *, adapt: bool) -> None:
        """Add one interval's value (NaN: skipped).

        ``adapt`` is False while an anomaly is raised: the baseline stays put and
        the sums come down with twice the allowance, so that a baseline learnt a
        little off cannot keep an anomaly raised long after its cause ended.
        """
        if math.isnan(value):
            return
        self.recent = value if math.isnan(self.recent) else 0.5 * self.recent + 0.5 * value
        if self.learning is not None:
            self.learning.append(value)
            if len(self.learning) >= self.settings.warmup:
                self._learn(self.learning)
                self.learned = True
                # not stationary: try again on the next warm-up's worth of values
                self.learning = None if self.charted else []
            return
        if not self.charted:
            return
        s = self.settings
        z = max(-s.clip, min(s.clip, (value - self.mean) / self.sd))
        cap = s.h + s.cap_over
        k = s.k if adapt else 2 * s.k
        if self.feature not in _ONLY_LOW:
            self.s_hi = min(cap, max(0.0, self.s_hi + z - k))
        if self.feature not in _ONLY_HIGH:
            self.s_lo = min(cap, max(0.0, self.s_lo - z - k))
        self._hi_since = None if self.s_hi == 0 else (self._hi_since if self._hi_since is not None else now)
        self._lo_since = None if self.s_lo == 0 else (self._lo_since if self._lo_since is not None else now)
        self.values.append(z)
        if adapt and max(self.s_hi, self.s_lo) < s.h / 2:
            step = max(-2.0, min(2.0, z)) * self.sd
            self.mean += s.adapt * step
            spread = (1 - s.adapt) * self.sd + s.adapt * min(abs(step), 3 * self.sd) * 1.2533
            self.sd = max(_floor(self.feature, self.mean), spread)

    def _learn(self, values: list[float]) -> None:
        x = np.asarray(values, dtype=np.float64)
        median = float(np.median(x))
        spread = max(1.4826 * float(np.median(np.abs(x - median))), _floor(self.feature, median))
        w = np.clip(x, median - 5 * spread, median + 5 * spread)
        self.mean = float(w.mean())
        self.sd = max(float(w.std()), _floor(self.feature, self.mean))
        self.charted = _stationary(w, self.settings.max_autocorrelation) or float(w.std()) <= _floor(
            self.feature, self.mean
        )

    @property
    def score(self) -> float:
        """max(S+, S-) / h: 1 or more is out of control."""
        return max(self.s_hi, self.s_lo) / self.settings.h if self.ready and self.charted else 0.0

    def since(self) -> float | None:
        """When the larger sum last left 0."""
        return self._hi_since if self.s_hi >= self.s_lo else self._lo_since


@dataclass(frozen=True)
class AnomalyVerdict:
    """One source's (or node's) state after an interval."""

    score: float  # 1 or more: out of control
    active: bool  # an anomaly is raised
    reason: str  # what moved, in words ("" when nothing did)
    state: str  # learning / watching / anomalous
    changed: bool  # raised or cleared by this interval


_UNITS = {"rate": "/s", "h_min": " bits", "h_collision": " bits", "frame_interval": " s"}
_NAMES = {
    "rate": "rate",
    "h_min": "min-entropy",
    "h_collision": "collision entropy",
    "rct_near": "near-cutoff RCT runs",
    "apt_near": "near-cutoff APT windows",
    "frame_interval": "frame inter-arrival",
    "drops": "dropped frames",
}


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _span(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def chart_reason(chart: FeatureChart, now: float) -> str:
    """A line saying how a chart's feature moved from its baseline."""
    name, unit = _NAMES.get(chart.feature, chart.feature), _UNITS.get(chart.feature, "")
    value, base = chart.recent, chart.mean
    since = chart.since()
    over = f" over {_span(now - since)}" if since is not None else ""
    if chart.feature in _COUNT_FEATURES:
        return f"{name}: {value:.1f} per interval against {base:.2f} in its baseline"
    direction = "fell" if value < base else "rose"
    relative = f"{abs(value - base) / abs(base) * 100:.0f} % " if base else ""
    creeping = since is not None and now - since >= _CREEPING_S
    prefix = "bias drifting: " if chart.feature in ("h_min", "h_collision") and value < base and creeping else ""
    return (
        f"{prefix}{name} {direction} {relative}{'below' if value < base else 'above'} its baseline "
        f"({_num(value)}{unit} against {_num(base)}{unit}){over}"
    )


def fisher_g(values: np.ndarray) -> tuple[float, float, float]:
    """Fisher's g test for one periodic component: (p-value, period in intervals, amplitude).

    The series is detrended first and only periods that fit at least three
    times in it count, so that a ramp or a step is not taken for a period.
    """
    n = values.size
    t = np.arange(n, dtype=np.float64)
    slope, intercept = np.polyfit(t, values, 1)
    x = values - (slope * t + intercept)
    spectrum = np.abs(np.fft.rfft(x)) ** 2 / n
    m = (n - 1) // 2  # Fourier frequencies strictly between 0 and Nyquist
    ordinates = spectrum[1 : m + 1]
    total = float(ordinates.sum())
    if m < 4 or total <= 0:
        return 1.0, math.nan, 0.0
    k = 2 + int(np.argmax(ordinates[2:]))  # frequency 3 and up: three cycles or more
    g = float(ordinates[k]) / total
    p = min(1.0, m * (1.0 - g) ** (m - 1))
    # refine the period between neighbouring Fourier frequencies (zero-padded transform)
    fine = np.abs(np.fft.rfft(x, 16 * n)) ** 2
    lo = 16 * (k + 1) - 8  # the Fourier frequency k + 1 sits at 16 (k + 1) in the padded one
    peak = lo + int(np.argmax(fine[lo : lo + 17]))
    period = 16 * n / peak
    amplitude = 2.0 * math.sqrt(float(ordinates[k]) / n)
    return p, period, amplitude


class AnomalyModel:
    """The charts of one source or node and the periodic test over them."""

    def __init__(self, features: tuple[str, ...], settings: AnomalySettings | None = None) -> None:
        self.settings = settings or AnomalySettings()
        self.charts = {f: FeatureChart(f, self.settings) for f in features}
        self.active = False
        self.reason = ""
        self.score = 0.0
        self.periodic: tuple[str, float] | None = None  # (feature, period in intervals)
        self.active_since: float | None = None

    @property
    def state(self) -> str:
        """learning / watching / anomalous."""
        if self.active:
            return "anomalous"
        return "watching" if all(c.ready for c in self.charts.values()) else "learning"

    def observe(self, features: Mapping[str, float], now: float, interval: float = 1.0) -> AnomalyVerdict:
        """Score one interval's features (``now`` in seconds, ``interval`` the tick length).

        An anomaly raised for ``relearn_after`` seconds is cleared and every
        chart learns its baseline again: the source has a new normal (its
        credit still follows its online estimate), and it is not held forever.
        """
        s = self.settings
        if self.active and self.active_since is not None and now - self.active_since >= s.relearn_after:
            self.charts = {f: FeatureChart(f, s) for f in self.charts}
            self.active, self.active_since, self.periodic, self.score = False, None, None, 0.0
            self.reason = ""
            minutes = s.relearn_after / 60
            return AnomalyVerdict(0.0, False, f"learning a new baseline after {minutes:g} min", self.state, True)
        for name, chart in self.charts.items():
            chart.observe(float(features.get(name, math.nan)), now, adapt=not self.active)
        worst = max(self.charts.values(), key=lambda c: c.score)
        score = worst.score
        periodic = self._periodic(threshold=s.period_p if not self.active else 1e-3)
        if periodic is not None:
            score = max(score, 1.0)
        was = self.active
        if not self.active and (worst.score >= 1.0 or periodic is not None):
            self.active, self.active_since = True, now
        elif self.active and worst.score < 0.5 and periodic is None:
            self.active, self.active_since = False, None
        if self.active:
            if periodic is not None:
                feature, period = periodic
                self.reason = f"periodic component at {period * interval:.1f} s in {_NAMES.get(feature, feature)}"
            elif worst.score >= 0.5:
                self.reason = chart_reason(worst, now)
        else:
            self.reason = chart_reason(worst, now) if worst.score >= 0.5 else ""
        self.periodic = periodic
        self.score = score
        return AnomalyVerdict(score, self.active, self.reason, self.state, self.active != was)

    def _periodic(self, threshold: float) -> tuple[str, float] | None:
        s = self.settings
        for name, chart in self.charts.items():
            if not chart.charted or len(chart.values) < s.period_window or chart.feature in _COUNT_FEATURES:
                continue
            z = np.fromiter(chart.values, dtype=np.float64)
            p, period, amplitude = fisher_g(z)
            if p < threshold and amplitude >= s.period_amplitude:
                return name, period
        return None


@dataclass
class AnomalyTracker:
    """Models per source and per node, created on first sight; what the engine's tick calls."""

    settings: AnomalySettings = field(default_factory=AnomalySettings)
    models: dict[str, AnomalyModel] = field(default_factory=dict)

    def observe(
        self, key: str, features: Mapping[str, float], now: float, *, node: bool = False, interval: float = 1.0
    ) -> AnomalyVerdict:
        """Score one interval of source (or node) ``key``."""
        model = self.models.get(key)
        if model is None:
            model = self.models[key] = AnomalyModel(NODE_FEATURES if node else SOURCE_FEATURES, self.settings)
        return model.observe(features, now, interval)
