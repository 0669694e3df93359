"""Every source the program knows, local or not, and how to build each one.

A factory takes the SourceOptions (the command line's device choices and the
config) and returns a Source.  Building must be cheap and must not open a
device: availability() says whether it can run, start() acquires it.  Node
sources are not registered here: `run --node` builds them from the node registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from chaosmagnet.config import Config
from chaosmagnet.errors import UsageError
from chaosmagnet.sources.base import Source


@dataclass
class SourceOptions:
    """Choices that shape how sources are built."""

    rates: dict[str, float] = field(default_factory=dict)  # samples/s per source name
    camera: str | None = None  # OpenCV capture: device index or path/URL
    audio_device: str | None = None  # PortAudio input device name or index
    audio_bits: int = 8
    extra: dict[str, object] = field(default_factory=dict)


SourceFactory = Callable[[SourceOptions], Source]

_FACTORIES: dict[str, SourceFactory] = {}
_DEFAULT_ON: dict[str, bool] = {}


def register(name: str, factory: SourceFactory, *, default_on: bool) -> None:
    """Make a source known under ``name``; ``default_on`` runs it when none is named."""
    _FACTORIES[name] = factory
    _DEFAULT_ON[name] = default_on


def known_sources() -> list[str]:
    """Names of every registered source, in registration order."""
    _load_builtin()
    return list(_FACTORIES)


def default_sources() -> list[str]:
    """Names of the sources `chaos-host run` starts when none is named."""
    _load_builtin()
    return [n for n in _FACTORIES if _DEFAULT_ON[n]]


def build_source(name: str, options: SourceOptions) -> Source:
    """Build the source called ``name``; UsageError if no such source exists."""
    _load_builtin()
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise UsageError(
            f"unknown source {name!r} (known: {', '.join(_FACTORIES)})"
        ) from None
    return factory(options)


_loaded = False


def _load_builtin() -> None:
    """Import the modules that register the built-in sources (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    # Each module registers its sources on import, in this order (the order of
    # `chaos-host sources`); none needs its device library to import.
    for module in ("local", "hwrng", "audio", "video", "hid"):
        importlib.import_module(f"chaosmagnet.sources.{module}")


def sources_that_earn_credit(config: Config, exclude: set[str] | None = None) -> list[str]:
    """Known sources, available here, that earn credit (not conditioned, or granted
    credit_h by ``config``); for the hint when no enabled source can."""
    names = []
    for name in known_sources():
        if exclude and name in exclude:
            continue
        try:
            source = build_source(name, SourceOptions())
        except Exception:  # noqa: BLE001 - a hint must never fail the error it explains
            continue
        if source.info.conditioned and not config.source(name).credit_h:
            continue
        try:
            if not source.availability().available:
                continue
        except Exception:  # noqa: BLE001
            continue
        names.append(name)
    return names
