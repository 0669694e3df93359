"""What a health failure does to a source: the quarantine state machine.

ok --failure--> quarantined --recovery window passed--> ok
any --max_failures within failure_period--> failed (until restart or clear)
ok --hold(reason)--> quarantined --release()--> ok

A hold is an out-of-band quarantine (a sustained anomaly, chaosmagnet.anomaly):
it quarantines an otherwise ok source, with its own reason, until released;
it never counts towards failed.

A quarantined or failed source is credited nothing; whether its samples are
still mixed is the engine's business.  The clock is injected so tests never
sleep.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from chaosmagnet.health.monitor import HealthFailure


class SourceState(str, enum.Enum):
    """Health state of a source as shown to users."""

    OK = "ok"
    QUARANTINED = "quarantined"
    FAILED = "failed"


@dataclass(frozen=True)
class PolicySettings:
    """Recovery and permanent-failure thresholds."""

    recovery_samples: int = 4096  # clean samples to leave quarantine
    max_failures: int = 5  # this many failures ...
    failure_period: float = 600.0  # ... within this many seconds: failed


class HealthPolicy:
    """Tracks one source's state from its failures and clean samples."""

    def __init__(self, settings: PolicySettings | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or PolicySettings()
        self._clock = clock
        self.state = SourceState.OK
        self._recent: deque[float] = deque()
        self._last_failure_index: int | None = None
        self.hold_reason = ""  # set while an out-of-band check holds the source in quarantine

    def hold(self, reason: str) -> None:
        """Quarantine the source for a reason outside the health tests, until release()."""
        self.hold_reason = reason or "held"

    def release(self) -> None:
        """End a hold: the source's state is its health state again."""
        self.hold_reason = ""

    def current(self) -> SourceState:
        """The state to show and credit by: the health state, or quarantined while held."""
        if self.hold_reason and self.state is SourceState.OK:
            return SourceState.QUARANTINED
        return self.state

    @property
    def reason(self) -> str:
        """Why the source is quarantined when a hold (not a health failure) is the cause."""
        return self.hold_reason if self.hold_reason and self.state is SourceState.OK else ""

    def observe(self, failures: list[HealthFailure], samples_tested: int) -> SourceState:
        """Update the state after a buffer; samples_tested is the monitor's running total."""
        if failures:
            now = self._clock()
            for failure in failures:
                self._recent.append(now)
                self._last_failure_index = failure.sample_index
            cutoff_time = now - self.settings.failure_period
            while self._recent and self._recent[0] < cutoff_time:
                self._recent.popleft()
            if self.state is not SourceState.FAILED:
                if len(self._recent) >= self.settings.max_failures:
                    self.state = SourceState.FAILED
                else:
                    self.state = SourceState.QUARANTINED
        elif self.state is SourceState.QUARANTINED:
            assert self._last_failure_index is not None
            clean = samples_tested - 1 - self._last_failure_index
            if clean >= self.settings.recovery_samples:
                self.state = SourceState.OK
        return self.current()

    def clear(self) -> None:
        """Operator action: forget past failures and return to ok (a hold stays until released)."""
        self.state = SourceState.OK
        self._recent.clear()
        self._last_failure_index = None
