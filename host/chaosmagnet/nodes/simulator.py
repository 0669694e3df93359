"""A simulated node: the real firmware modules under CPython, a noise HAL, a pty.

``chaos-host nodes simulate`` runs one.  The firmware's Node class (sampling
loop, on-device health, handshake, session tags, authenticated commands) is
imported from firmware/lib and driven exactly as chaosnode.app drives it on a
board; only the HAL and the byte pipe differ.  The simulator keeps a boot
counter as the board's NVS does: the authenticated ``reboot`` command drops
the port (as a board's USB does when it resets), starts a new Node with a new
boot nonce and the counter plus one, and brings the port back.
The pty's slave path is published through a stable symlink
so a reopened pty (``reopen()``, or SIGHUP to the simulate command) appears at
the same path, like a board plugged back in.

Faults, for demos and tests, are listed in chaosmagnet.nodes.faults (stuck,
bias, garbage, replay, correlated, drift, periodic, sag).  ``correlated`` takes
half of the ADC noise from a SharedRail: a level walk and fast noise keyed by
wall-clock time and a fixed seed, so every node simulated with it on this
machine (each in its own ``nodes simulate`` process) shares that half.  A HAL
fault can start after a delay and end (``FaultWindow``), so a test sees an
anomaly raised and then cleared.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import math
import os
import pty
import random
import select
import sys
import tempfile
import time
import tty
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from chaosmagnet.errors import UsageError
from chaosmagnet.nodes import faults as _faults
from chaosmagnet.nodes.boards import BoardProfile, firmware_dir
from chaosmagnet.nodes.faults import FAULTS, FaultWindow, hal_fault, wire_fault

__all__ = ["FAULTS", "SharedRail", "SimHal", "Simulator", "hal_fault", "wire_fault"]
_TICKS_PERIOD = 1 << 30  # MicroPython's ticks wrap here
_MAX_PENDING = 64 * 1024  # bytes queued for the pty before frames are lost (as CDC loses them)


def firmware_modules() -> dict[str, ModuleType]:
    """Import the portable firmware modules (chaosnode.*) from firmware/lib."""
    lib = str(firmware_dir() / "lib")
    if lib not in sys.path:
        sys.path.insert(0, lib)
    names = (
        "chaosnode",
        "chaosnode.hmac256",
        "chaosnode.health",
        "chaosnode.framing",
        "chaosnode.session",
        "chaosnode.node",
        "chaosnode.config",
        "chaosnode.mqtt",
    )
    modules = {name: importlib.import_module(name) for name in names}
    origin = Path(modules["chaosnode"].__file__ or "").resolve()
    if not origin.is_relative_to(Path(lib).resolve()):
        raise UsageError(f"a different chaosnode package shadows the firmware: {origin}")
    return modules


class SharedRail:
    """Noise shared by every node simulated with ``--fault correlated`` (a common power rail).

    Keyed by wall-clock time and a fixed seed, so separate simulator processes
    on one machine draw the same values for the same moment: sample slot s
    (time x rate) falls in chunk s // CHUNK; each chunk has a step of a level
    walk (restarted every EPOCH chunks) and CHUNK values of fast noise, both
    from Philox keyed by (seed, epoch) and (seed, chunk).
    """

    CHUNK = 256  # sample slots per chunk (one 128 ms frame at 2000 samples/s)
    EPOCH = 1024  # chunks per level walk

    def __init__(
        self,
        level_step: float,
        fast_sd: float,
        rate: int,
        *,
        seed: int = 0xC0FFEE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.level_step, self.fast_sd, self.rate, self.seed, self._clock = level_step, fast_sd, rate, seed, clock
        self._epoch = -1
        self._walk = np.zeros(self.EPOCH)

    def _level(self, chunk: int) -> float:
        epoch = chunk // self.EPOCH
        if epoch != self._epoch:
            steps = np.random.Generator(np.random.Philox(key=[self.seed, epoch])).normal(0, self.level_step, self.EPOCH)
            self._walk, self._epoch = np.clip(np.cumsum(steps), -250.0, 250.0), epoch
        return float(self._walk[chunk % self.EPOCH])

    def _fast(self, chunk: int) -> np.ndarray:
        generator = np.random.Generator(np.random.Philox(key=[self.seed, 1 << 40 | chunk]))
        return generator.normal(0, self.fast_sd, self.CHUNK)

    def take(self, n: int) -> np.ndarray:
        """The shared part of the n most recent samples (the last one taken now)."""
        last = int(self._clock() * self.rate)
        slots = np.arange(last - n + 1, last + 1)
        chunks = slots // self.CHUNK
        out = np.empty(n)
        for chunk in np.unique(chunks):
            where = chunks == chunk
            out[where] = self._level(int(chunk)) + self._fast(int(chunk))[slots[where] % self.CHUNK]
        return out


class SimHal:
    """A noise-producing HAL with MicroPython's ticks semantics (30-bit wrap)."""

    LEVEL_STEP = 2.0  # the ADC level's random walk, per block (LSB)
    NOISE_SD = 3.0  # Gaussian noise per reading (LSB)

    def __init__(
        self,
        fault: str | None = None,
        seed: int | None = None,
        boots: int = 1,
        *,
        adc_rate: int = 2000,
        rail: SharedRail | None = None,
        window: FaultWindow | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fault = fault
        self.window = window or FaultWindow()
        self.boots = boots
        self._rng = np.random.default_rng(seed)
        self._level = 2048.0
        self._own = 1.0
        self.rail: SharedRail | None = None
        if fault == "correlated":  # half the noise variance is the rail's, half the node's own
            self._own = math.sqrt(0.5)
            self.rail = rail or SharedRail(self.LEVEL_STEP * self._own, self.NOISE_SD * self._own, adc_rate)
        self._clock = clock
        self._started = clock()
        # The node's clock in ns: real time, slowed while a sag is on.
        self._virtual_ns = random.randrange(_TICKS_PERIOD) * 1_000_000
        self._real_ns = time.monotonic_ns()

    def fault_time(self) -> float | None:
        """Seconds since the fault began, or None while no fault is on."""
        if self.fault is None:
            return None
        return self.window.elapsed_in_fault(self._clock() - self._started)

    def fill_adc(self, buf: memoryview, n: int) -> None:
        """n readings: a drifting level plus Gaussian noise of a few LSB (12-bit, LE words)."""
        inside = self.fault_time()
        shared = self.rail is not None and inside is not None  # the rail only while the fault is on
        own = self._own if shared else 1.0
        self._level += float(self._rng.normal(0, self.LEVEL_STEP * own))
        self._level = min(max(self._level, 1500.0), 2600.0)
        values = self._level + self._rng.normal(0, self.NOISE_SD * own, n)
        if shared:
            values += self.rail.take(n)  # type: ignore[union-attr]
        values = np.rint(values)
        if inside is not None:
            if self.fault == "stuck":
                values[:] = 2048
            elif self.fault == "bias":
                values[self._rng.random(n) < 0.68] = 2048  # over the APT cutoff, rarely a long run
            elif self.fault == "drift":
                share = _faults.DRIFT_MAX * min(1.0, inside / _faults.DRIFT_RAMP_S)
                values[self._rng.random(n) < share] = _faults.DRIFT_VALUE
            elif self.fault == "periodic" and inside % _faults.PERIODIC_PERIOD_S < _faults.PERIODIC_PERIOD_S / 2:
                values[self._rng.random(n) < _faults.PERIODIC_SHARE] = _faults.DRIFT_VALUE
        buf[: 2 * n] = np.clip(values, 0, 4095).astype("<u2").tobytes()

    def fill_rng(self, buf: memoryview, n: int) -> None:
        buf[:n] = os.urandom(n)

    def fill_jitter(self, buf: memoryview, n: int) -> None:
        """Low 8 bits of timing deltas of a small workload on this host."""
        clock = time.perf_counter_ns
        out = bytearray(n)
        prev = clock()
        acc = 0
        for i in range(n):
            for j in range(8):
                acc ^= (acc << 1) + j
            acc &= 0xFFFF
            now = clock()
            out[i] = (now - prev) & 0xFF
            prev = now
        buf[:n] = out

    def ticks_ms(self) -> int:
        now = time.monotonic_ns()
        step = now - self._real_ns
        self._real_ns = now
        if self.fault == "sag" and self.fault_time() is not None:
            step = int(step * _faults.SAG_FACTOR)
        self._virtual_ns += step
        return (self._virtual_ns // 1_000_000) % _TICKS_PERIOD

    @staticmethod
    def ticks_diff(a: int, b: int) -> int:
        half = _TICKS_PERIOD // 2
        return ((a - b + half) % _TICKS_PERIOD) - half

    def boot_nonce(self) -> bytes:
        return os.urandom(8)

    def boot_counter(self) -> int:
        return self.boots


class _Wire:
    """The node's output: frames queued whole for the pty, with transport faults."""

    def __init__(self, fault: str | None, seed: int | None) -> None:
        self.fault = fault
        self.pending = bytearray()
        self.lost_frames = 0
        self._history: deque[bytes] = deque(maxlen=32)
        self._random = random.Random(seed)
        self._count = 0

    def write(self, frame: memoryview | bytes) -> None:
        data = bytes(frame)
        self._count += 1
        if self.fault == "garbage" and self._count % 4 == 0:
            self._queue(os.urandom(self._random.randrange(1, 200)))
            if self._count % 8 == 0:  # and a frame with one bit flipped
                bad = bytearray(data)
                pos = self._random.randrange(len(bad))
                bad[pos] ^= 1 << self._random.randrange(8)
                self._queue(bytes(bad))
        if self.fault == "replay" and self._count % 4 == 0 and self._history:
            self._queue(self._history[self._random.randrange(len(self._history))])
        self._queue(data)
        self._history.append(data)

    def _queue(self, data: bytes) -> None:
        if len(self.pending) + len(data) > _MAX_PENDING:
            self.lost_frames += 1  # nobody reads the port: lost, as CDC writes are
            return
        self.pending += data


class PtyEndpoint:
    """A pty pair whose slave path is published through a stable symlink."""

    def __init__(self, link_path: Path) -> None:
        self.link_path = link_path
        self.master = -1
        self.slave = -1
        self.open()

    def open(self) -> None:
        if self.link_path.exists() and not self.link_path.is_symlink():
            # never replace a user's file or folder with the port link
            raise UsageError(f"{self.link_path} exists and is not a port link: use another --link")
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        tmp = self.link_path.with_name(self.link_path.name + ".new")
        try:
            tmp.unlink(missing_ok=True)
            os.symlink(os.ttyname(self.slave), tmp)
            os.replace(tmp, self.link_path)
        except OSError as exc:
            for fd in (self.master, self.slave):
                os.close(fd)
            self.master = self.slave = -1
            raise UsageError(f"cannot create the port link {self.link_path}: {exc.strerror}") from None

    @property
    def slave_path(self) -> str:
        return os.ttyname(self.slave)

    def close(self) -> None:
        # Remove the link only while it is still ours: another simulator may have taken the path over.
        if self.slave >= 0 and link_target(self.link_path) == os.ttyname(self.slave):
            self.link_path.unlink(missing_ok=True)
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1


def link_target(link_path: Path) -> str | None:
    """Where a port symlink points, or None when it is not a symlink."""
    try:
        return os.readlink(link_path)
    except OSError:
        return None


def live_link_target(link_path: Path) -> str | None:
    """The pty a port symlink points to when that pty still exists (a simulator may be serving it)."""
    target = link_target(link_path)
    return target if target is not None and os.path.exists(target) else None


def default_link_path(label: str) -> Path:
    """Where a simulated node's port appears (a symlink to its current pty)."""
    return Path(tempfile.gettempdir()) / f"chaos-node-{os.getuid()}-{label}"


def node_config(
    node_id: bytes, key: bytes | None, board: BoardProfile, label: str, rates: dict[str, int] | None = None
) -> dict[str, Any]:
    """The node config document: what deploy writes to /chaosnode.json (key None: the key
    goes to the board's NVS instead), or what the simulator runs with (key given)."""
    sources = board.node_sources_config()
    for name, rate in (rates or {}).items():
        sources[name]["rate"] = rate
    config: dict[str, Any] = {"node_id": node_id.hex()}
    if key is not None:
        config["key"] = key.hex()
    return config | {
        "board": board.name,
        "label": label,
        "adc_pin": board.adc_pin,
        "led_pin": board.led_pin,
        "led_kind": board.led_kind,
        "heartbeat_ms": board.heartbeat_ms,
        "sources": sources,
    }


class Simulator:
    """Runs the firmware's Node on a SimHal behind a pty until stop() or a signal."""

    def __init__(
        self,
        config: dict[str, Any],
        link_path: Path,
        fault: str | None = None,
        seed: int | None = None,
        window: FaultWindow | None = None,
    ) -> None:
        if fault is not None and fault not in FAULTS:
            raise UsageError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
        self._node_class = firmware_modules()["chaosnode.node"].Node
        self.config = config
        adc_rate = int(config.get("sources", {}).get("adc", {}).get("rate", 2000))
        self.hal = SimHal(hal_fault(fault), seed, adc_rate=adc_rate, window=window)
        self.wire = _Wire(wire_fault(fault), seed)
        self.node = self._node_class(self.hal, config, self.wire.write)
        self.endpoint = PtyEndpoint(link_path)
        self._running = True
        self._reopen_after: float | None = None

    @property
    def link_path(self) -> Path:
        return self.endpoint.link_path

    def stop(self) -> None:
        self._running = False

    def request_reopen(self, gap_seconds: float = 0.5) -> None:
        """Close the pty (the board was unplugged) and open a new one after a gap."""
        self._reopen_after = gap_seconds

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """The node's main loop: step, poll the pty for commands, flush frames."""
        try:
            while self._running and not (until and until()):
                if self._reopen_after is not None:
                    gap, self._reopen_after = self._reopen_after, None
                    self.endpoint.close()
                    self.wire.pending.clear()
                    time.sleep(gap)
                    self.endpoint.open()
                wait_ms = min(self.node.step(), 20)
                if self.node.reboot_requested:
                    self._reboot()
                    continue
                master = self.endpoint.master
                want_write = [master] if self.wire.pending else []
                readable, writable, _ = select.select([master], want_write, [], wait_ms / 1000)
                if readable:
                    self._read_commands(master)
                if writable or self.wire.pending:
                    self._flush(master)
        finally:
            self.endpoint.close()

    @property
    def boot_counter(self) -> int:
        """The boot counter of the running node (as the board keeps it in NVS)."""
        return int(self.hal.boots)

    def _reboot(self, gap_seconds: float = 0.3) -> None:
        """What machine.reset() does to a board: the USB port goes, a new boot comes back."""
        with contextlib.suppress(OSError):
            self._flush(self.endpoint.master)  # the "ok reboot" reply
        time.sleep(0.05)
        self.endpoint.close()
        self.wire.pending.clear()
        self.hal.boots += 1
        self.node = self._node_class(self.hal, self.config, self.wire.write)
        time.sleep(gap_seconds)
        self.endpoint.open()

    def _read_commands(self, master: int) -> None:
        try:
            data = os.read(master, 1024)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                return
            raise
        self.node.feed_commands(data)

    def _flush(self, master: int) -> None:
        pending = self.wire.pending
        while pending:
            try:
                written = os.write(master, pending[:16384])
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return
                raise
            del pending[:written]
