"""Node frames become pipeline sources: ``node:<label>:<adc|rng|jitter>``.

One NodeConnection per node owns its transport (serial, or BLE for a ``ble:`` link), the
handshake and session of each connection and the frame parser above it, and
hands each DATA frame's samples to the matching NodeSource.  Nothing reaches
a source before the connection's handshake verified: frames that are not
tagged under this connection's session key are dropped with a reason.  The sources are
push-style: ``batches()`` waits on a queue the link fills.  The host re-tests
every sample itself (the engine's RCT/APT); the node's own verdict (its
counters and flags) is shown in ``details()`` and never relied on.

ADC frames carry 12-bit readings as 16-bit words; the pipeline takes their
low 8 bits, where the noise is (the high bits are the DC level).

Each connection reports a link state (``link_state``, with ``link_reason``):
``waiting`` (no port, not found, or the device behind the path is not this
node's: chaosmagnet.nodes.ports), ``handshake`` (port open, hello sent, no
verified answer yet), ``linked`` (this connection's handshake verified and
frames arriving), ``lost`` (was linked; the port went away or frames stopped,
until a new handshake verifies).  While a node is not linked its sources say
so (``waiting_reason``) and the engine shows them as ``waiting``, uncredited,
never as ``ok``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import numpy as np

from chaosmagnet.errors import UsageError, escape_device_text
from chaosmagnet.nodes.boards import SOURCE_NAMES
from chaosmagnet.nodes.parser import Drop, FrameParser
from chaosmagnet.nodes.ports import PortGuard, PortLister, list_serial_ports
from chaosmagnet.nodes.protocol import Frame, FrameType, SourceId, decode_heartbeat
from chaosmagnet.nodes.registry import NodeRecord, NodeRegistry, remember_boot_counter
from chaosmagnet.nodes.transport import Transport, open_link
from chaosmagnet.sources.base import Source, SourceInfo

QUEUE_BATCHES = 512  # frames buffered per source before the oldest is dropped
MERGE_SAMPLES = 64 * 1024  # queued frames handed to the engine as one batch, up to this many samples
_SOURCE_IDS = {"adc": SourceId.ADC, "rng": SourceId.RNG, "jitter": SourceId.JITTER}
_DEFAULT_H = {"adc": 1.0, "rng": 7.0, "jitter": 0.2}
LINK_STATES = ("waiting", "handshake", "linked", "lost")

LinkFactory = Callable[..., Transport]
FrameListener = Callable[[Frame], None]
BootStore = Callable[[NodeRecord, int], None]
HANDSHAKE_RETRY_S = 2.0  # no answer to hello within this long: a new hello, a new challenge
HANDSHAKE_RETRY_MAX_S = 30.0  # ...doubling for each unanswered one, up to this (an answer resets it)
_BEFORE_FIRST_LINK = ("waiting", "scanning", "connecting")
SILENCE_S = 5.0  # no verified frame for this long while linked: lost, handshake again
STALE_SECONDS = SILENCE_S  # the default of NodeConnection.stale_seconds (heartbeats are 1 s)


def device_scalar(value: Any) -> bool | int | float | str | None:
    """A scalar a node reported, safe to show: numbers as they are, text escaped, else None."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return escape_device_text(value) if isinstance(value, str) else None


_STATUS_DEPTH = 4  # a STATUS is 3 levels deep: {"sources": [{...}]}


def _bounded(value: Any, depth: int = 0) -> Any:
    """A copy of device JSON at most _STATUS_DEPTH levels deep (deeper parts become None),
    so that printing or re-serialising it can never recurse without bound."""
    if isinstance(value, dict):
        if depth >= _STATUS_DEPTH:
            return None
        return {str(k): _bounded(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_bounded(v, depth + 1) for v in value] if depth < _STATUS_DEPTH else None
    return value


def samples_from_frame(frame: Frame) -> np.ndarray:
    """The frame's samples as uint8 (the low 8 bits of wider samples)."""
    if frame.sample_width == 2:
        words = np.frombuffer(frame.payload, dtype="<u2")
        return (words & 0xFF).astype(np.uint8)
    return np.frombuffer(frame.payload, dtype=np.uint8).copy()


class NodeConnection:
    """One node's transport, handshake, parser, per-source queues and last reported state.

    ``link_state`` is ``waiting`` (no connection yet, or the port check refused
    it; a BLE link refines it to ``scanning`` or ``connecting``), ``handshake``
    (hello sent, no verified answer), ``linked`` (this connection's handshake
    verified, verified frames within ``stale_seconds``) or ``lost`` (was
    linked; the connection went away or fell silent, until a new handshake
    verifies); ``link_reason`` says why it is not linked.  ``linked`` is only
    ever set by a verified handshake.  ``boot_store`` remembers a newly
    accepted boot counter (by default in the node registry).
    """

    def __init__(
        self,
        record: NodeRecord,
        *,
        link_factory: LinkFactory = open_link,
        boot_store: BootStore | None = remember_boot_counter,
        port_lister: PortLister = list_serial_ports,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.record = record
        self.parser = FrameParser({record.node_id: record.key}, {record.node_id: record.boot_counter})
        self.session = self.parser.session(record.node_id)
        self.port_guard = PortGuard(record, port_lister)
        self.link = link_factory(
            record.link,
            self._on_bytes,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            check_port=self.port_guard.check,
        )
        self.link_state = "waiting"  # LINK_STATES
        self.link_reason = "opening the link"
        self.stale_seconds = STALE_SECONDS
        self._clock = clock
        self._ever_linked = False
        self.queues: dict[SourceId, asyncio.Queue[np.ndarray | None]] = {}
        self.node_health: dict[SourceId, dict[str, Any]] = {}
        self.status: dict[str, Any] | None = None
        self.heartbeat: dict[str, int] | None = None
        self.replies: deque[str] = deque(maxlen=16)
        self.queue_overflows = 0
        self.hellos = 0
        self._boot_store = boot_store
        self._hello_at = 0.0
        self._hello_retry = HANDSHAKE_RETRY_S
        self._frame_at = 0.0
        self._users: set[object] = set()
        self._frame_listeners: list[FrameListener] = []
        self._task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def verified(self) -> bool:
        """This connection's handshake verified (the node answered our challenge)."""
        return self.link_state == "linked"

    # -- lifetime: the link runs while any of the node's sources runs -----
    def queue_for(self, source: SourceId) -> asyncio.Queue[np.ndarray | None]:
        """The queue DATA frames of this source go to."""
        if source not in self.queues:
            self.queues[source] = asyncio.Queue(QUEUE_BATCHES)
        return self.queues[source]

    async def acquire(self, user: object) -> None:
        """A source starts: open the link if it is the first."""
        self._users.add(user)
        if self._task is None:
            self._task = asyncio.create_task(self.link.run(), name=f"node-link:{self.record.label}")
            self._watchdog = asyncio.create_task(
                self._watch(), name=f"node-handshake:{self.record.label}"
            )

    async def release(self, user: object) -> None:
        """A source stops: close the link after the last one."""
        self._users.discard(user)
        if not self._users and self._task is not None:
            task, self._task = self._task, None
            watchdog, self._watchdog = self._watchdog, None
            if watchdog is not None:
                watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watchdog
            self.link.close()
            await task

    async def _watch(self) -> None:
        """Repeat an unanswered hello; handshake again when a linked node falls silent
        (for ``stale_seconds``: it is ``lost`` until the new handshake verifies)."""
        while True:
            await asyncio.sleep(0.25)
            if not self.link.is_open:
                if self.link_state in _BEFORE_FIRST_LINK:  # a BLE link says how far it got
                    state = getattr(self.link, "state", "")
                    self.link_state = state if state in _BEFORE_FIRST_LINK else "waiting"
                continue
            self.refresh_link_state()  # linked -> lost after stale_seconds of silence
            self.retry_hello()

    def retry_hello(self) -> bool:
        """Send a new hello when the last one went unanswered for the retry interval (e.g. the
        node rebooted without dropping the port); the interval doubles for each unanswered
        hello, so a host that is behind on its input does not restart every session it has
        not yet read the answer of.  True when a hello was sent."""
        if self.link_state not in ("handshake", "lost") or self._clock() - self._hello_at <= self._hello_retry:
            return False
        if self.hellos:
            self._hello_retry = min(2 * self._hello_retry, HANDSHAKE_RETRY_MAX_S)
        self._send_hello()
        return True

    # -- link callbacks -----------------------------------------------------
    def refresh_link_state(self) -> str:
        """Bring ``link_state``/``link_reason`` up to date with the link and the frames seen.

        Never sets ``linked`` (only a verified handshake does) and leaves
        ``handshake`` alone while the link is open."""
        if self.link.is_open:
            if self.link_state == "linked":
                if self._clock() - self._frame_at > self.stale_seconds:
                    self.link_state = "lost"
                    self.link_reason = f"no frames for {self.stale_seconds:g} s"
                else:
                    self.link_reason = ""
            elif self.link_state == "waiting":
                self.link_reason = "port open, no handshake yet"
            return self.link_state
        refusal = getattr(self.link, "refusal", "")
        if getattr(self.link, "wrong_device", False):
            self.link_state, self.link_reason = "waiting", refusal
        elif self._ever_linked:
            self.link_state, self.link_reason = "lost", refusal or "port closed"
        elif self.link.state == "idle":
            self.link_state, self.link_reason = "waiting", "opening the link"
        else:
            state = getattr(self.link, "state", "")  # a BLE link says how far it got
            self.link_state = state if state in _BEFORE_FIRST_LINK else "waiting"
            self.link_reason = refusal or getattr(self.link, "last_error", "") or "no port"
        return self.link_state

    def _send_hello(self) -> None:
        self._hello_at = self._clock()
        self.hellos += 1
        self.link.write(self.session.hello())

    def _on_connect(self) -> None:
        self._hello_retry = HANDSHAKE_RETRY_S  # a new connection: answered promptly or retried soon
        self.parser.reset_stream()
        self.link_state, self.link_reason = "handshake", "hello sent, no verified answer yet"
        self._send_hello()

    def _on_disconnect(self) -> None:
        self.parser.reset_stream()
        self.link_state = "lost" if self._ever_linked else "waiting"
        self.link_reason = "port closed"

    def send_command(self, line: str) -> bool:
        """Send one command (start/stop SRC, rate SRC N, status, ping, quiet, reboot),
        authenticated under this connection's session key; False before the handshake."""
        if self.session.session_key is None:
            return False
        return self.link.write(self.session.command(line.strip()))

    def add_frame_listener(self, listener: FrameListener) -> None:
        """Call listener with every verified frame of this connection, in order, after the
        connection handled it (a restart campaign watches handshakes and DATA frames)."""
        self._frame_listeners.append(listener)

    def remove_frame_listener(self, listener: FrameListener) -> None:
        """Stop calling listener."""
        with contextlib.suppress(ValueError):
            self._frame_listeners.remove(listener)

    def _on_bytes(self, data: bytes) -> None:
        for event in self.parser.feed(data):
            if isinstance(event, Drop):
                continue  # counted by the parser
            self._on_frame(event)
            for listener in self._frame_listeners:
                listener(event)

    def _on_handshake(self) -> None:
        self._hello_retry = HANDSHAKE_RETRY_S
        self.link_state, self.link_reason = "linked", ""
        self._ever_linked = True
        counter = self.session.boot_counter
        if counter is not None and counter > self.record.boot_counter:
            self.record = replace(self.record, boot_counter=counter)
            store = self._boot_store
            if store is not None:
                record = self.record
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    store(record, counter)
                else:
                    loop.run_in_executor(None, store, record, counter)

    def _on_frame(self, frame: Frame) -> None:
        self._frame_at = self._clock()
        if frame.type is FrameType.HANDSHAKE:
            self._on_handshake()
        elif frame.type is FrameType.DATA:
            self.node_health[frame.source] = {
                "failing": frame.health_failed,
                "samples": frame.samples,
                "rct_failures": frame.rct_failures,
                "apt_failures": frame.apt_failures,
            }
            queue = self.queues.get(frame.source)
            if queue is None:
                return
            if queue.full():
                queue.get_nowait()
                self.queue_overflows += 1
            queue.put_nowait(samples_from_frame(frame))
        elif frame.type is FrameType.STATUS:
            try:
                status = json.loads(frame.payload.decode("utf-8"))
            except (ValueError, RecursionError):  # not JSON, or nested too deeply
                return
            if isinstance(status, dict):
                self.status = _bounded(status)
        elif frame.type is FrameType.HEARTBEAT:
            self.heartbeat = decode_heartbeat(frame.payload)
        elif frame.type is FrameType.REPLY:
            self.replies.append(escape_device_text(frame.payload))

    def summary(self) -> dict[str, Any]:
        """Link and parser state for details() and `nodes status`."""
        self.refresh_link_state()
        return {
            "port": getattr(self.link, "opened_port", "") or self.record.link,
            "link": self.link.state,
            "link_state": self.link_state,
            "link_reason": self.link_reason,
            "serial_number": self.record.serial_number,
            "connects": self.link.connects,
            "link_error": str(getattr(self.link, "last_error", "")),  # e.g. no Bluetooth adapter
            "verified": self.verified,
            "handshakes": self.session.handshakes,
            "boot_counter": self.session.boot_counter,
            "frames": self.parser.frames_accepted,
            "lost_frames": self.parser.lost_frames,
            "drops": {reason.value: n for reason, n in self.parser.drops.items()},
            "queue_overflows": self.queue_overflows,
            "firmware": escape_device_text(str(self.status.get("fw", ""))) if self.status else "",
            "uptime_s": self.heartbeat["uptime_s"] if self.heartbeat else None,
        }

    def source_status(self, name: str) -> dict[str, Any]:
        """What the node says about one of its sources (cutoffs, rate), from STATUS."""
        if not self.status:
            return {}
        entries = self.status.get("sources")
        if not isinstance(entries, list):
            return {}
        for entry in entries:
            if isinstance(entry, dict) and entry.get("name") == name:
                keep = ("on", "rate", "h", "rct_cutoff", "apt_cutoff", "apt_window")
                return {k: device_scalar(entry[k]) for k in keep if k in entry}
        return {}


class NodeSource(Source):
    """One source of one node, fed by its NodeConnection."""

    def __init__(self, connection: NodeConnection, source: str, declared_h: float) -> None:
        if source not in _SOURCE_IDS:
            raise UsageError(f"unknown node source {source!r}")
        self.connection = connection
        self.source_id = _SOURCE_IDS[source]
        label = connection.record.label
        self.info = SourceInfo(
            name=f"node:{label}:{source}",
            kind="node",
            bits_per_sample=8,
            declared_h=min(float(declared_h), 8.0),
            conditioned=source == "rng",
            description={
                "adc": "low 8 bits of raw 12-bit ADC readings (ADC1, 0 dB) from the node",
                "rng": "ESP32-S3 hardware RNG (esp_random, radio on): vendor-conditioned",
                "jitter": "low 8 bits of ticks_cpu() deltas on the node",
            }[source],
        )
        self._queue = connection.queue_for(self.source_id)
        self._running = False

    async def start(self) -> None:
        self._running = True
        await self.connection.acquire(self)

    def waiting_reason(self) -> str | None:
        """None while the node is linked; otherwise its link state and why."""
        conn = self.connection
        state = conn.refresh_link_state()
        if state == "linked":
            return None
        return f"link {state}: {conn.link_reason}" if conn.link_reason else f"link {state}"

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)  # wakes batches() so it returns
        await self.connection.release(self)

    async def batches(self) -> AsyncIterator[np.ndarray]:
        """Each frame's samples as they come; frames that queued up meanwhile as one batch
        (in order, at most MERGE_SAMPLES): a host that fell behind catches up with fewer calls."""
        queue = self._queue
        while self._running:
            batch = await queue.get()
            if batch is None:
                break
            ended = False
            if not queue.empty():
                parts, size = [batch], batch.size
                while not queue.empty() and size < MERGE_SAMPLES:
                    more = queue.get_nowait()
                    if more is None:
                        ended = True
                        break
                    parts.append(more)
                    size += more.size
                batch = np.concatenate(parts)
            yield batch
            if ended:
                break

    def details(self) -> dict[str, object]:
        conn = self.connection
        details: dict[str, object] = dict(conn.summary())
        details["node_health"] = conn.node_health.get(self.source_id, {})  # shown, never relied on
        details["node_declared"] = conn.source_status(self.source_id.label)
        return details


def build_node_sources(
    record: NodeRecord,
    *,
    link_factory: LinkFactory = open_link,
    boot_store: BootStore | None = remember_boot_counter,
) -> list[Source]:
    """The adc, rng and jitter sources of one registered node, sharing one connection."""
    connection = NodeConnection(record, link_factory=link_factory, boot_store=boot_store)
    sources: list[Source] = []
    for name in SOURCE_NAMES:
        h = float(record.declared.get(name, {}).get("h", _DEFAULT_H[name]))
        sources.append(NodeSource(connection, name, h))
    return sources


def resolve_nodes(
    specs: list[str] | None, registry: NodeRegistry | None = None
) -> list[NodeRecord]:
    """The nodes `run --node` names: a LABEL, a registered link PATH, or LABEL@PATH
    (a registered node on another port).  None means every registered node."""
    registry = registry or NodeRegistry()
    if specs is None:
        return registry.nodes()
    records: list[NodeRecord] = []
    for spec in specs:
        label, at, port = spec.partition("@")
        if at:
            record = replace(registry.get(label), link=port)  # keeps its port identity
        else:
            found = registry.find(spec)
            if found is None:
                raise UsageError(
                    f"--node {spec!r}: no registered node has this label or port "
                    "(register it with `chaos-host nodes deploy` or `nodes add`, or use LABEL@PORT)"
                )
            record = found
        if any(r.label == record.label for r in records):
            raise UsageError(f"--node: node {record.label!r} given twice")
        records.append(record)
    return records


async def probe_node(
    record: NodeRecord, timeout: float = 3.0, *, link_factory: LinkFactory = open_link
) -> dict[str, Any]:
    """Open the node's link, handshake, and return its STATUS and link counters.

    Waits until this connection's handshake verified and a STATUS arrived, or
    until timeout; the result says which (``verified``).
    """
    connection = NodeConnection(record, link_factory=link_factory)
    token = object()
    await connection.acquire(token)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and not (connection.verified and connection.status):
            await asyncio.sleep(0.05)
        link = connection.summary()  # the link as the probe found it, before closing it
    finally:
        await connection.release(token)
    return {
        "link": link,
        "status": connection.status,
        "replies": list(connection.replies),
    }
