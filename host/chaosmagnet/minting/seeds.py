"""Where minting gets its seeds: one interface, three ways to reach the pool.

* ``EngineSeedSource``: an Engine running in this process (``mint`` with no
  ``chaos-host run`` around starts the local sources and uses this).
* ``ControlSeedSource`` (chaosmagnet.control): the pool of a ``chaos-host run``
  in another process, over the local control socket.
* ``PoolSeedSource``: a bare EntropyPool (benchmarks, tests, embedding).

Each waits until the pool holds the required credited bits from healthy
sources, and until the key quorum (chaosmagnet.quorum: k independent
sources, [mint] quorum in chaos.toml) is met, then draws, and returns the seed with its provenance: credit drawn
per source, each source's state and assessed entropy, the pool fill and a
pool commitment (its own domain; never the state).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chaosmagnet.errors import PoolError
from chaosmagnet.quorum import Quorum, QuorumStatus, quorum_from_config

if TYPE_CHECKING:
    from chaosmagnet.engine import Engine
    from chaosmagnet.pool import EntropyPool, PoolDraw

ProgressCallback = Callable[[float, float], None]  # (credited bits so far, bits needed)


@dataclass(frozen=True)
class SeedDraw:
    """A seed drawn from the pool, and where its credit came from.  ``data`` is never shown."""

    data: bytes = field(repr=False)
    required_bits: float
    debited: dict[str, float]  # credited bits drawn, per source
    debited_total: float
    fill_before: float  # pool fill (0..1) before the draw
    commitment: str  # pool commitment (hex), separate domain
    sources: dict[str, dict[str, Any]]  # per source: state, h_assessed
    via: str  # "engine", "control-socket" or "pool"
    quorum: dict[str, Any] | None = None  # which independent sources met the quorum
    dependence: list[dict[str, Any]] | None = None  # dependent groups credited once, and why

    def __repr__(self) -> str:
        return (
            f"SeedDraw({len(self.data)} bytes, via={self.via}, "
            f"debited={self.debited_total:.1f} bits, data=<hidden>)"
        )

    __str__ = __repr__

    @property
    def healthy_debited_total(self) -> float:
        """Credited bits drawn from sources whose state was ``ok`` at draw time."""
        return sum(
            bits
            for name, bits in self.debited.items()
            if str(self.sources.get(name, {}).get("state", "unknown")) == "ok"
        )

    def provenance(self) -> dict[str, Any]:
        """The JSON-ready provenance of this draw (everything but the seed)."""
        names = sorted(set(self.debited) | set(self.sources))
        return {
            "bytes": len(self.data),
            "required_bits": _r(self.required_bits),
            "credited_bits_drawn": _r(self.debited_total),
            "pool_fill_before": _r(self.fill_before),
            "pool_commitment": self.commitment,
            "via": self.via,
            **({"quorum": self.quorum} if self.quorum is not None else {}),
            **({"dependence": {"groups": self.dependence}} if self.dependence is not None else {}),
            "sources": {
                name: {
                    "credited_bits": _r(self.debited.get(name, 0.0)),
                    "h_assessed": _r_opt(self.sources.get(name, {}).get("h_assessed")),
                    "state": str(self.sources.get(name, {}).get("state", "unknown")),
                }
                for name in names
            },
        }


def _r(value: float) -> float:
    return round(float(value), 3)


def _r_opt(value: float | None) -> float | None:
    return None if value is None else _r(value)


def seed_draw_from_pool(
    draw: PoolDraw,
    required_bits: float,
    states: Mapping[str, Mapping[str, Any]],
    via: str,
    quorum: QuorumStatus | None = None,
    dependence: list[dict[str, Any]] | None = None,
) -> SeedDraw:
    """Wrap a PoolDraw with the per-source states (and dependent groups) taken at draw time."""
    sources = {
        name: {"state": info.get("state"), "h_assessed": info.get("h_assessed")}
        for name, info in states.items()
    }
    return SeedDraw(
        data=draw.data,
        required_bits=required_bits,
        debited=dict(draw.debited),
        debited_total=float(getattr(draw, "debited_total", sum(draw.debited.values()))),
        fill_before=float(draw.fill_before),
        commitment=draw.commitment,
        sources=sources,
        via=via,
        quorum=quorum.to_json() if quorum is not None else None,
        dependence=dependence,
    )


class SeedSource(ABC):
    """Something that can hand out pool seeds once enough credit is there."""

    via: str = ""
    #: Called with a one-line reason while a draw waits on the quorum (the CLI prints it).
    on_waiting: Callable[[str], None] | None = None

    @abstractmethod
    async def draw(
        self,
        n_bytes: int,
        *,
        required_bits: float,
        purpose: bytes,
        timeout: float,
        on_progress: ProgressCallback | None = None,
    ) -> SeedDraw:
        """Wait for ``required_bits`` healthy credited bits (PoolError on timeout or
        when no source is healthy), then draw ``n_bytes`` for ``purpose``."""


class EngineSeedSource(SeedSource):
    """Seeds from an Engine running in this process."""

    via = "engine"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def draw(
        self,
        n_bytes: int,
        *,
        required_bits: float,
        purpose: bytes,
        timeout: float,
        on_progress: ProgressCallback | None = None,
    ) -> SeedDraw:
        return await draw_from_engine(
            self.engine,
            n_bytes,
            required_bits,
            purpose,
            timeout,
            on_progress,
            self.via,
            on_waiting=self.on_waiting,
        )


async def draw_from_engine(
    engine: Engine,
    n_bytes: int,
    required_bits: float,
    purpose: bytes,
    timeout: float,
    on_progress: ProgressCallback | None,
    via: str,
    *,
    on_waiting: Callable[[str], None] | None = None,
) -> SeedDraw:
    """Wait on ``engine`` for credit and the quorum of the engine's config, then draw
    (the local path and the control server)."""
    quorum = quorum_from_config(engine.config.extra)
    deadline = time.monotonic() + timeout
    while True:
        remaining = max(0.0, deadline - time.monotonic())
        await engine.wait_for_credit(
            required_bits, remaining, on_progress, quorum=quorum, on_waiting=on_waiting
        )
        # No await between the check and the draw: nothing else runs on this loop meanwhile.
        status = engine.with_dependence(quorum).status(engine.healthy_credit_by_source(fresh=True), required_bits)
        if engine.healthy_credited_bits() >= required_bits and status.met:
            states = engine.source_states()
            groups = engine.dependence.provenance()
            draw = engine.pool.draw(n_bytes, purpose=purpose)
            return seed_draw_from_pool(draw, required_bits, states, via, status, groups)


class PoolSeedSource(SeedSource):
    """Seeds from a bare EntropyPool; ``states`` gives each source's state (default ok).

    Credit from a source whose state is not ``ok`` does not count towards the
    threshold, as in the engine; the quorum (default: 2 independent sources)
    applies as there.
    """

    via = "pool"

    def __init__(
        self,
        pool: EntropyPool,
        states: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        poll_interval: float = 0.05,
        quorum: Quorum | None = None,
    ) -> None:
        self.pool = pool
        self.quorum = quorum if quorum is not None else Quorum()
        self.states: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (states or {}).items()}
        self.poll_interval = poll_interval

    def _state(self, name: str) -> str:
        return str(self.states.get(name, {}).get("state", "ok"))

    def healthy_credited_bits(self) -> float:
        """Credited bits from sources whose state is ok."""
        return sum(b for n, b in self.pool.credited_by_source().items() if self._state(n) == "ok")

    def quorum_status(self, required_bits: float) -> QuorumStatus:
        """The quorum's verdict on the healthy credit absorbed since the last draw."""
        fresh = {n: b for n, b in self.pool.fresh_credit_by_source().items() if self._state(n) == "ok"}
        return self.quorum.status(fresh, required_bits)

    async def draw(
        self,
        n_bytes: int,
        *,
        required_bits: float,
        purpose: bytes,
        timeout: float,
        on_progress: ProgressCallback | None = None,
    ) -> SeedDraw:
        if required_bits > self.pool.capacity_bits:
            raise PoolError(
                f"{required_bits:.0f} credited bits requested but the pool holds "
                f"at most {self.pool.capacity_bits}"
            )
        deadline = time.monotonic() + timeout
        said = ""
        while True:
            pooled = self.healthy_credited_bits()
            status = self.quorum_status(required_bits)
            have = pooled if status.met else min(pooled, status.progress_bits)
            if on_progress is not None:
                on_progress(min(have, required_bits), required_bits)
            if pooled >= required_bits and status.met:
                break
            if pooled >= required_bits and status.reason != said:
                said = status.reason
                if self.on_waiting is not None:
                    self.on_waiting(said)
            if self.states and all(self._state(n) != "ok" for n in self.states):
                raise PoolError(
                    "no healthy source: every source is quarantined, failed, stopped or unavailable"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                why = "" if status.met else f"; {status.reason}"
                raise PoolError(
                    f"timed out after {timeout:g} s with {have:.0f} of "
                    f"{required_bits:.0f} credited bits{why}"
                )
            import asyncio  # loaded with the event loop that runs this, not on import

            await asyncio.sleep(min(self.poll_interval, remaining))
        names = set(self.pool.credited_by_source()) | set(self.states)
        states = {
            n: {"state": self._state(n), "h_assessed": self.states.get(n, {}).get("h_assessed")}
            for n in names
        }
        draw = self.pool.draw(n_bytes, purpose=purpose)
        return seed_draw_from_pool(draw, required_bits, states, self.via, status)
