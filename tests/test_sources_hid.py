"""The HID source under a real X server (Xvfb), driven by xdotool.

xdotool moves the pointer, clicks and types through the XTEST extension;
pynput's listeners receive the events through RECORD, exactly as they would
from a mouse and keyboard.  The tests check that the samples are the low bits
of the intervals between events, and that no key identity or pointer
coordinate appears in anything the source produces, keeps or logs.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections.abc import Iterator

import numpy as np
import pytest
from av_helpers import have_x_tools, xdotool, xvfb_display
from chaosmagnet.health import HealthMonitor
from chaosmagnet.sources.hid import HidSource
from chaosmagnet.sources.registry import SourceOptions, build_source

SECRET_TEXT = "qzxjvkwp"  # typed by xdotool; must never show up anywhere
SECRET_X, SECRET_Y = 987, 654  # a pointer position; must never show up either

needs_x = pytest.mark.skipif(
    not have_x_tools(),
    reason="Xvfb and xdotool are needed (apt-get install xvfb xdotool)",
)


@pytest.fixture
def xvfb(monkeypatch) -> Iterator[str]:
    """A private Xvfb server; DISPLAY points at it for the test."""
    with xvfb_display() as display:
        monkeypatch.setenv("DISPLAY", display)
        yield display


def _xdotool(*args: str) -> None:
    xdotool(None, *args)


def _drive_input() -> None:
    """Pointer motion to a known spot, a click, a scroll and some typing."""
    _xdotool("mousemove", "10", "10")
    for step in range(1, 21):
        _xdotool("mousemove", str(10 + step * 40), str(10 + step * 30))
    _xdotool("mousemove", str(SECRET_X), str(SECRET_Y), "click", "1", "click", "4")
    _xdotool("type", "--delay", "15", SECRET_TEXT)


def _run_with_input(source: HidSource, settle: float = 0.6) -> np.ndarray:
    """Start the source, drive input from another thread, collect every batch, stop."""

    async def run() -> np.ndarray:
        chunks: list[np.ndarray] = []

        async def consume() -> None:
            async for batch in source.batches():
                chunks.append(batch)

        await source.start()
        consumer = asyncio.create_task(consume())
        try:
            await asyncio.to_thread(_drive_input)
            await asyncio.sleep(settle)  # let the last events arrive
        finally:
            await source.stop()  # batches() ends after its current poll
            await asyncio.wait_for(consumer, 10)
        chunks.append(source.take_samples())
        return np.concatenate(chunks)

    return asyncio.run(run())


def test_no_display_is_unavailable_with_a_reason(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    state = build_source("hid", SourceOptions()).availability()
    assert not state.available
    assert "no display" in state.reason


@needs_x
def test_x_server_without_record_is_unavailable(monkeypatch) -> None:
    with xvfb_display("-extension", "RECORD") as display:
        monkeypatch.setenv("DISPLAY", display)
        source = build_source("hid", SourceOptions())
        state = source.availability()
        assert not state.available and "RECORD" in state.reason
        from chaosmagnet.errors import SourceUnavailable

        with pytest.raises(SourceUnavailable):
            asyncio.run(source.start())


def test_callbacks_take_no_arguments() -> None:
    # pynput passes a callback only as many arguments as it declares: none
    # here, so the key, position and button never reach the source.
    source = HidSource()
    assert inspect.signature(source._on_pointer_event).parameters == {}
    assert inspect.signature(source._on_key_press).parameters == {}


@needs_x
def test_samples_are_low_bits_of_event_intervals(xvfb) -> None:
    # A clock that returns a known sequence: each event reads it once, so the
    # samples must be the low bytes of its successive differences.
    ticks = [1_000_000_007 * k + 37 * k * k for k in range(100_000)]
    calls = iter(ticks)
    source = HidSource(clock=lambda: next(calls), poll_seconds=0.05)
    assert source.availability().available
    samples = _run_with_input(source)
    details = source.details()
    events = details["pointer_events"] + details["key_events"]
    assert details["key_events"] >= len(SECRET_TEXT)
    assert details["pointer_events"] >= 21 + 2  # moves, then a click and a scroll
    assert samples.size == events - 1
    expected = [(ticks[k + 1] - ticks[k]) & 0xFF for k in range(events - 1)]
    assert samples.tolist() == expected


@needs_x
def test_real_clock_intervals_pass_health_tests(xvfb) -> None:
    source = build_source("hid", SourceOptions())
    samples = _run_with_input(source)
    assert samples.size >= 30
    monitor = HealthMonitor(source.info.declared_h, source.info.bits_per_sample)
    monitor.run(samples)
    assert monitor.rct_failures == 0


@needs_x
def test_no_key_identity_or_coordinate_is_kept_or_logged(xvfb, caplog, capfd) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, pynput's included
    source = HidSource(poll_seconds=0.05)
    samples = _run_with_input(source)
    assert samples.size > 0

    produced = samples.tobytes()
    # Anything else the source holds or shows, rendered as text.
    held = repr(vars(source)) + repr(source.details()) + repr(source.info)
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    out, err = capfd.readouterr()
    texts = {"held": held, "logged": logged, "stdout": out, "stderr": err}

    assert SECRET_TEXT.encode() not in produced
    for order in ("little", "big"):
        position = SECRET_X.to_bytes(2, order) + SECRET_Y.to_bytes(2, order)
        assert position not in produced
    for where, text in texts.items():
        assert SECRET_TEXT not in text, where
        for char in SECRET_TEXT:  # a pynput key renders as 'q' or KeyCode(char='q')
            assert f"'{char}'" not in text, where
        for coordinate in (SECRET_X, SECRET_Y):  # as a number of its own, not digits inside a timestamp
            assert not re.search(rf"(?<![\d.]){coordinate}(?![\d])", text), where
        assert "KeyCode" not in text and "Button." not in text, where
    # The source keeps only counters and pending interval bytes.
    assert set(source.details()) == {"pointer_events", "key_events", "pending", "dropped", "kept"}


@needs_x
def test_stopped_source_stops_listening(xvfb) -> None:
    source = HidSource(poll_seconds=0.05)

    async def run() -> list:
        await source.start()
        listeners = list(source._listeners)
        await source.stop()
        return listeners

    listeners = asyncio.run(run())
    assert listeners and not any(listener.is_alive() for listener in listeners)
    before = source.details()
    _xdotool("mousemove", "5", "5", "mousemove", "500", "500")
    time.sleep(0.3)
    assert source.details() == before


def test_hid_config_table_takes_no_settings() -> None:
    from chaosmagnet.errors import ConfigError

    with pytest.raises(ConfigError):
        build_source("hid", SourceOptions(extra={"hid": {"log_keys": True}}))
    assert isinstance(build_source("hid", SourceOptions(extra={"hid": {}})), HidSource)
