"""Restarting a node: the authenticated ``reboot``, the next boot's handshake, its first samples.

Per restart: the node's live session reports boot counter N; the restarter
sends ``reboot`` tagged under the session key (a board calls machine.reset(),
the simulator starts a new Node with a new boot nonce and N + 1), waits until
a handshake of this connection verifies with boot counter N + 1, and takes
the first samples of the source from DATA frames of that session.

"First" is checked, not assumed: every DATA frame carries the node's count
of that source's samples since boot, and the frames taken must count
1..samples without a gap.  Anything else (another boot counter, e.g. a
brown-out reset or a second reboot; a frame lost on the way; the node
handshaken again in the middle; no new boot in time) and the restart is done
again, and said so (the ``notice`` callback, and ``redone`` in the side
file).  One code path for serial, BLE and MQTT alike: the registry's link
names the transport (chaosmagnet.nodes.transport.open_link), and the node
connection owns the handshake above it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from chaosmagnet.campaign.runner import Restarter, RestartRecord
from chaosmagnet.errors import SourceError, UsageError
from chaosmagnet.nodes.protocol import Frame, FrameType, SourceId
from chaosmagnet.nodes.registry import NodeRecord
from chaosmagnet.nodes.sources import NodeConnection, samples_from_frame

__all__ = ["NODE_SOURCES", "NodeRestarter", "parse_node_source"]

NODE_SOURCES = {"adc": SourceId.ADC, "rng": SourceId.RNG, "jitter": SourceId.JITTER}
ATTEMPTS = 5  # reboots tried for one restart before the campaign stops
ATTEMPT_SECONDS = 30.0  # one reboot: the new boot's handshake and its first samples within this long

Notice = Callable[[str], None]


def parse_node_source(spec: str) -> tuple[str, str]:
    """(label, source) of ``node:LABEL:SRC``; UsageError for anything else."""
    parts = spec.split(":")
    if len(parts) != 3 or parts[0] != "node" or not parts[1]:
        raise UsageError(f"{spec!r}: a node source is node:LABEL:SRC (SRC: {' | '.join(NODE_SOURCES)})")
    if parts[2] not in NODE_SOURCES:
        raise UsageError(f"{spec!r}: unknown node source {parts[2]!r} (known: {', '.join(NODE_SOURCES)})")
    return parts[1], parts[2]


@dataclass
class _Attempt:
    """One reboot and what came back from it."""

    base: int  # the boot counter before the reboot (N)
    wanted: int
    done: asyncio.Event = field(default_factory=asyncio.Event)
    session_id: bytes | None = None  # the session of boot N + 1 whose frames are taken
    handshakes: int = 0  # handshakes of boot N + 1 seen
    handshake_at: float | None = None
    chunks: list[np.ndarray] = field(default_factory=list)
    got: int = 0
    failure: str | None = None

    def fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
        self.done.set()


class NodeRestarter(Restarter):
    """Reboot a registered node by its authenticated command and take the first samples of each boot."""

    kind = "node"

    def __init__(
        self,
        connection: NodeConnection,
        source: str,
        *,
        timeout: float = 120.0,
        attempt_seconds: float = ATTEMPT_SECONDS,
        attempts: int = ATTEMPTS,
        notice: Notice | None = None,
    ) -> None:
        if source not in NODE_SOURCES:
            raise UsageError(f"unknown node source {source!r} (known: {', '.join(NODE_SOURCES)})")
        self.connection = connection
        self.source = source
        self.source_id = NODE_SOURCES[source]
        self.timeout = timeout
        self.attempt_seconds = attempt_seconds
        self.attempts = attempts
        self.notice = notice
        self.redone = 0  # restarts done again, over the campaign
        self._attempt: _Attempt | None = None
        self._opened = False

    @classmethod
    def for_record(
        cls, record: NodeRecord, source: str, *, timeout: float = 120.0, notice: Notice | None = None
    ) -> NodeRestarter:
        """A restarter over a new connection to the registered node (its link names the transport)."""
        return cls(NodeConnection(record), source, timeout=timeout, notice=notice)

    @property
    def label(self) -> str:
        """The node's label."""
        return self.connection.record.label

    async def _open(self) -> None:
        if not self._opened:
            self._opened = True
            self.connection.add_frame_listener(self._on_frame)
            await self.connection.acquire(self)

    async def close(self) -> None:
        """Stop watching the node's frames and close its link."""
        if self._opened:
            self._opened = False
            self._attempt = None
            self.connection.remove_frame_listener(self._on_frame)
            await self.connection.release(self)

    def _on_frame(self, frame: Frame) -> None:
        attempt = self._attempt
        if attempt is None or attempt.done.is_set():
            return
        if frame.type is FrameType.HANDSHAKE:
            counter = self.connection.session.boot_counter
            if counter == attempt.base:
                return  # the same boot handshaken again: the reboot is still to come
            if counter != attempt.base + 1:
                attempt.fail(f"the node came back with boot counter {counter}, expected {attempt.base + 1}")
                return
            attempt.handshakes += 1
            attempt.session_id = self.connection.session.session_id
            if attempt.handshake_at is None:
                attempt.handshake_at = asyncio.get_running_loop().time()
            return
        if (
            frame.type is not FrameType.DATA
            or frame.source is not self.source_id
            or attempt.session_id is None
            or frame.session_id != attempt.session_id
        ):
            return
        samples = samples_from_frame(frame)
        if frame.samples != attempt.got + len(samples):  # the node's own count since boot
            attempt.fail(
                f"boot {attempt.base + 1}: the {self.source} frame here ends at the node's sample "
                f"{frame.samples}, expected {attempt.got + len(samples)} (earlier samples of this boot "
                + ("were lost on the link)" if attempt.handshakes == 1 else "went to an earlier handshake)")
            )
            return
        attempt.chunks.append(samples)
        attempt.got += len(samples)
        if attempt.got >= attempt.wanted:
            attempt.done.set()

    async def _until_linked(self, deadline: float, index: int) -> int:
        """Wait for a verified session; its boot counter.  SourceError at the deadline."""
        loop = asyncio.get_running_loop()
        conn = self.connection
        while not (conn.verified and conn.session.session_key is not None and conn.session.boot_counter is not None):
            if loop.time() >= deadline:
                state = conn.refresh_link_state()
                reason = f": {conn.link_reason}" if conn.link_reason else ""
                raise SourceError(
                    f"restart {index}: node {self.label} has no verified session "
                    f"within {self.timeout:g} s (link {state}{reason})"
                )
            await asyncio.sleep(0.02)
        return int(conn.session.boot_counter)  # type: ignore[arg-type]

    async def restart_and_collect(self, index: int, samples: int) -> RestartRecord:
        """Reboot the node, wait for boot N + 1, take its first samples (redone on anything else)."""
        await self._open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        reasons: list[str] = []
        for _ in range(self.attempts):
            base = await self._until_linked(deadline, index)
            attempt = _Attempt(base=base, wanted=samples)
            self._attempt = attempt
            sent_at = loop.time()
            try:
                if not self.connection.send_command("reboot"):
                    attempt.fail("the reboot command could not be sent (the link went down)")
                wait = max(0.0, min(self.attempt_seconds, deadline - sent_at))
                try:
                    await asyncio.wait_for(attempt.done.wait(), wait)
                except asyncio.TimeoutError:
                    attempt.fail(
                        f"no boot {base + 1} within {wait:g} s"
                        if attempt.session_id is None
                        else f"boot {base + 1} sent {attempt.got} of {samples} {self.source} samples in {wait:g} s"
                        + (f" (is {self.source} on? see `chaos-host nodes status`)" if not attempt.got else "")
                    )
            finally:
                self._attempt = None
            if attempt.failure is None:
                boot_s = (attempt.handshake_at or sent_at) - sent_at
                details: dict[str, object] = {"from_boot": base, "boot_seconds": round(boot_s, 3)}
                if reasons:
                    details["redone"] = reasons
                row = np.concatenate(attempt.chunks)[:samples]
                return RestartRecord(row, boot_counter=base + 1, details=details)
            reasons.append(attempt.failure)
            self.redone += 1
            if self.notice is not None:
                self.notice(f"restart {index}: {attempt.failure}; doing this restart again")
            if loop.time() >= deadline:
                break
        raise SourceError(
            f"restart {index}: node {self.label} gave no clean restart in {len(reasons)} reboots "
            f"({self.timeout:g} s): {reasons[-1]}"
        )
