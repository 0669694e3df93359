"""Faults a simulated node can inject (``chaos-host nodes simulate --fault NAME``), and when one is on.

One table: a new fault is one entry here (what it acts on, one line on what it
shows) and its code in the simulator's HAL (``hal``: the noise) or wire
(``wire``: the frames).  Kept free of heavy imports (no numpy): the command
line builds its ``--fault`` choice and help from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "FAULTS",
    "HAL_FAULTS",
    "WIRE_FAULTS",
    "Fault",
    "FaultName",
    "FaultWindow",
    "fault_help",
    "hal_fault",
    "wire_fault",
]


@dataclass(frozen=True)
class Fault:
    """One injectable fault: where it acts and what it should show on the host."""

    name: str
    acts_on: str  # "hal" (the noise the node samples) or "wire" (the bytes it sends)
    shows: str


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("stuck", "hal", "the ADC returns one value -> RCT failures, quarantine"),
        Fault("bias", "hal", "the ADC returns one value 68% of the time -> APT failures, quarantine"),
        Fault("garbage", "wire", "random bytes and corrupted frames on the wire -> drops (bad magic/tag)"),
        Fault("replay", "wire", "old frames sent again -> drops (replay)"),
        Fault(
            "correlated",
            "hal",
            "half the ADC noise comes from a rail shared by every node simulated with this fault "
            "-> the host groups them and credits them once",
        ),
        Fault("drift", "hal", "the ADC's bias creeps up over 2 min and holds below the APT cutoff -> anomaly"),
        Fault("periodic", "hal", "interference on the ADC switching on and off every 10 s -> anomaly"),
        Fault("sag", "hal", "the node slows to 40 % of its rates -> anomaly"),
    )
}
HAL_FAULTS = frozenset(name for name, f in FAULTS.items() if f.acts_on == "hal")
WIRE_FAULTS = frozenset(name for name, f in FAULTS.items() if f.acts_on == "wire")

DRIFT_VALUE = 2048  # the reading the drift and the interference pull towards
DRIFT_MAX = 0.35  # at most this share of readings forced: p(value) stays under the APT cutoff (311/512 at H = 1)
DRIFT_RAMP_S = 120.0  # seconds from no bias to DRIFT_MAX
PERIODIC_PERIOD_S = 10.0  # the interference's period: on for half of it
PERIODIC_SHARE = 0.2  # share of readings it forces while on
SAG_FACTOR = 0.4  # the node's clock (and so its rates) runs at this speed during a sag


def hal_fault(name: str | None) -> str | None:
    """The fault if it acts on the noise (the HAL), else None."""
    return name if name in HAL_FAULTS else None


def wire_fault(name: str | None) -> str | None:
    """The fault if it acts on the frames (the wire), else None."""
    return name if name in WIRE_FAULTS else None


def fault_help() -> str:
    """The --fault help text: every fault with what it shows."""
    return "Inject a fault: " + "; ".join(f"{name}: {f.shows}" for name, f in FAULTS.items()) + "."


#: The choice the command line offers, built from the table (a str Enum, as typer wants).
FaultName = Enum("FaultName", {name: name for name in FAULTS}, type=str)  # type: ignore[misc]


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
