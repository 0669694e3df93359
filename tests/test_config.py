"""chaos.toml parsing: defaults, values, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from chaosmagnet.config import load_config
from chaosmagnet.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chaos.toml"
    path.write_text(text)
    return path


def test_defaults_without_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None)
    assert cfg.capacity_bits == 512 and cfg.alpha == 2.0**-20 and cfg.enabled_sources is None


def test_values_are_read(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, """
[sources]
enabled = ["cpu-jitter"]
[sources.cpu-jitter]
rate = 5000
declared_h = 0.25
[sources.os-rng]
credit_h = 1.5
[health]
alpha_exponent = 30
max_failures = 2
[pool]
capacity_bits = 1024
"""))
    assert cfg.enabled_sources == ["cpu-jitter"]
    assert cfg.source("cpu-jitter").rate == 5000 and cfg.source("cpu-jitter").declared_h == 0.25
    assert cfg.source("os-rng").credit_h == 1.5
    assert cfg.alpha == 2.0**-30 and cfg.max_failures == 2 and cfg.capacity_bits == 1024


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[pool]\ncapacity_bits = 'big'\n", "pool.capacity_bits: expected a number"),
        ("[pool]\ncapacity = 512\n", "unknown key 'capacity'"),
        ("[sources.cpu-jitter]\nrate = -5\n", "must be at least"),
        ("[sources.cpu-jitter]\ndeclared_h = 9\n", "must be in (0, 8]"),
        ("[health]\nmax_failures = 1.5\n", "expected an integer"),
        ("[bogus]\n", "unknown key 'bogus'"),
        ("[pool\n", "chaos.toml"),
    ],
)
def test_errors_name_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")
