"""The optional configuration file, chaos.toml.

Every key is optional; an unknown key or a wrong type is an error with its
location, never silently ignored.  Example::

    [sources]
    enabled = ["os-rng", "cpu-jitter", "system"]   # run these when none is named

    [sources.cpu-jitter]
    rate = 20000          # samples per second
    declared_h = 0.5      # override the author's declared min-entropy per sample

    [sources.os-rng]
    credit_h = 0.0        # conditioned source: credited bits per sample (default 0)

    [health]
    alpha_exponent = 20   # alpha = 2^-20
    recovery_samples = 4096
    max_failures = 5
    failure_period = 600  # seconds

    [estimates]
    window = 65536
    min_samples = 1024    # no credit before the window holds this many

    [pool]
    capacity_bits = 512

    [mint]                # keys: k-of-n quorum of independent sources (chaosmagnet.quorum)
    quorum = 2
    dependence_groups = [["cpu-jitter", "system"]]

    [assessment]          # full SP 800-90B assessment of each source during `run`
    enabled = true
    samples = 1000000     # collected per assessment (the standard asks for 10^6)
    reassess_seconds = 3600
"""

from __future__ import annotations

import difflib
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosmagnet.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_CONFIG_NAME = "chaos.toml"
MAX_WINDOW = 1 << 24  # samples per source kept for the online estimates (16 MiB each)
MAX_ASSESSMENT_SAMPLES = 100_000_000  # 100x what SP 800-90B asks for


@dataclass
class SourceConfig:
    """Per-source settings from [sources.NAME]."""

    enabled: bool | None = None
    rate: float | None = None
    declared_h: float | None = None
    credit_h: float | None = None  # only for conditioned sources


@dataclass
class Config:
    """Everything the engine and CLI read from chaos.toml, with defaults."""

    enabled_sources: list[str] | None = None
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    alpha_exponent: float = 20.0
    recovery_samples: int = 4096
    max_failures: int = 5
    failure_period: float = 600.0
    window: int = 65536
    min_samples: int = 1024
    capacity_bits: int = 512
    assessment_enabled: bool = True
    assessment_samples: int = 1_000_000
    reassess_seconds: float = 3600.0
    anomaly_enabled: bool = True  # score per-interval features of every source (chaosmagnet.anomaly)
    anomaly_quarantine: bool = True  # a sustained anomaly quarantines the source
    anomaly_warmup: int = 60  # intervals (s) that learn each source's baseline
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # sections owned by other modules

    @property
    def alpha(self) -> float:
        """The health tests' false-positive probability per sample."""
        return 2.0 ** (-self.alpha_exponent)

    def source(self, name: str) -> SourceConfig:
        """Settings for one source (defaults when the file says nothing)."""
        return self.sources.get(name, SourceConfig())


# Sections other modules own (mint, nodes, dashboard...): kept as raw tables.
EXTRA_SECTIONS = {"mint", "nodes", "dashboard", "audio", "video", "hid", "mesh", "hwrng", "kernel_feed"}


def _number(
    where: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if not math.isfinite(value):  # TOML allows nan and inf; no setting means them
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    if integer and not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where}: must be at least {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{where}: must be at most {maximum:,}, got {value!r}")
    return value


def _check_keys(where: str, table: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def parse_config(data: dict[str, Any], path: Path | None = None) -> Config:
    """Validate a parsed TOML document into a Config."""
    label = str(path) if path else "config"
    cfg = Config(path=path)
    _check_keys(label, data, {"sources", "health", "estimates", "pool", "assessment", "anomaly"} | EXTRA_SECTIONS)
    for section in EXTRA_SECTIONS & set(data):
        if not isinstance(data[section], dict):
            raise ConfigError(f"{label}: [{section}] must be a table")
        cfg.extra[section] = data[section]
    if "mint" in cfg.extra:
        from chaosmagnet.quorum import quorum_from_config

        try:
            quorum_from_config(cfg.extra)
        except ConfigError as exc:
            raise ConfigError(f"{label}: {exc}") from None

    sources = data.get("sources", {})
    if not isinstance(sources, dict):
        raise ConfigError(f"{label}: [sources] must be a table")
    for key, value in sources.items():
        where = f"{label}: sources.{key}"
        if key == "enabled":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: expected a list of source names")
            cfg.enabled_sources = list(value)
            continue
        if not isinstance(value, dict):
            if difflib.get_close_matches(key, ["enabled"], n=1):
                raise ConfigError(f"{label}: [sources]: unknown key {key!r}; did you mean 'enabled'?")
            raise ConfigError(
                f"{where}: expected a table [sources.{key}] of that source's settings, "
                "or `enabled = [...]` (the only plain key of [sources])"
            )
        _check_keys(where, value, {"enabled", "rate", "declared_h", "credit_h"})
        sc = SourceConfig()
        if "enabled" in value:
            if not isinstance(value["enabled"], bool):
                raise ConfigError(f"{where}.enabled: expected true or false")
            sc.enabled = value["enabled"]
        if "rate" in value:
            sc.rate = float(_number(f"{where}.rate", value["rate"], minimum=1))
        if "declared_h" in value:
            h = _number(f"{where}.declared_h", value["declared_h"])
            if not 0 < h <= 8:
                raise ConfigError(f"{where}.declared_h: must be in (0, 8], got {h!r}")
            sc.declared_h = float(h)
        if "credit_h" in value:
            h = _number(f"{where}.credit_h", value["credit_h"], minimum=0)
            if h > 8:
                raise ConfigError(f"{where}.credit_h: must be at most 8, got {h!r}")
            sc.credit_h = float(h)
        cfg.sources[key] = sc

    health = data.get("health", {})
    if not isinstance(health, dict):
        raise ConfigError(f"{label}: [health] must be a table")
    _check_keys(f"{label}: health", health, {"alpha_exponent", "recovery_samples", "max_failures", "failure_period"})
    if "alpha_exponent" in health:
        cfg.alpha_exponent = float(_number(f"{label}: health.alpha_exponent", health["alpha_exponent"], minimum=1))
        if cfg.alpha_exponent > 64:
            raise ConfigError(f"{label}: health.alpha_exponent: must be at most 64")
    if "recovery_samples" in health:
        cfg.recovery_samples = int(
            _number(f"{label}: health.recovery_samples", health["recovery_samples"], minimum=1, integer=True)
        )
    if "max_failures" in health:
        cfg.max_failures = int(
            _number(f"{label}: health.max_failures", health["max_failures"], minimum=1, integer=True)
        )
    if "failure_period" in health:
        cfg.failure_period = float(_number(f"{label}: health.failure_period", health["failure_period"], minimum=1))

    est = data.get("estimates", {})
    if not isinstance(est, dict):
        raise ConfigError(f"{label}: [estimates] must be a table")
    _check_keys(f"{label}: estimates", est, {"window", "min_samples"})
    if "window" in est:
        cfg.window = int(
            _number(f"{label}: estimates.window", est["window"], minimum=1024, maximum=MAX_WINDOW, integer=True)
        )
    if "min_samples" in est:
        cfg.min_samples = int(_number(f"{label}: estimates.min_samples", est["min_samples"], minimum=2, integer=True))

    pool = data.get("pool", {})
    if not isinstance(pool, dict):
        raise ConfigError(f"{label}: [pool] must be a table")
    _check_keys(f"{label}: pool", pool, {"capacity_bits"})
    if "capacity_bits" in pool:
        cfg.capacity_bits = int(
            _number(f"{label}: pool.capacity_bits", pool["capacity_bits"], minimum=256, integer=True)
        )

    assessment = data.get("assessment", {})
    if not isinstance(assessment, dict):
        raise ConfigError(f"{label}: [assessment] must be a table")
    _check_keys(f"{label}: assessment", assessment, {"enabled", "samples", "reassess_seconds"})
    if "enabled" in assessment:
        if not isinstance(assessment["enabled"], bool):
            raise ConfigError(f"{label}: assessment.enabled: expected true or false")
        cfg.assessment_enabled = assessment["enabled"]
    if "samples" in assessment:
        cfg.assessment_samples = int(
            _number(
                f"{label}: assessment.samples",
                assessment["samples"],
                minimum=1000,
                maximum=MAX_ASSESSMENT_SAMPLES,
                integer=True,
            )
        )
    if "reassess_seconds" in assessment:
        cfg.reassess_seconds = float(
            _number(f"{label}: assessment.reassess_seconds", assessment["reassess_seconds"], minimum=1)
        )

    anomaly = data.get("anomaly", {})
    if not isinstance(anomaly, dict):
        raise ConfigError(f"{label}: [anomaly] must be a table")
    _check_keys(f"{label}: anomaly", anomaly, {"enabled", "quarantine", "warmup"})
    for key in ("enabled", "quarantine"):
        if key in anomaly:
            if not isinstance(anomaly[key], bool):
                raise ConfigError(f"{label}: anomaly.{key}: expected true or false")
            setattr(cfg, f"anomaly_{key}", anomaly[key])
    if "warmup" in anomaly:
        cfg.anomaly_warmup = int(
            _number(f"{label}: anomaly.warmup", anomaly["warmup"], minimum=10, maximum=86400, integer=True)
        )
    return cfg


def load_config(path: Path | None) -> Config:
    """Load chaos.toml: the given path (must exist), else ./chaos.toml if present, else defaults."""
    if path is None:
        default = Path(DEFAULT_CONFIG_NAME)
        if not default.is_file():
            return Config()
        path = default
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    return parse_config(data, path)
