"""The aggregator: runs sources, health-tests, estimates, credits and pools.

One asyncio task per source pulls raw batches and hands each to ``ingest``:

    batch -> RCT/APT (C) -> quarantine policy -> online estimates -> credit -> pool

Out of band, once a tick, the anomaly hook (``_anomaly_tick``) turns each
source's last interval into features, scores them (chaosmagnet.anomaly) and
holds a source with a sustained anomaly in quarantine through the same
policy a health failure goes through, until the anomaly clears.

Credit per sample = min(declared rate, online MCV estimate, last full
SP 800-90B assessment), and 0 while the source is quarantined or failed, or
when it is conditioned and the config grants it nothing.  A failed source is
stopped until an operator clears it.  One source's error never stops the
others.  The engine is sans-UI: the CLI, the dashboard and the control socket
all read ``snapshot()`` and call the same methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chaosmagnet.anomaly import (
    AnomalySettings,
    AnomalyTracker,
    NodeCounters,
    node_counters,
    node_features,
    source_features,
)
from chaosmagnet.assessment.background import BackgroundAssessor
from chaosmagnet.config import Config
from chaosmagnet.dependence import DependenceSettings, DependenceTracker
from chaosmagnet.errors import PoolError, SourceError, UsageError, escape_device_text
from chaosmagnet.estimates import OnlineEstimator
from chaosmagnet.eventlog import JsonLineLog
from chaosmagnet.health import HealthMonitor, HealthPolicy, PolicySettings, SourceState
from chaosmagnet.ingest import ingest_batch
from chaosmagnet.pool import EntropyPool
from chaosmagnet.quorum import Quorum, QuorumStatus
from chaosmagnet.sources.base import Source

EventListener = Callable[[str, dict[str, Any]], None]

# Engine-level states beside the health states ok / quarantined / failed.
UNAVAILABLE = "unavailable"
STOPPED = "stopped"  # switched off by the user
ERROR = "error"  # the source raised while running
ENDED = "ended"  # the source finished by itself (end of a file)
WAITING = "waiting"  # started, but its device link is down (a node not linked): no credit
# The hot path compares plain strings: an Enum's .value is a descriptor call each time.
_OK = SourceState.OK.value
_STATE_VALUE = {state: state.value for state in SourceState}
_HEALTH_STATUSES = frozenset([*_STATE_VALUE.values(), "starting"])  # statuses a batch's health sets


@dataclass
class SourceRuntime:
    """Everything the engine tracks for one source."""

    source: Source
    declared_h: float
    credit_h_conditioned: float
    monitor: HealthMonitor
    policy: HealthPolicy
    estimator: OnlineEstimator
    enabled: bool = True
    status: str = "starting"  # ok / quarantined / failed / unavailable / stopped / error / waiting
    reason: str = ""
    samples: int = 0
    credited_bits: float = 0.0  # all credit ever given to this source
    credit_h: float = 0.0  # credit per sample applied to the last batch
    h_assessed: float | None = None
    rate: float = 0.0  # samples/s over the last tick
    task: asyncio.Task[None] | None = None
    _tick_samples: int = 0
    _interval_samples: int = 0  # samples in the last tick's interval (the anomaly hook's input)
    anomaly_active: bool = False
    anomaly: dict[str, Any] = field(
        default_factory=lambda: {"state": "off", "score": 0.0, "reason": "", "active": False}
    )
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.source.info.name


class Engine:
    """Runs a set of sources into one pool."""

    HISTORY = 600  # per-second points kept for charts

    def __init__(
        self,
        sources: list[Source],
        config: Config | None = None,
        *,
        health_log: JsonLineLog | None = None,
        clock: Callable[[], float] = time.monotonic,
        assess: bool = False,
        dependence: DependenceSettings | None = None,
    ) -> None:
        self.config = config or Config()
        self.assessor: BackgroundAssessor | None = None
        if assess and self.config.assessment_enabled:
            self.assessor = BackgroundAssessor(
                self.set_assessed,
                samples_needed=self.config.assessment_samples,
                reassess_seconds=self.config.reassess_seconds,
            )
        self.pool = EntropyPool(self.config.capacity_bits)
        self.health_log = health_log
        self._clock = clock
        self._listeners: list[EventListener] = []
        self._runtimes: dict[str, SourceRuntime] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._started_at = clock()
        self._credit_event: asyncio.Event | None = None
        self._output_status: dict[str, Callable[[], dict[str, Any]]] = {}
        self._tick_errors: set[str] = set()
        # Cross-source dependence (chaosmagnet.dependence): fed per batch, tested on the tick.
        self.dependence = DependenceTracker(dependence or DependenceSettings())
        self.anomalies: AnomalyTracker | None = None
        if self.config.anomaly_enabled:
            self.anomalies = AnomalyTracker(AnomalySettings(warmup=self.config.anomaly_warmup))
        self._node_counters: dict[str, NodeCounters] = {}
        for source in sources:
            self._add(source)

    # -- set-up -----------------------------------------------------------
    def _add(self, source: Source) -> SourceRuntime:
        info = source.info
        if info.name in self._runtimes:
            raise UsageError(f"source {info.name!r} given twice")
        sc = self.config.source(info.name)
        declared = min(sc.declared_h or info.declared_h, float(info.bits_per_sample))
        runtime = SourceRuntime(
            source=source,
            declared_h=declared,
            credit_h_conditioned=sc.credit_h or 0.0,
            monitor=HealthMonitor(declared, info.bits_per_sample, self.config.alpha),
            policy=HealthPolicy(
                PolicySettings(
                    recovery_samples=self.config.recovery_samples,
                    max_failures=self.config.max_failures,
                    failure_period=self.config.failure_period,
                ),
                clock=self._clock,
            ),
            estimator=OnlineEstimator(info.bits_per_sample, self.config.window),
        )
        if self.anomalies is not None:
            runtime.anomaly["state"] = "learning"
        self._runtimes[info.name] = runtime
        return runtime

    async def add_source(self, source: Source) -> None:
        """Add and start a source while the engine runs (nodes appearing)."""
        runtime = self._add(source)
        await self._start_runtime(runtime)

    def add_output_status(self, name: str, provider: Callable[[], dict[str, Any]]) -> None:
        """Show provider()'s counters under snapshot()["outputs"][name] (the kernel feed...)."""
        self._output_status[name] = provider

    def remove_output_status(self, name: str) -> None:
        """Stop showing an output's counters."""
        self._output_status.pop(name, None)

    def reload(self, config: Config) -> list[str]:
        """Apply a re-read chaos.toml to the running sources (SIGHUP); returns what changed.

        Declared rates and configured credit take effect at once (new health
        cutoffs restart the health counters of that source); a polled
        source's rate changes from its next batch.  Which sources run and the
        pool's capacity stay as started: those need a restart.
        """
        changes: list[str] = []
        for runtime in self._runtimes.values():
            info = runtime.source.info
            sc = config.source(info.name)
            declared = min(sc.declared_h or info.declared_h, float(info.bits_per_sample))
            if declared != runtime.declared_h:
                changes.append(f"{info.name}: declared H {runtime.declared_h:g} -> {declared:g}")
                runtime.declared_h = declared
                runtime.monitor = HealthMonitor(declared, info.bits_per_sample, config.alpha)
            credit = sc.credit_h or 0.0
            if credit != runtime.credit_h_conditioned:
                changes.append(f"{info.name}: credit_h {runtime.credit_h_conditioned:g} -> {credit:g}")
                runtime.credit_h_conditioned = credit
            rate = getattr(runtime.source, "rate", None)
            if sc.rate is not None and rate is not None and float(sc.rate) != rate:
                changes.append(f"{info.name}: rate {rate:g} -> {float(sc.rate):g}")
                runtime.source.rate = float(sc.rate)  # type: ignore[attr-defined]
        self.config = config
        self._emit("config_reloaded", path=str(config.path or ""), changes=changes)
        return changes

    def add_listener(self, listener: EventListener) -> None:
        """Call listener(event, fields) on health failures and state changes."""
        self._listeners.append(listener)

    def _emit(self, event: str, **fields: Any) -> None:
        if self.health_log is not None:
            self.health_log.write(event, **fields)
        for listener in self._listeners:
            listener(event, fields)

    # -- running ----------------------------------------------------------
    async def start(self) -> None:
        """Start every source that is available; the others are marked unavailable."""
        self._credit_event = asyncio.Event()
        for runtime in self._runtimes.values():
            await self._start_runtime(runtime)
        self._ticker = asyncio.create_task(self._tick_loop(), name="engine-ticker")

    async def _start_runtime(self, runtime: SourceRuntime) -> None:
        availability = runtime.source.availability()
        if not availability.available:
            self._set_status(runtime, UNAVAILABLE, availability.reason)
            return
        try:
            await runtime.source.start()
        except SourceError as exc:
            self._set_status(runtime, UNAVAILABLE, str(exc))
            return
        except OSError as exc:
            self._set_status(runtime, UNAVAILABLE, f"{type(exc).__name__}: {exc}")
            return
        runtime.task = asyncio.create_task(self._pump(runtime), name=f"source:{runtime.name}")
        waiting = runtime.source.waiting_reason()
        if waiting is not None and runtime.policy.state is SourceState.OK:
            self._set_status(runtime, WAITING, waiting)  # not "ok" first: it is not linked yet
        else:
            self._set_status(runtime, runtime.policy.state.value)

    def _sync_waiting(self, runtime: SourceRuntime) -> None:
        """A healthy running source whose link is down is ``waiting``; back to ok once it is up."""
        if runtime.task is None or runtime.status not in (_OK, WAITING):
            return
        reason = runtime.source.waiting_reason()
        if reason is not None:
            self._set_status(runtime, WAITING, reason)
        elif runtime.status == WAITING:
            self._set_status(runtime, runtime.policy.state.value)

    async def _pump(self, runtime: SourceRuntime) -> None:
        try:
            async for batch in runtime.source.batches():
                self.ingest(runtime.name, batch)
                if runtime.policy.state is SourceState.FAILED:
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # isolation boundary: one broken source never stops the others
            self._set_status(runtime, ERROR, escape_device_text(f"{type(exc).__name__}: {exc}"))
            with contextlib.suppress(Exception):
                await runtime.source.stop()
            return
        if runtime.policy.state is SourceState.FAILED:
            await runtime.source.stop()
        elif runtime.enabled:
            # the source finished by itself (a video file came to its end)
            self._set_status(runtime, ENDED, "the source has no more samples")
            with contextlib.suppress(SourceError, OSError):
                await runtime.source.stop()

    async def stop(self) -> None:
        """Stop every source, pending assessments and the ticker."""
        if self.assessor is not None:
            await self.assessor.stop()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for runtime in self._runtimes.values():
            await self._stop_runtime(runtime)

    async def _stop_runtime(self, runtime: SourceRuntime) -> None:
        task, runtime.task = runtime.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(SourceError, OSError):
            await runtime.source.stop()

    async def set_enabled(self, name: str, enabled: bool) -> None:
        """Switch a source off (stopped, still listed) or back on."""
        runtime = self._runtime(name)
        if enabled == runtime.enabled:
            return
        runtime.enabled = enabled
        if enabled:
            await self._start_runtime(runtime)
        else:
            await self._stop_runtime(runtime)
            self._set_status(runtime, STOPPED, "switched off")

    async def clear(self, name: str) -> None:
        """Operator action: clear a failed source's history and restart it."""
        runtime = self._runtime(name)
        was_failed = runtime.policy.state is SourceState.FAILED
        runtime.policy.clear()
        self._emit("health_cleared", source=name)
        if was_failed and runtime.enabled and runtime.task is None:
            await self._start_runtime(runtime)
        elif runtime.status in (SourceState.QUARANTINED.value, SourceState.FAILED.value):
            self._set_status(runtime, SourceState.OK.value)

    def _runtime(self, name: str) -> SourceRuntime:
        try:
            return self._runtimes[name]
        except KeyError:
            raise UsageError(f"unknown source {name!r}") from None

    def _set_status(self, runtime: SourceRuntime, status: str, reason: str = "") -> None:
        if status != runtime.status:
            previous = runtime.status
            runtime.status = status
            runtime.reason = reason
            if previous != "starting" or status not in ("ok",):
                self._emit("source_state", source=runtime.name, previous=previous, state=status, reason=reason)
        else:
            runtime.reason = reason

    # -- the hot path -----------------------------------------------------
    def ingest(self, name: str, batch: np.ndarray) -> float:
        """Health-test, estimate, credit and pool one batch; return the bits credited."""
        runtime = self._runtimes[name]
        samples = np.ascontiguousarray(batch, dtype=np.uint8)
        if samples.ndim != 1 or samples.size == 0:
            return 0.0
        if runtime.task is not None:
            self._sync_waiting(runtime)
        info = runtime.source.info
        bits = info.bits_per_sample
        # Mask, RCT/APT, window counts and absorb in one C call (chaosmagnet.ingest).
        failures = ingest_batch(self.pool, name, samples, bits, runtime.monitor, runtime.estimator)
        for failure in failures:
            self._emit(
                "health_failure",
                source=name,
                test=failure.test.value,
                cutoff=failure.cutoff,
                count=failure.count,
                sample_index=failure.sample_index,
            )
        policy = runtime.policy
        state = policy.observe(failures, runtime.monitor.samples)
        status = runtime.status
        if status in _HEALTH_STATUSES or (status == WAITING and state is not SourceState.OK):
            self._set_status(runtime, _STATE_VALUE[state], policy.reason)
            status = runtime.status
        n = samples.size
        runtime.samples += n
        if self.assessor is not None:
            if bits < 8:
                samples = samples & ((1 << bits) - 1)
            self.assessor.feed(name, samples, bits)
        creditable = state is SourceState.OK and status != WAITING
        own_rate = self._credit_rate(runtime) if creditable else 0.0
        runtime.credit_h = own_rate * self._dependence_hook(runtime, samples)  # credit once per group
        credit = runtime.credit_h * n
        if credit:  # pool.credit ignores 0 (and refuses a negative credit, as before)
            self.pool.credit(name, credit)
            runtime.credited_bits += credit
            if self._credit_event is not None:
                self._credit_event.set()
        return credit

    # -- credit once: the dependence hook ----------------------------------
    def _dependence_hook(self, runtime: SourceRuntime, samples: np.ndarray) -> float:
        """Hand the batch to the dependence tracker; return the credit factor of the source
        (0 for a member of a dependent group that is not the group's credited member)."""
        info = runtime.source.info
        if not info.conditioned or runtime.credit_h_conditioned > 0:
            self.dependence.observe(runtime.name, samples, self._clock(), info.bits_per_sample)
        return self.dependence.credit_factor(runtime.name)

    def _tick_dependence(self) -> None:
        """Test the scheduled pairs, regroup, and log dependence found or cleared."""
        rates = {
            r.name: self._credit_rate(r) * r.rate
            for r in self._runtimes.values()
            if r.status == SourceState.OK.value
        }
        for event in self.dependence.tick(self._clock(), rates):
            self._emit(
                event.kind,
                sources=[event.result.a, event.result.b],
                group=list(event.group),
                credited_member=self.dependence.credited_member(event.group) if event.group else None,
                reason=event.reason,
                **{k: v for k, v in event.result.to_json().items() if k not in ("sources", "dependent")},
            )

    def with_dependence(self, quorum: Quorum) -> Quorum:
        """The key quorum with the dependent groups found so far joined: one group, one vote."""
        return dataclasses.replace(quorum, joined=tuple(self.dependence.groups()))

    def _credit_rate(self, runtime: SourceRuntime) -> float:
        info = runtime.source.info
        if info.conditioned:
            return min(runtime.credit_h_conditioned, float(info.bits_per_sample))
        estimator = runtime.estimator
        if estimator.samples < self.config.min_samples:
            return 0.0
        h = min(runtime.declared_h, estimator.h_min())
        if runtime.h_assessed is not None:
            h = min(h, runtime.h_assessed)
        return max(0.0, h)

    def set_assessed(self, name: str, h_assessed: float) -> None:
        """Record a full SP 800-90B assessment: credit never exceeds it from now on."""
        runtime = self._runtime(name)
        runtime.h_assessed = float(h_assessed)
        self._emit("assessed", source=name, h_assessed=float(h_assessed))

    # -- credit for consumers -------------------------------------------
    def healthy_credited_bits(self) -> float:
        """Credited bits in the pool from sources whose state is ok."""
        return sum(self.healthy_credit_by_source().values())

    def healthy_credit_by_source(self, *, fresh: bool = False) -> dict[str, float]:
        """Credited bits in the pool per source whose state is ok (fresh: absorbed since the last draw)."""
        ledger = self.pool.fresh_credit_by_source() if fresh else self.pool.credited_by_source()
        return {
            name: bits
            for name, bits in ledger.items()
            if name in self._runtimes and self._runtimes[name].status == SourceState.OK.value
        }

    def any_source_can_credit(self) -> bool:
        """False when every source is quarantined, failed, stopped or unavailable."""
        return any(r.status == SourceState.OK.value for r in self._runtimes.values())

    def sources_that_can_credit(self) -> list[str]:
        """Enabled sources that can earn credit now or later: not conditioned (or granted
        credit_h), and not unavailable, failed, stopped, broken or ended."""
        dead = {UNAVAILABLE, STOPPED, ERROR, ENDED, SourceState.FAILED.value}
        return [
            r.name
            for r in self._runtimes.values()
            if r.enabled
            and r.status not in dead
            and (not r.source.info.conditioned or r.credit_h_conditioned > 0)
        ]

    def _hopeless_wait_message(self) -> str:
        """Why waiting for credit cannot succeed, and which other sources could earn it."""
        from chaosmagnet.sources.registry import sources_that_earn_credit

        why = []
        for r in self._runtimes.values():
            if r.source.info.conditioned and r.credit_h_conditioned <= 0:
                why.append(f"{r.name} is conditioned (credited 0 unless chaos.toml grants credit_h)")
            else:
                why.append(f"{r.name} is {r.status}" + (f" ({r.reason})" if r.reason else ""))
        could = sources_that_earn_credit(self.config, exclude=set(self._runtimes))
        message = "no enabled source can earn credit: " + "; ".join(why or ["no source is enabled"])
        if could:
            message += f". Sources that could: {', '.join(could)} (--source NAME for run and random, or [sources] enabled in chaos.toml)"
        return message

    def _no_credit_hint(self) -> str:
        """Why no credit can come, when only conditioned sources with zero credit run."""
        running = [r for r in self._runtimes.values() if r.status == SourceState.OK.value]
        if running and all(r.source.info.conditioned and r.credit_h_conditioned <= 0 for r in running):
            names = ", ".join(r.name for r in running)
            return f" ({names}: conditioned, so credited 0 unless chaos.toml grants credit_h; add another source)"
        return ""

    async def wait_for_credit(
        self,
        bits: float,
        timeout: float,
        on_progress: Callable[[float, float], None] | None = None,
        *,
        quorum: Quorum | None = None,
        on_waiting: Callable[[str], None] | None = None,
    ) -> QuorumStatus | None:
        """Wait until at least ``bits`` credited bits from healthy sources are pooled.

        With a quorum, also until k independent healthy sources hold their
        share of them (on_waiting(reason) is called each time the reason
        changes); returns the quorum's status when met.
        """
        if bits > self.pool.capacity_bits:
            raise PoolError(f"{bits:.0f} credited bits requested but the pool holds at most {self.pool.capacity_bits}")
        if quorum is not None:
            quorum = self.with_dependence(quorum)
        deadline = self._clock() + timeout
        said = ""
        while True:
            pooled = self.healthy_credited_bits()
            status = quorum.status(self.healthy_credit_by_source(fresh=True), bits) if quorum is not None else None
            have = pooled if status is None or status.met else min(pooled, status.progress_bits)
            if on_progress is not None:
                on_progress(min(have, bits), bits)
            if pooled >= bits and (status is None or status.met):
                return status
            if status is not None and pooled >= bits and status.reason != said:
                said = status.reason  # enough credit, but not from enough independent sources
                if on_waiting is not None:
                    on_waiting(said)
            starting = any(r.status in ("starting", WAITING) for r in self._runtimes.values())
            if not starting and not self.any_source_can_credit():
                raise PoolError("no healthy source: every source is quarantined, failed, stopped or unavailable")
            if not starting and not self.sources_that_can_credit():
                raise PoolError(self._hopeless_wait_message())
            remaining = deadline - self._clock()
            if remaining <= 0:
                why = f"; {status.reason}" if status is not None and not status.met else ""
                raise PoolError(
                    f"timed out after {timeout:g} s with {have:.0f} of {bits:.0f} credited bits"
                    f"{self._no_credit_hint()}{why}"
                )
            await asyncio.sleep(min(0.1, remaining))

    # -- reporting --------------------------------------------------------
    async def _tick_loop(self) -> None:
        last = self._clock()
        while True:
            await asyncio.sleep(1.0)
            now = self._clock()
            for step in self._tick_steps(now - last):
                self._tick_step(step)
                await asyncio.sleep(0)  # frames that arrived meanwhile are read between the steps
            last = now

    def _tick_failed(self, exc: Exception) -> None:
        """Log a failed tick to the health log, once per distinct error (the loop goes on)."""
        text = escape_device_text(f"{type(exc).__name__}: {exc}")[:200]
        if text not in self._tick_errors:
            self._tick_errors.add(text)
            self._emit("tick_error", error=text)

    def tick(self, elapsed: float) -> None:
        """Once a second: rates and the chart history, then the dependence and anomaly hooks."""
        for step in self._tick_steps(elapsed):
            self._tick_step(step)

    def _tick_steps(self, elapsed: float) -> list[Callable[[], None]]:
        """The tick's steps, each on its own: a fault in one is logged and the others still run."""
        steps: list[Callable[[], None]] = [lambda: self._tick_rates(elapsed), self._tick_dependence]
        if self.anomalies is not None and elapsed > 0:
            steps.append(lambda: self._anomaly_tick(elapsed))
        return steps

    def _tick_step(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:  # a fault in one step must not stop rates, links and the others
            self._tick_failed(exc)

    def _tick_rates(self, elapsed: float) -> None:
        """Rates and the chart history."""
        now = time.time()
        for runtime in self._runtimes.values():
            self._sync_waiting(runtime)
            delta = runtime.samples - runtime._tick_samples
            runtime._tick_samples = runtime.samples
            runtime._interval_samples = delta
            runtime.rate = delta / elapsed if elapsed > 0 else 0.0
            est = runtime.estimator.estimates()
            runtime.history.append(
                {"t": now, "h_min": est.h_min, "h_shannon": est.h_shannon, "h_collision": est.h_collision}
            )
            del runtime.history[: -self.HISTORY]

    # -- anomalies (out of band: on the tick, never on the ingest path) ---
    def _anomaly_tick(self, elapsed: float) -> None:
        """Score each running source's last interval (and its node's); hold or release its quarantine."""
        assert self.anomalies is not None
        now = self._clock()
        node_verdicts: dict[str, Any] = {}
        for runtime in self._runtimes.values():
            if runtime.status not in (SourceState.OK.value, SourceState.QUARANTINED.value):
                continue  # not running, failed, or its link is down: nothing to learn from
            info = runtime.source.info
            monitor = runtime.monitor
            count = runtime._interval_samples
            features = source_features(
                runtime.estimator.recent(count),
                elapsed,
                info.bits_per_sample,
                rct_cutoff=monitor.rct_cutoff,
                apt_cutoff=monitor.apt_cutoff,
                apt_window=monitor.apt_window,
                declared_h=runtime.declared_h,
                count=count,
            )
            if not info.steady_rate:
                features["rate"] = math.nan  # its rate follows outside activity: not watched
            verdict = self.anomalies.observe(info.name, features, now, interval=elapsed)
            active, score, reason, state = verdict.active, verdict.score, verdict.reason, verdict.state
            if info.kind == "node":
                node = info.name.rsplit(":", 1)[0]
                if node not in node_verdicts:
                    node_verdicts[node] = self._node_anomaly(node, runtime, elapsed, now)
                nv = node_verdicts[node]
                if nv is not None and (nv.active or nv.score > score):
                    score = max(score, nv.score)
                    if nv.active and not active:
                        reason = f"{node}: {nv.reason}"
                    active = active or nv.active
                    state = "anomalous" if active else state
            self._apply_anomaly(runtime, active, score, reason, state)

    def _node_anomaly(self, node: str, runtime: SourceRuntime, elapsed: float, now: float) -> Any:
        """Score a node's frame inter-arrival and drops once per tick (None until two readings)."""
        assert self.anomalies is not None
        counters = node_counters(runtime.source.details())
        if counters is None:
            return None
        previous = self._node_counters.get(node)
        self._node_counters[node] = counters
        if previous is None or counters.frames < previous.frames:
            return None  # first reading, or the connection's counters started over
        features = node_features(previous, counters, elapsed)
        return self.anomalies.observe(node, features, now, node=True, interval=elapsed)

    def _apply_anomaly(self, runtime: SourceRuntime, active: bool, score: float, reason: str, state: str) -> None:
        """Record a source's anomaly; a raise holds it in quarantine (with its reason), a clear releases it."""
        runtime.anomaly = {"state": state, "score": round(score, 3), "reason": reason, "active": active}
        if active != runtime.anomaly_active:
            runtime.anomaly_active = active
            event = "anomaly_raised" if active else "anomaly_cleared"
            self._emit(event, source=runtime.name, score=score, reason=reason)
        if not self.config.anomaly_quarantine:
            return
        if active:
            runtime.policy.hold(f"anomaly: {reason}")
        else:
            runtime.policy.release()
        self._set_status(runtime, runtime.policy.current().value, runtime.policy.reason)

    def history(self, name: str) -> list[dict[str, float]]:
        """The per-second chart points of one source (t, h_min, h_shannon, h_collision), oldest first.

        A copy, at most HISTORY points; UsageError for an unknown source.
        """
        return [dict(point) for point in self._runtime(name).history]

    def source_states(self) -> dict[str, dict[str, Any]]:
        """Per-source view, keyed by name."""
        return {s["name"]: s for s in self.snapshot()["sources"]}

    def snapshot(self) -> dict[str, Any]:
        """Everything the live view shows, as plain data.  Never the pool state."""
        ledger = self.pool.credited_by_source()
        sources = []
        for runtime in self._runtimes.values():
            self._sync_waiting(runtime)
            info = runtime.source.info
            est = runtime.estimator.estimates()
            sources.append(
                {
                    "name": info.name,
                    "kind": info.kind,
                    "state": runtime.status,
                    "reason": runtime.reason,
                    "enabled": runtime.enabled,
                    "conditioned": info.conditioned,
                    "bits_per_sample": info.bits_per_sample,
                    "declared_h": runtime.declared_h,
                    "samples": runtime.samples,
                    "rate": runtime.rate,
                    "h_shannon": est.h_shannon,
                    "h_min": est.h_min,
                    "h_collision": est.h_collision,
                    "h_assessed": runtime.h_assessed,
                    "assessment_progress": self.assessor.progress(info.name) if self.assessor else None,
                    "credit_h": runtime.credit_h,
                    "credited_bits": runtime.credited_bits,
                    "pool_bits": ledger.get(info.name, 0.0),
                    "rct_failures": runtime.monitor.rct_failures,
                    "apt_failures": runtime.monitor.apt_failures,
                    "rct_cutoff": runtime.monitor.rct_cutoff,
                    "apt_cutoff": runtime.monitor.apt_cutoff,
                    "anomaly": dict(runtime.anomaly),
                    "details": runtime.source.details(),
                    "dependence": self.dependence.source_view(info.name),
                }
            )
        stats = self.pool.stats
        pool = {
            "credited_bits": self.pool.credited_bits,
            "capacity_bits": self.pool.capacity_bits,
            "fill": self.pool.fill,
            "raw_bytes": stats.raw_bytes,
            "raw_bits": stats.raw_bits,
            "credited_total": stats.credited_total,
            "drawn_bits": stats.drawn_bits,
            "output_bytes": stats.output_bytes,
            "extraction_ratio": self.pool.extraction_ratio,
            "fingerprint": self.pool.fingerprint(),
        }
        outputs = {name: provider() for name, provider in self._output_status.items()}
        return {
            "time": time.time(),
            "uptime": self._clock() - self._started_at,
            "sources": sources,
            "pool": pool,
            "outputs": outputs,
            "dependence": self.dependence.snapshot(),
        }
