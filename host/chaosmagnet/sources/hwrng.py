"""The kernel's hardware RNG (/dev/hwrng): the source rngd reads first.

The kernel's hw_random core exposes whichever hardware generator it chose
(virtio_rng on a virtual machine, tpm-rng, a CPU's or SoC's TRNG) through one
character device; /sys/class/misc/hw_random/rng_current names it.  Those
generators are vendor-conditioned, so the source is flagged conditioned:
mixed with zero credit unless chaos.toml grants ``credit_h``, and health-tested
like any other.  The source keeps the name ``hwrng`` (configuration keys do
not change with the device); the device's name is in its description and
details.  ``[hwrng] device = PATH`` reads another path (a FIFO in tests).
"""

from __future__ import annotations

import errno
import os
import select
import stat
import threading
import time
from pathlib import Path

import numpy as np

from chaosmagnet.errors import ConfigError, SourceUnavailable
from chaosmagnet.sources.base import AVAILABLE, Availability, PolledSource, SourceInfo
from chaosmagnet.sources.registry import SourceOptions, register

DEFAULT_DEVICE = Path("/dev/hwrng")
RNG_CURRENT = Path("/sys/class/misc/hw_random/rng_current")


def current_device_name(sysfs: Path = RNG_CURRENT) -> str:
    """The kernel's current hw_random device (virtio_rng.0, tpm-rng-0, ...), or ''."""
    try:
        name = sysfs.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""
    return "" if name == "none" else name


def _open_problem(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ENOENT:
        return f"{path} does not exist (no hardware RNG driver loaded)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{path} is readable by root only (run as root, or give this user read access)"
    if exc.errno == errno.EBUSY:
        return f"{path} is busy (another program holds it)"
    if exc.errno == errno.ENODEV:
        return f"{path}: the kernel has no current hw_random device"
    return f"{path}: {exc.strerror or exc}"


class HwrngSource(PolledSource):
    """Bytes from the kernel's hardware RNG device; conditioned, credited 0 unless configured."""

    DEFAULT_RATE = 4096.0  # bytes/s: far below what virtio_rng or a TPM delivers
    POLL_MS = 200  # a blocked read notices stop() within this

    def __init__(self, rate: float = DEFAULT_RATE, device: Path = DEFAULT_DEVICE, sysfs: Path = RNG_CURRENT) -> None:
        super().__init__(rate)
        self.device = Path(device)
        self.kernel_name = current_device_name(sysfs) if self.device == DEFAULT_DEVICE else ""
        what = self.kernel_name or ("the kernel's hw_random device" if self.device == DEFAULT_DEVICE else "")
        self.info = SourceInfo(
            name="hwrng",
            kind="local",
            bits_per_sample=8,
            declared_h=8.0,
            conditioned=True,
            description=f"{self.device} ({what or 'a stand-in'}); vendor-conditioned, credited 0 unless configured",
        )
        self._fd: int | None = None
        self._is_fifo = False
        self._lock = threading.Lock()

    def availability(self) -> Availability:
        try:
            fd = os.open(self.device, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            return Availability(False, _open_problem(exc, self.device))
        os.close(fd)
        return AVAILABLE

    async def start(self) -> None:
        try:
            self._fd = os.open(self.device, os.O_RDONLY | os.O_NONBLOCK)
            self._is_fifo = stat.S_ISFIFO(os.fstat(self._fd).st_mode)
        except OSError as exc:
            raise SourceUnavailable(f"hwrng: {_open_problem(exc, self.device)}") from None
        await super().start()

    async def stop(self) -> None:
        await super().stop()  # a read in progress sees this within POLL_MS and lets go of the lock
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def read(self, n: int) -> np.ndarray:
        """Up to n bytes within the batch time; the device (or FIFO) may return fewer per read."""
        with self._lock:
            fd = self._fd
            if fd is None:
                raise SourceUnavailable("hwrng: not started")
            chunks = []
            got = 0
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            deadline = time.monotonic() + self.batch_seconds
            while got < n and self._running:
                if not poller.poll(self.POLL_MS):  # nothing yet: check stop() and the batch time
                    if time.monotonic() >= deadline:
                        break
                    continue
                try:
                    chunk = os.read(fd, n - got)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    raise SourceUnavailable(f"hwrng: {self.device}: {exc.strerror or exc}") from None
                if not chunk:  # a FIFO without a writer (yet), or a device that went away
                    if got or time.monotonic() >= deadline:
                        break
                    if not self._is_fifo:
                        raise SourceUnavailable(f"hwrng: {self.device} returned end of file")
                    time.sleep(self.POLL_MS / 1000)
                    continue
                chunks.append(chunk)
                got += len(chunk)
        return np.frombuffer(b"".join(chunks), dtype=np.uint8)

    def details(self) -> dict[str, object]:
        facts: dict[str, object] = {"device": str(self.device)}
        if self.kernel_name:
            facts["hw_random"] = self.kernel_name
        return facts


def _build(options: SourceOptions) -> HwrngSource:
    """From the config's [hwrng] table (device = PATH)."""
    table = options.extra.get("hwrng", {})
    if not isinstance(table, dict):
        raise ConfigError("[hwrng] must be a table")
    unknown = sorted(set(table) - {"device"})
    if unknown:
        raise ConfigError(f"[hwrng]: unknown key {unknown[0]!r} (allowed: device)")
    device = table.get("device", str(DEFAULT_DEVICE))
    if not isinstance(device, str) or not device:
        raise ConfigError("[hwrng] device: expected a path")
    return HwrngSource(float(options.rates.get("hwrng", HwrngSource.DEFAULT_RATE)), Path(device))


register("hwrng", _build, default_on=False)
