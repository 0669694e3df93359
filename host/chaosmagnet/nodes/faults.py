"""The node simulator's faults: their names, what each does, and when one is on.

Light on purpose (no numpy): the command line lists the names in its help and
checks ``--fault`` against them.  The HAL faults act on the simulated noise
(chaosmagnet.nodes.simulator.SimHal), the wire faults on the bytes sent.
"""

from __future__ import annotations

from dataclasses import dataclass

#: name -> what it does, for `nodes simulate --fault` (add a fault here and in the simulator).
FAULTS: dict[str, str] = {
    "stuck": "the ADC returns one value (RCT failures, quarantine)",
    "bias": "the ADC returns one value 68 % of the time (APT failures, quarantine)",
    "garbage": "random bytes and corrupted frames on the wire (drops)",
    "replay": "old frames sent again (drops)",
    "drift": "the ADC's bias creeps up over 2 min and holds below the APT cutoff (anomaly)",
    "periodic": "interference on the ADC switching on and off every 10 s (anomaly)",
    "sag": "the node slows to 40 % of its rates (anomaly)",
}
HAL_FAULTS = frozenset({"stuck", "bias", "drift", "periodic", "sag"})
WIRE_FAULTS = frozenset({"garbage", "replay"})

DRIFT_VALUE = 2048  # the reading the drift and the interference pull towards
DRIFT_MAX = 0.35  # at most this share of readings forced: p(value) stays under the APT cutoff (311/512 at H = 1)
DRIFT_RAMP_S = 120.0  # seconds from no bias to DRIFT_MAX
PERIODIC_PERIOD_S = 10.0  # the interference's period: on for half of it
PERIODIC_SHARE = 0.2  # share of readings it forces while on
SAG_FACTOR = 0.4  # the node's clock (and so its rates) runs at this speed during a sag


@dataclass(frozen=True)
class FaultWindow:
    """When a fault is on: from ``after`` seconds after start, for ``duration`` seconds (None: to the end)."""

    after: float = 0.0
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.after < 0 or (self.duration is not None and self.duration <= 0):
            raise ValueError("a fault starts at 0 s or later and lasts more than 0 s")

    def elapsed_in_fault(self, elapsed: float) -> float | None:
        """Seconds since the fault began, or None while it is off."""
        if elapsed < self.after:
            return None
        inside = elapsed - self.after
        if self.duration is not None and inside >= self.duration:
            return None
        return inside


def fault_help() -> str:
    """The --fault help text: every fault with what it does."""
    return "Inject a fault: " + "; ".join(f"{name}: {what}" for name, what in FAULTS.items()) + "."
