"""Board profiles (boards/*.toml) and where the firmware folder lives.

A profile names the MicroPython build to flash, the ADC1 pin, the LED and the
declared rates that the firmware's on-device health cutoffs come from.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosmagnet.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SOURCE_NAMES = ("adc", "rng", "jitter")


def project_root() -> Path:
    """The folder holding firmware/ and boards/.

    CHAOS_SOURCE_ROOT overrides; a checkout's own folders win when the program
    runs from a checkout (editable install, scripts/run); an installed wheel
    uses the copies it carries as package data (setup.py puts them there).
    """
    override = os.environ.get("CHAOS_SOURCE_ROOT")
    if override:
        return Path(override).resolve()
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "firmware" / "lib").is_dir() and (checkout / "boards").is_dir():
        return checkout
    return Path(__file__).resolve().parents[1] / "_node_files"


def firmware_dir() -> Path:
    """The firmware/ folder that deploy copies and the simulator imports."""
    return project_root() / "firmware"


def boards_dir() -> Path:
    """The boards/ folder with one profile per supported board."""
    return project_root() / "boards"


@dataclass(frozen=True)
class SourceRate:
    """A node source's declared rate (samples/s), min-entropy per sample and block size."""

    rate: int
    h: float
    block: int


@dataclass(frozen=True)
class BoardProfile:
    """One supported board."""

    name: str
    title: str
    chip: str
    micropython_build: str
    firmware_page: str
    flash_offset: int
    adc_pin: int
    led_pin: int | None
    led_kind: str
    heartbeat_ms: int
    sources: dict[str, SourceRate]
    notes: list[str] = field(default_factory=list)
    usb_ids: tuple[tuple[int, int], ...] = ()  # (VID, PID) the board's MicroPython port shows

    def node_sources_config(self) -> dict[str, dict[str, Any]]:
        """The ``sources`` table of the node config file."""
        return {n: {"rate": s.rate, "h": s.h, "block": s.block} for n, s in self.sources.items()}


def _profile(path: Path) -> BoardProfile:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"board profile {path.name}: {exc}") from None
    try:
        sources = {
            name: SourceRate(int(spec["rate"]), float(spec["h"]), int(spec["block"]))
            for name, spec in data["sources"].items()
        }
        adc_pin = int(data["adc_pin"])
        if not 1 <= adc_pin <= 10:
            raise ValueError("adc_pin must be an ADC1 pin (GPIO1..GPIO10)")
        unknown = set(sources) - set(SOURCE_NAMES)
        if unknown:
            raise ValueError(f"unknown sources {sorted(unknown)}")
        return BoardProfile(
            name=str(data["name"]),
            title=str(data["title"]),
            chip=str(data["chip"]),
            micropython_build=str(data["micropython_build"]),
            firmware_page=str(data.get("firmware_page", "")),
            flash_offset=int(data.get("flash_offset", 0)),
            adc_pin=adc_pin,
            led_pin=None if data.get("led_pin") is None else int(data["led_pin"]),
            led_kind=str(data.get("led_kind", "none")),
            heartbeat_ms=int(data.get("heartbeat_ms", 1000)),
            sources=sources,
            notes=[str(n) for n in data.get("notes", [])],
            usb_ids=tuple(_usb_id(str(text)) for text in data.get("usb_ids", [])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"board profile {path.name}: bad or missing field: {exc}") from None


def _usb_id(text: str) -> tuple[int, int]:
    """'303a:80d1' -> (0x303A, 0x80D1)."""
    vid, sep, pid = text.partition(":")
    if not sep or len(vid) != 4 or len(pid) != 4:
        raise ValueError(f"usb_ids entry {text!r} is not VID:PID in hex (303a:1001)")
    return int(vid, 16), int(pid, 16)


def list_boards() -> list[BoardProfile]:
    """Every profile in boards/, sorted by name."""
    return [_profile(p) for p in sorted(boards_dir().glob("*.toml"))]


def load_board(name: str) -> BoardProfile:
    """The profile called name; UsageError listing the known ones otherwise."""
    boards = {b.name: b for b in list_boards()}
    try:
        return boards[name]
    except KeyError:
        raise UsageError(f"unknown board {name!r} (known: {', '.join(boards) or 'none'})") from None
