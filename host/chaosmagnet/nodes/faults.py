"""Faults a simulated node can inject (``chaos-host nodes simulate --fault NAME``).

One table: a new fault is one entry here (what it acts on, one line on what it
shows) and its code in the simulator's HAL (``hal``: the noise) or wire
(``wire``: the frames).  Kept free of heavy imports: the command line builds
its ``--fault`` choice from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["FAULTS", "Fault", "FaultName", "hal_fault", "wire_fault"]


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
    )
}


def hal_fault(name: str | None) -> str | None:
    """The fault if it acts on the noise (the HAL), else None."""
    return name if name is not None and name in FAULTS and FAULTS[name].acts_on == "hal" else None


def wire_fault(name: str | None) -> str | None:
    """The fault if it acts on the frames (the wire), else None."""
    return name if name is not None and name in FAULTS and FAULTS[name].acts_on == "wire" else None


#: The choice the command line offers, built from the table (a str Enum, as typer wants).
FaultName = Enum("FaultName", {name: name for name in FAULTS}, type=str)  # type: ignore[misc]
