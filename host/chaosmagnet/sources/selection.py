"""Which sources to run and with what options: the selection `run`, `random` and minting share.

The configuration file (or ./chaos.toml, or defaults) names the enabled
sources and their rates; the command line may name sources and devices.
Both the command line and the minting code build their sources here, so
neither depends on the other.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from chaosmagnet.config import Config, load_config
from chaosmagnet.errors import ConfigError, UsageError
from chaosmagnet.sources.base import Source
from chaosmagnet.sources.registry import SourceOptions, build_source, default_sources, known_sources

__all__ = ["build_sources", "load", "selected_source_names", "source_options"]


def load(config_path: Path | None) -> Config:
    """Load the config file named on the command line, or ./chaos.toml, or defaults."""
    return load_config(config_path)


def source_options(config: Config, camera: str | None = None, audio_device: str | None = None) -> SourceOptions:
    """SourceOptions from the config's rates and the command line's device choices."""
    rates = {name: sc.rate for name, sc in config.sources.items() if sc.rate is not None}
    # [audio], [video] and [hid] tables go to those sources' factories, which
    # validate them; the command line's device choices win over the file's.
    return SourceOptions(rates=rates, camera=camera, audio_device=audio_device, extra=dict(config.extra))


def selected_source_names(config: Config, names: list[str] | None) -> list[str]:
    """The sources to run: those named, else the config's list, else the defaults."""
    known = known_sources()
    for name in config.sources:  # a misspelt [sources.NAME] must not be silently ignored
        if name not in known and not name.startswith("node:"):
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean [sources.{close[0]}]?" if close else f" (known: {', '.join(known)})"
            where = f"{config.path}: " if config.path else ""
            raise ConfigError(f"{where}[sources.{name}]: no such source{hint}")
    if names:
        chosen = names
    elif config.enabled_sources is not None:
        chosen = config.enabled_sources
    else:
        chosen = [n for n in default_sources() if config.source(n).enabled is not False]
        chosen += [n for n in known if n not in chosen and config.source(n).enabled]
    for name in chosen:
        if name not in known:
            raise UsageError(f"unknown source {name!r} (known: {', '.join(known)})")
    seen: list[str] = []
    for name in chosen:
        if name not in seen:
            seen.append(name)
    return seen


def build_sources(config: Config, names: list[str], options: SourceOptions) -> list[Source]:
    """Build the named sources (nothing is opened yet)."""
    return [build_source(name, options) for name in names]
