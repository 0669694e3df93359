"""HID source: timing of pointer and keyboard events, and nothing else.

pynput listeners report pointer motion, clicks, scrolls and key presses.  For
each event the source reads a nanosecond clock; the raw sample is the low 8
bits of the time since the previous event (any kind).  A person's timing, the
device's polling and the system's scheduling all move those bits.

Privacy: only timings are kept.  The callbacks given to pynput take no
parameters, so pynput drops every argument (the key, the pointer position,
the button) before our code runs: key identities and positions are never
seen, stored, logged or sent.  The counters in ``details()`` say how many
events of each kind arrived, never which.

pynput is imported only when the source is checked or started; on Linux it
needs an X display (Xorg or XWayland), on macOS the accessibility permission.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from chaosmagnet.errors import ConfigError, SourceUnavailable
from chaosmagnet.sources.base import AVAILABLE, Availability, Source, SourceInfo
from chaosmagnet.sources.registry import SourceOptions, register

DECLARED_H = 1.0  # bits claimed per event (see docs/sources-av-hid.md)
MAX_PENDING = 1 << 20  # samples buffered between batches before the oldest are dropped


def _needs_display() -> bool:
    return sys.platform.startswith("linux") or sys.platform.startswith("freebsd")


def _import_pynput() -> tuple[Any, Any]:
    """Import pynput's mouse and keyboard; SourceUnavailable with the reason if it cannot."""
    if _needs_display() and not os.environ.get("DISPLAY"):
        raise SourceUnavailable("no display for HID (DISPLAY is not set)")
    try:
        from pynput import keyboard, mouse
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "pynput":
            raise SourceUnavailable("pynput is not installed") from exc
        raise SourceUnavailable(f"no display for HID: pynput backend missing ({exc.name})") from exc
    except ImportError as exc:  # pynput found no usable backend: no X server reachable
        raise SourceUnavailable("no display for HID: pynput cannot connect to the display") from exc
    if mouse.Listener.__module__.endswith("_xorg"):
        _check_x_record()
    return mouse, keyboard


def _check_x_record() -> None:
    """pynput's Xorg listeners need the RECORD extension; without it they never start."""
    import Xlib.display
    import Xlib.error

    try:
        display = Xlib.display.Display()
    except (OSError, Xlib.error.DisplayError, Xlib.error.ConnectionClosedError) as exc:
        raise SourceUnavailable("no display for HID: cannot connect to the X server") from exc
    try:
        if not display.has_extension("RECORD"):
            raise SourceUnavailable("no display for HID: the X server lacks the RECORD extension")
    finally:
        display.close()


def _end_xrecord_waits(listeners: list[Any]) -> None:
    """Wake Xorg listeners blocked in RECORD so that they end now.

    pynput's Xorg stop() sends the disable request on the connection that the
    listener thread is blocked reading, so the thread only ends at the next
    input event (pynput pull request #583).  RECORD expects the disable on
    another connection: this opens one of our own (sharing nothing with the
    listener threads), disables each context and waits for the server's
    answer.  Other backends lack a RECORD context and stop by themselves.
    """
    contexts = [c for c in (getattr(li, "_context", None) for li in listeners) if c is not None]
    if not contexts:
        return
    import Xlib.display
    import Xlib.error

    try:
        display = Xlib.display.Display()
    except (OSError, Xlib.error.DisplayError, Xlib.error.ConnectionClosedError):
        return  # the server is gone: the listeners end with it
    # A context freed meanwhile (its listener woke by itself) answers with an
    # X error: expected, and nothing to act on.
    display.set_error_handler(lambda error, request: None)
    try:
        for context in contexts:
            display.record_disable_context(context)
        display.sync()
    except (OSError, Xlib.error.XError, Xlib.error.ConnectionClosedError):
        pass
    finally:
        display.close()


class HidSource(Source):
    """Low 8 bits of nanosecond intervals between pointer and key events."""

    info = SourceInfo(
        name="hid",
        kind="local",
        bits_per_sample=8,
        declared_h=DECLARED_H,
        conditioned=False,
        description="low 8 bits of ns intervals between pointer/key events (timings only)",
        steady_rate=False,  # events come when someone types or moves the pointer
    )

    READY_SECONDS = 10.0  # time the listeners get to connect and start

    def __init__(
        self, clock: Callable[[], int] = time.perf_counter_ns, poll_seconds: float = 0.2
    ) -> None:
        self._clock = clock
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._pending = bytearray()
        self._last_ns: int | None = None
        self._pointer_events = 0
        self._key_events = 0
        self._dropped = 0
        self._listeners: list[Any] = []
        self._running = False

    def availability(self) -> Availability:
        try:
            _import_pynput()
        except SourceUnavailable as exc:
            return Availability(False, str(exc))
        return AVAILABLE

    # The two callbacks pynput calls.  They declare no parameters on purpose:
    # pynput then calls them with none, so no key or position ever reaches us.

    def _on_pointer_event(self) -> None:
        self._record(pointer=True)

    def _on_key_press(self) -> None:
        self._record(pointer=False)

    def _record(self, pointer: bool) -> None:
        now = self._clock()
        with self._lock:
            if pointer:
                self._pointer_events += 1
            else:
                self._key_events += 1
            last, self._last_ns = self._last_ns, now
            if last is None:
                return
            if len(self._pending) >= MAX_PENDING:
                del self._pending[: len(self._pending) // 2]
                self._dropped += MAX_PENDING // 2
            self._pending.append((now - last) & 0xFF)

    async def start(self) -> None:
        mouse, keyboard = _import_pynput()
        pointer = mouse.Listener(
            on_move=self._on_pointer_event,
            on_click=self._on_pointer_event,
            on_scroll=self._on_pointer_event,
        )
        keys = keyboard.Listener(on_press=self._on_key_press)
        self._listeners = [pointer, keys]
        for listener in self._listeners:
            listener.start()
        if not await asyncio.to_thread(self._wait_ready, self.READY_SECONDS):
            await self.stop()
            raise SourceUnavailable("hid: the input listeners did not start")
        self._running = True

    def _wait_ready(self, timeout: float) -> bool:
        """Wait for the listeners to be ready; False if one did not become ready in time."""
        # pynput's wait() has no timeout and never returns if a listener died
        # while starting: wait in daemon threads, which cannot block exit.
        waiters = [threading.Thread(target=li.wait, daemon=True) for li in self._listeners]
        for waiter in waiters:
            waiter.start()
        deadline = time.monotonic() + timeout
        for waiter in waiters:
            waiter.join(max(0.0, deadline - time.monotonic()))
        return not any(waiter.is_alive() for waiter in waiters)

    async def stop(self) -> None:
        self._running = False
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.stop()
        await asyncio.to_thread(_end_xrecord_waits, listeners)
        for listener in listeners:
            await asyncio.to_thread(listener.join, 2.0)

    def take_samples(self) -> np.ndarray:
        """The samples gathered since the last call (possibly none)."""
        with self._lock:
            data, self._pending = bytes(self._pending), bytearray()
        return np.frombuffer(data, dtype=np.uint8).copy()

    async def batches(self) -> AsyncIterator[np.ndarray]:
        while self._running:
            await asyncio.sleep(self.poll_seconds)
            samples = self.take_samples()
            if samples.size:
                yield samples

    def details(self) -> dict[str, object]:
        with self._lock:
            return {
                "pointer_events": self._pointer_events,
                "key_events": self._key_events,
                "pending": len(self._pending),
                "dropped": self._dropped,
                "kept": "timings only",
            }


def _build(options: SourceOptions) -> HidSource:
    """The hid source has nothing to choose: an [hid] table must be empty."""
    table = options.extra.get("hid", {})
    if not isinstance(table, dict) or table:
        raise ConfigError("[hid] takes no settings (turn the source on in [sources.hid])")
    return HidSource()


register("hid", _build, default_on=False)
