"""The collector's MQTT side: subscribe to every host, verify every message, store what passes.

Every message is verified (ML-DSA-65: 40-70 µs with the pqclean backend, 170-250
µs with OpenSSL, plus parsing): with ``verify_workers`` > 0 the structure and
signature checks of statuses and events run in that many worker processes
(collector/workers.py), in chunks, while this process keeps
the stateful rest (identities and pins, the replay rule, counts, the database)
and applies the verdicts strictly in arrival order.  Identities, unknown
senders and anything a worker could not decide are checked here, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter, deque
from typing import Any

import aiomqtt

from chaosmagnet.mesh.collector.store import FleetStore
from chaosmagnet.mesh.collector.workers import VerifyPool
from chaosmagnet.mesh.messages import Accepted, CheckedMessage, Dropped, MessageVerifier
from chaosmagnet.mqtt.client import MeshConnection
from chaosmagnet.mqtt.credentials import ClientCredentials
from chaosmagnet.mqtt.topics import subscription
from chaosmagnet.mqtt.url import BrokerURL

FLUSH_SECONDS = 0.2
PURGE_SECONDS = 60.0
CHUNK_MESSAGES = 16  # messages per worker call at most (about 90 KB: two fit a pipe's buffer)


def default_verify_workers() -> int:
    """One verify worker per core this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_Pending = tuple[str, bytes, float, "bytes | None"]  # topic, payload, received, audit key (None: check here)


class Collector:
    """Verifies and stores a mesh's host messages; the web side reads ``store`` and ``figures()``."""

    def __init__(
        self,
        credentials: ClientCredentials,
        url: BrokerURL,
        store: FleetStore,
        *,
        offline_after: float = 30.0,
        verify_workers: int = 0,
    ) -> None:
        self.credentials = credentials
        self.mesh = credentials.mesh
        self.store = store
        self.offline_after = offline_after
        self.verifier = MessageVerifier(self.mesh, None, pins=store.pins())
        self.started = time.time()
        self.received = 0
        self.ignored: Counter[str] = Counter()
        self.verify_workers = verify_workers
        self.connection = MeshConnection(credentials, url, self._on_message, self._on_connected, name="collector")
        self._tasks: list[asyncio.Task[None]] = []
        self._pool: VerifyPool | None = None
        self._waiting: deque[_Pending] = deque()  # received, not yet sent to a worker
        self._in_flight: deque[tuple[list[_Pending], asyncio.Future[list[CheckedMessage]] | None]] = deque()
        self._wake: asyncio.Event | None = None

    async def start(self, *, connect: bool = True) -> None:
        """Start the verify workers, connect (unless told not to: then only what
        ``_on_message`` is handed is verified), and start the flush and purge loops."""
        self._wake = asyncio.Event()
        if self.verify_workers > 0:
            self._pool = VerifyPool(self.mesh, self.verify_workers)
            self._pool.start()  # every worker now, not on the first messages
            self._tasks.append(asyncio.create_task(self._verify_loop(), name="collector-verify"))
        if connect:
            self.connection.start()
        self._tasks += [
            asyncio.create_task(self._flush_loop(), name="collector-flush"),
            asyncio.create_task(self._purge_loop(), name="collector-purge"),
        ]

    async def stop(self) -> None:
        """Disconnect, verify what was received, flush, close the database."""
        await self.connection.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for chunk, future in self._in_flight:  # what the workers were checking: here, in order
            if future is not None:
                future.cancel()
            for topic, payload, received, _ in chunk:
                self.receive(topic, payload, received)
        self._in_flight.clear()
        while self._waiting:
            topic, payload, received, _ = self._waiting.popleft()
            self.receive(topic, payload, received)
        if self._pool is not None:
            self._pool.stop()
            self._pool = None
        self.store.close()

    async def _on_connected(self, client: aiomqtt.Client) -> None:
        # identities first, so that retained statuses find the key that verifies them
        await client.subscribe(subscription(self.mesh, "identity"), qos=1)
        await client.subscribe(subscription(self.mesh, "status"), qos=1)
        await client.subscribe(subscription(self.mesh, "events"), qos=1)

    def _on_message(self, topic: str, payload: bytes) -> None:
        if self._pool is None:
            self.receive(topic, payload, time.time())
            return
        self._waiting.append((topic, payload, time.time(), self.verifier.key_for(topic)))
        if self._wake is not None:
            self._wake.set()

    async def _verify_loop(self) -> None:
        """Send waiting messages to idle workers in chunks; apply the verdicts in arrival order."""
        assert self._wake is not None and self._pool is not None
        pool = self._pool
        while True:
            while self._waiting and (pool.idle() or self._waiting[0][3] is None):
                chunk = self._next_chunk(max(1, min(CHUNK_MESSAGES, -(-len(self._waiting) // self.verify_workers))))
                if chunk[0][3] is None:  # checked here, in order
                    self._in_flight.append((chunk, None))
                    continue
                self._in_flight.append((chunk, pool.submit([(topic, payload, key) for topic, payload, _, key in chunk])))
            if not self._in_flight:
                if self._waiting and not pool.alive():  # every worker is gone: check here
                    self._in_flight.append((self._next_chunk(len(self._waiting)), None))
                    continue
                self._wake.clear()
                await self._wake.wait()
                continue
            chunk, future = self._in_flight[0]
            if future is not None and not future.done():
                # Wait for the oldest chunk only: what arrives meanwhile queues up and goes out
                # as bigger chunks when it is done (one wake per chunk, not one per message).
                await asyncio.wait({future})
                continue
            self._in_flight.popleft()
            checked = None if future is None or future.cancelled() or future.exception() else future.result()
            for i, (topic, payload, received, _) in enumerate(chunk):
                if checked is None:  # checked here, or its worker was lost
                    self.receive(topic, payload, received)
                else:
                    self.received += 1
                    self._store(self.verifier.feed_checked(topic, payload, checked[i]), received)

    def _next_chunk(self, size: int) -> list[_Pending]:
        """Up to ``size`` waiting messages for one worker; a message to check here goes alone."""
        chunk: list[_Pending] = []
        while self._waiting and len(chunk) < size:
            item = self._waiting.popleft()
            if item[3] is None and chunk:  # checked here: it closes the chunk before it
                self._waiting.appendleft(item)
                break
            chunk.append(item)
            if item[3] is None:
                break
        return chunk

    def receive(self, topic: str, payload: bytes, received: float) -> None:
        """Verify one message and queue what it says for the database (never raises for a peer's bytes)."""
        self.received += 1
        self._store(self.verifier.feed(topic, payload), received)

    def _store(self, verdict: Accepted | Dropped, received: float) -> None:
        if not isinstance(verdict, Accepted):
            return
        sender = verdict.sender
        fingerprint = self.verifier.peers[sender].fingerprint
        if verdict.kind == "identity":
            self.store.add_identity(sender, fingerprint, received)
        elif verdict.kind == "status":
            self.store.add_status(sender, fingerprint, verdict.time, received, verdict.body)
        elif verdict.kind == "event":
            self.store.add_event(sender, verdict.time, received, verdict.body)
        else:
            self.ignored[verdict.kind] += 1

    def forget(self, label: str) -> bool:
        """Forget a host and its pin (after it was re-keyed on purpose)."""
        self.verifier.pins.pop(label, None)
        self.verifier.peers.pop(label, None)
        return self.store.forget(label)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.store.flush()

    async def _purge_loop(self) -> None:
        while True:
            self.store.purge()
            await asyncio.sleep(PURGE_SECONDS)

    def fleet(self) -> dict[str, Any]:
        """Everything the fleet page shows."""
        now = time.time()
        hosts = self.store.hosts()
        for host in hosts:
            age = now - host["last_seen"]
            host["age"] = age
            host["shown_state"] = (
                "offline" if host["state"] == "offline" else "stale" if age > self.offline_after else host["state"]
            )
        return {
            "mesh": self.mesh,
            "time": now,
            "broker": {"state": self.connection.state, "url": str(self.connection.url)},
            "hosts": hosts,
            "alerts": self.store.alerts(),
            "events": self.store.events(20),
            "collector": self.figures(),
        }

    def figures(self) -> dict[str, Any]:
        """The collector's own counters."""
        counts = self.store.counts
        return {
            "uptime": time.time() - self.started,
            "messages_received": self.received,
            "accepted": dict(self.verifier.accepted),
            "dropped": dict(sorted(self.verifier.drops.items())),
            "status_rows": counts.status_rows,
            "source_rows": counts.source_rows,
            "event_rows": counts.event_rows,
            "alert_rows": counts.alert_rows,
            "retention_seconds": self.store.retention_seconds,
        }
