"""Feeding the Linux kernel's random pool (`chaos-host run --feed-kernel`), as rngd does.

Conditioned output is written with the RNDADDENTROPY ioctl on /dev/random,
which needs CAP_SYS_ADMIN.  The kernel is credited no more bits than the
draw debited from credited bits of healthy sources: a draw debits the pool's
ledger in proportion (pool.py), so the share that came from sources in state
``ok`` is what may be passed on; a pool without credit feeds nothing.

Pacing: every ``interval`` seconds at most ``budget_bytes``, plus
``refill_bytes`` when the kernel's entropy count (RNDGETENTCNT) is below
``watermark_bits``.  Since Linux 5.18 the count saturates at 256 once the
kernel is seeded, and the kernel reseeds its ChaCha20 generator on its own
schedule: feeding then mixes fresh input into the input pool that the next
reseed draws from, but the count no longer rises, so the watermark only acts
while the kernel is unseeded (early boot).  docs/kernel-feed.md explains.

The feeder never sees the pool state; it draws through the pool's public
``draw`` (which ratchets) like every other consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import math
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chaosmagnet.errors import ConfigError, UsageError

RNDGETENTCNT = 0x80045200  # _IOR('R', 0x00, int)
RNDADDENTROPY = 0x40085203  # _IOW('R', 0x03, int[2])
RANDOM_DEVICE = "/dev/random"
PURPOSE = b"chaosmagnet.kernel-feed/1"
MAX_BYTES_PER_WRITE = 512  # the kernel takes up to a page; keep writes small and frequent


@dataclass(frozen=True)
class FeedSettings:
    """How fast the feeder may draw ([kernel_feed] in chaos.toml)."""

    interval: float = 1.0
    budget_bytes: int = 32  # per interval: 256 bits a second at most
    watermark_bits: int = 256
    refill_bytes: int = 64

    @classmethod
    def from_table(cls, table: object) -> FeedSettings:
        """Settings from the config's [kernel_feed] table; ConfigError on a bad key or value."""
        if table is None:
            return cls()
        if not isinstance(table, dict):
            raise ConfigError("[kernel_feed] must be a table")
        allowed = {"interval", "budget_bytes", "watermark_bits", "refill_bytes"}
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise ConfigError(f"[kernel_feed]: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
        values: dict[str, Any] = {}
        for key, value in table.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"[kernel_feed] {key}: expected a number, got {value!r}")
            if key == "interval":
                if not 0.05 <= value <= 3600:
                    raise ConfigError("[kernel_feed] interval: must be in [0.05, 3600] seconds")
                values[key] = float(value)
            else:
                if value != int(value) or not 0 <= value <= 4096:
                    raise ConfigError(f"[kernel_feed] {key}: expected an integer in [0, 4096]")
                values[key] = int(value)
        return cls(**values)


class KernelRandom:
    """The two ioctls on /dev/random, on an open descriptor."""

    def __init__(self, path: str = RANDOM_DEVICE) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)

    def close(self) -> None:
        """Close the descriptor (twice is fine)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def entropy_count(self) -> int:
        """RNDGETENTCNT: the kernel's estimate of its input pool, in bits."""
        out = fcntl.ioctl(self._fd, RNDGETENTCNT, struct.pack("i", 0))
        return int(struct.unpack("i", out)[0])

    def add_entropy(self, data: bytes, credit_bits: int) -> None:
        """RNDADDENTROPY: mix data in and credit the kernel credit_bits (<= 8 * len(data))."""
        if not 0 <= credit_bits <= 8 * len(data):
            raise ValueError("credit must be between 0 and 8 bits per byte")
        request = struct.pack("ii", credit_bits, len(data)) + data
        fcntl.ioctl(self._fd, RNDADDENTROPY, request)


def check_capability(path: str = RANDOM_DEVICE) -> None:
    """UsageError unless this process may credit the kernel (CAP_SYS_ADMIN), tested by an
    empty RNDADDENTROPY that changes nothing."""
    try:
        kernel = KernelRandom(path)
    except OSError as exc:
        raise UsageError(f"--feed-kernel: cannot open {path}: {exc.strerror or exc}") from None
    try:
        kernel.add_entropy(b"", 0)
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            raise UsageError(
                "--feed-kernel needs CAP_SYS_ADMIN to credit the kernel (run as root, or install "
                "the service: chaos-host service install --system)"
            ) from None
        raise UsageError(f"--feed-kernel: RNDADDENTROPY on {path} failed: {exc.strerror or exc}") from None
    finally:
        kernel.close()


@dataclass
class FeedStats:
    """What the feeder did; shown in the live view, JSON, the dashboard and /metrics."""

    bytes_fed: int = 0
    bits_credited: int = 0
    writes: int = 0
    skipped_no_credit: int = 0
    entropy_count: int | None = None
    last_error: str = ""
    last_write: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data (no pool secrets: counts only)."""
        return {
            "bytes_fed": self.bytes_fed,
            "bits_credited": self.bits_credited,
            "writes": self.writes,
            "skipped_no_credit": self.skipped_no_credit,
            "entropy_count": self.entropy_count,
            "last_error": self.last_error,
            "last_write": self.last_write,
        }


class KernelFeeder:
    """Draws from an Engine's pool and feeds the kernel at the configured pace."""

    def __init__(
        self,
        engine: Any,
        settings: FeedSettings | None = None,
        kernel_factory: Callable[[], KernelRandom] = KernelRandom,
    ) -> None:
        self.engine = engine
        self.settings = settings or FeedSettings()
        self.stats = FeedStats()
        self._kernel_factory = kernel_factory
        self._kernel: KernelRandom | None = None
        self._task: asyncio.Task[None] | None = None

    def status(self) -> dict[str, Any]:
        """The feed's counters, for the engine snapshot."""
        return self.stats.as_dict() | {"interval": self.settings.interval, "budget_bytes": self.settings.budget_bytes}

    async def start(self) -> None:
        """Open /dev/random and start feeding in the background."""
        self._kernel = self._kernel_factory()
        self._task = asyncio.create_task(self._loop(), name="kernel-feed")

    async def stop(self) -> None:
        """Stop feeding and close /dev/random."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._kernel is not None:
            self._kernel.close()
            self._kernel = None

    async def _loop(self) -> None:
        while True:
            self.feed_once()
            await asyncio.sleep(self.settings.interval)

    def feed_once(self) -> int:
        """One interval's feeding; returns the bits credited to the kernel."""
        kernel = self._kernel
        if kernel is None:
            return 0
        try:
            self.stats.entropy_count = kernel.entropy_count()
        except OSError as exc:
            self.stats.last_error = f"RNDGETENTCNT: {exc.strerror or exc}"
            return 0
        want = self.settings.budget_bytes
        if self.stats.entropy_count < self.settings.watermark_bits:
            want += self.settings.refill_bytes
        healthy = self.engine.healthy_credited_bits()
        n_bytes = min(want, int(healthy // 8), MAX_BYTES_PER_WRITE)
        if n_bytes <= 0:
            if want:
                self.stats.skipped_no_credit += 1
            return 0
        states = self.engine.source_states()
        draw = self.engine.pool.draw(n_bytes, purpose=PURPOSE)
        from_healthy = sum(bits for name, bits in draw.debited.items() if states.get(name, {}).get("state") == "ok")
        credit = min(8 * n_bytes, int(math.floor(from_healthy)))
        try:
            kernel.add_entropy(draw.data, credit)
        except OSError as exc:
            self.stats.last_error = f"RNDADDENTROPY: {exc.strerror or exc}"
            return 0
        self.stats.bytes_fed += n_bytes
        self.stats.bits_credited += credit
        self.stats.writes += 1
        self.stats.last_write = time.time()
        self.stats.last_error = ""
        return credit
