"""Restarting a local source: a fresh process per restart (``chaosmagnet.campaign.child``).

Nothing survives from one restart to the next but what the operating system
keeps: the interpreter, the source's module state, its buffers and its C
kernels all start anew, as they do when `chaos-host run` starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import numpy as np

from chaosmagnet.campaign.runner import Restarter, RestartRecord
from chaosmagnet.errors import SourceError, escape_device_text

__all__ = ["LocalRestarter"]


class LocalRestarter(Restarter):
    """Start ``source`` in a new Python process for every restart and read its first samples."""

    kind = "local"

    def __init__(self, source: str, bits: int, *, config: Path | None = None, timeout: float = 120.0) -> None:
        self.source = source
        self.bits = bits
        self.config = config
        self.timeout = timeout

    async def restart_and_collect(self, index: int, samples: int) -> RestartRecord:
        """Run one child process; SourceError if it fails, times out or sends too little."""
        args = [sys.executable, "-m", "chaosmagnet.campaign.child", self.source, str(samples), str(self.bits)]
        if self.config is not None:
            args.append(str(self.config))
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except BaseException:  # timeout, cancellation, Ctrl-C: never leave the child behind
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(proc.wait(), 5.0)
            if isinstance(sys.exc_info()[1], asyncio.TimeoutError):
                raise SourceError(
                    f"restart {index}: {self.source} gave no {samples} samples in {self.timeout:g} s"
                ) from None
            raise
        if proc.returncode != 0:
            message = escape_device_text(err.decode("utf-8", "replace").strip().splitlines()[-1] if err.strip() else "")
            raise SourceError(f"restart {index}: the {self.source} process failed: {message or proc.returncode}")
        if len(out) != samples:
            raise SourceError(f"restart {index}: {self.source} sent {len(out)} of {samples} samples")
        return RestartRecord(np.frombuffer(out, dtype=np.uint8).copy(), None, {"pid": proc.pid})
