"""The collector's MQTT side: subscribe to every host, verify every message, store what passes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import aiomqtt

from chaosmagnet.mesh.client import MeshConnection
from chaosmagnet.mesh.collector.store import FleetStore
from chaosmagnet.mesh.credentials import ClientCredentials
from chaosmagnet.mesh.messages import Accepted, MessageVerifier
from chaosmagnet.mesh.topics import subscription
from chaosmagnet.mesh.url import BrokerURL

FLUSH_SECONDS = 0.2
PURGE_SECONDS = 60.0


class Collector:
    """Verifies and stores a mesh's host messages; the web side reads ``store`` and ``figures()``."""

    def __init__(
        self,
        credentials: ClientCredentials,
        url: BrokerURL,
        store: FleetStore,
        *,
        offline_after: float = 30.0,
    ) -> None:
        self.credentials = credentials
        self.mesh = credentials.mesh
        self.store = store
        self.offline_after = offline_after
        self.verifier = MessageVerifier(self.mesh, None, pins=store.pins())
        self.started = time.time()
        self.received = 0
        self.ignored: Counter[str] = Counter()
        self.connection = MeshConnection(credentials, url, self._on_message, self._on_connected, name="collector")
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Connect and start the flush and purge loops."""
        self.connection.start()
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="collector-flush"),
            asyncio.create_task(self._purge_loop(), name="collector-purge"),
        ]

    async def stop(self) -> None:
        """Disconnect, flush, close the database."""
        await self.connection.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.store.close()

    async def _on_connected(self, client: aiomqtt.Client) -> None:
        # identities first, so that retained statuses find the key that verifies them
        await client.subscribe(subscription(self.mesh, "identity"), qos=1)
        await client.subscribe(subscription(self.mesh, "status"), qos=1)
        await client.subscribe(subscription(self.mesh, "events"), qos=1)

    def _on_message(self, topic: str, payload: bytes) -> None:
        self.receive(topic, payload, time.time())

    def receive(self, topic: str, payload: bytes, received: float) -> None:
        """Verify one message and queue what it says for the database (never raises for a peer's bytes)."""
        self.received += 1
        verdict = self.verifier.feed(topic, payload)
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
