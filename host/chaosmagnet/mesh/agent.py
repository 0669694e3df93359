"""The host side of `chaos-host run --mesh`: status, events and peer seeds over MQTT.

Publishes, signed (messages.py), under ``chaosmagnet/<mesh>/host/<label>/``:

* ``identity`` (retained) once per connection;
* ``status`` (retained) every ``status_interval`` seconds: sources, health,
  credit and pool fill, never the pool state or a seed; the last will, set
  at connect, is a signed ``offline`` status;
* ``events``: health failures and source state changes as they happen;
* ``peer/<receiver>``: every ``seed_interval`` seconds, a seed drawn from the
  pool for each online peer, sealed to its KEM key (peerseed.py).

Receives peers' identities, statuses and the seeds addressed to it; opened
seeds go into the pool with credit 0, always, under ``mesh-peer:<label>``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiomqtt

from chaosmagnet.errors import ConfigError
from chaosmagnet.mesh.keys import MeshKeys
from chaosmagnet.mesh.messages import FINAL_COUNTER, Accepted, MessageSigner, MessageVerifier
from chaosmagnet.mesh.peerseed import MAX_SEED_BYTES, MIN_SEED_BYTES, open_seed, seal_seed
from chaosmagnet.mqtt.client import MeshConnection, cancel_and_wait
from chaosmagnet.mqtt.credentials import ClientCredentials
from chaosmagnet.mqtt.topics import host_topic, parse_topic, peer_topic, subscription
from chaosmagnet.mqtt.url import BrokerURL

PEER_SOURCE_PREFIX = "mesh-peer:"
_SOURCE_FIELDS = (
    "name",
    "kind",
    "state",
    "reason",
    "conditioned",
    "samples",
    "rate",
    "h_min",
    "h_assessed",
    "credit_h",
    "credited_bits",
    "rct_failures",
    "apt_failures",
)
_POOL_FIELDS = ("credited_bits", "capacity_bits", "fill", "raw_bytes", "drawn_bits")
_UNHEALTHY = ("quarantined", "failed", "error")


@dataclass(frozen=True)
class AgentSettings:
    """How often the agent speaks, and how large its peer seeds are."""

    status_interval: float = 5.0
    seed_interval: float = 10.0
    seed_bytes: int = 32

    def __post_init__(self) -> None:
        if not MIN_SEED_BYTES <= self.seed_bytes <= MAX_SEED_BYTES:
            raise ValueError(f"peer seeds have {MIN_SEED_BYTES}-{MAX_SEED_BYTES} bytes")
        if self.status_interval <= 0 or self.seed_interval <= 0:
            raise ValueError("intervals must be positive")

    @classmethod
    def from_table(cls, table: object, where: str = "[mesh]") -> AgentSettings:
        """Settings from chaos.toml's [mesh] table; ConfigError naming the key when it is wrong."""
        if table is None:
            return cls()
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        limits = {
            "status_interval": (0.1, 3600.0),
            "seed_interval": (0.1, 86400.0),
            "seed_bytes": (MIN_SEED_BYTES, MAX_SEED_BYTES),
        }
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in limits:
                raise ConfigError(f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(limits))})")
            low, high = limits[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ConfigError(f"{where}: {key} must be a number from {low:g} to {high:g}")
            if key == "seed_bytes" and not isinstance(value, int):
                raise ConfigError(f"{where}: seed_bytes must be an integer")
            values[key] = value
        return cls(**values)


def status_body(snapshot: dict[str, Any], mesh: dict[str, Any], state: str = "online") -> dict[str, Any]:
    """The status a host publishes: what its sources and pool do, never the pool's state."""
    sources = [{k: s.get(k) for k in _SOURCE_FIELDS} for s in snapshot["sources"]]
    unhealthy = [s["name"] for s in sources if s["state"] in _UNHEALTHY]
    return {
        "state": state,
        "health": "degraded" if unhealthy else "ok",
        "unhealthy": unhealthy,
        "uptime": round(float(snapshot["uptime"]), 1),
        "sources": sources,
        "pool": {k: snapshot["pool"][k] for k in _POOL_FIELDS},
        "mesh": mesh,
    }


class HostAgent:
    """One host in the mesh: owns its connection, signer, verifier and counters."""

    def __init__(
        self,
        engine: Any,
        credentials: ClientCredentials,
        url: BrokerURL,
        keys: MeshKeys,
        settings: AgentSettings | None = None,
    ) -> None:
        self.engine = engine
        self.credentials = credentials
        self.label = credentials.label
        self.mesh = credentials.mesh
        self.settings = settings or AgentSettings()
        self.keys = keys
        self.signer = MessageSigner(self.mesh, self.label, keys)
        self.verifier = MessageVerifier(self.mesh, self.label)
        self.online: dict[str, bool] = {}
        self.seeds_sent = 0
        self.seeds_received = 0
        self.peer_bytes = 0
        self.events_sent = 0
        self.seed_drops: Counter[str] = Counter()
        self.connection = MeshConnection(
            credentials, url, self._on_message, self._on_connected, will=self._will, name=f"mesh ({self.label})"
        )
        self._events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=1000)
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- topics -------------------------------------------------------------
    def topic(self, channel: str) -> str:
        """One of this host's own topics."""
        return host_topic(self.mesh, self.label, channel)

    # -- life cycle ---------------------------------------------------------
    async def start(self) -> None:
        """Listen to the engine's events and start connecting."""
        self._loop = asyncio.get_running_loop()
        self.engine.add_listener(self._on_engine_event)
        self.connection.start()
        self._tasks = [
            asyncio.create_task(self._status_loop(), name="mesh-status"),
            asyncio.create_task(self._event_loop(), name="mesh-events"),
            asyncio.create_task(self._seed_loop(), name="mesh-seeds"),
        ]

    async def stop(self) -> None:
        """Say offline (retained, signed), then disconnect cleanly."""
        for task in self._tasks:
            await cancel_and_wait(task)
        client = self.connection.client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                payload = self.signer.sign(self.topic("status"), "status", self._status("offline"))
                await asyncio.wait_for(client.publish(self.topic("status"), payload, qos=1, retain=True), 5)
        await self.connection.stop()

    def _will(self) -> aiomqtt.Will:
        self.signer.new_epoch()
        # made at connect time, sent when the connection dies: no numbers that would be stale by then
        offline = {"state": "offline", "reason": "connection lost"}
        payload = self.signer.sign(self.topic("status"), "status", offline, counter=FINAL_COUNTER)
        return aiomqtt.Will(self.topic("status"), payload, qos=1, retain=True)

    async def _on_connected(self, client: aiomqtt.Client) -> None:
        # identities first: their retained messages arrive before any status they verify
        await client.subscribe(subscription(self.mesh, "identity"), qos=1)
        await client.subscribe(subscription(self.mesh, "status"), qos=1)
        await client.subscribe(subscription(self.mesh, "peer", self.label), qos=1)
        identity = self.signer.sign(self.topic("identity"), "identity", self.signer.identity_body())
        await client.publish(self.topic("identity"), identity, qos=1, retain=True)
        await self._publish_status(client)

    # -- outgoing -----------------------------------------------------------
    def mesh_figures(self) -> dict[str, Any]:
        """The agent's own counters, as published in status and shown to tests."""
        ledger = self.engine.pool.credited_by_source()
        peer_credit = sum(v for k, v in ledger.items() if k.startswith(PEER_SOURCE_PREFIX))
        drops = Counter(self.verifier.drops)
        drops.update(self.seed_drops)
        return {
            "peers": sorted(p for p, up in self.online.items() if up),
            "seeds_sent": self.seeds_sent,
            "seeds_received": self.seeds_received,
            "peer_bytes_absorbed": self.peer_bytes,
            "peer_credited_bits": peer_credit,
            "events_sent": self.events_sent,
            "drops": dict(sorted(drops.items())),
        }

    def _status(self, state: str = "online") -> dict[str, Any]:
        return status_body(self.engine.snapshot(), self.mesh_figures(), state)

    async def _publish_status(self, client: aiomqtt.Client) -> None:
        payload = self.signer.sign(self.topic("status"), "status", self._status())
        await client.publish(self.topic("status"), payload, qos=1, retain=True)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.status_interval)
            client = self.connection.client
            if client is not None and self.connection.connected.is_set():
                with contextlib.suppress(aiomqtt.MqttError):
                    await self._publish_status(client)

    def _on_engine_event(self, event: str, fields: dict[str, Any]) -> None:
        if self._loop is None:
            return
        item = (event, {k: v for k, v in fields.items() if isinstance(v, (str, int, float, bool)) or v is None})
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._enqueue, item)

    def _enqueue(self, item: tuple[str, dict[str, Any]]) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a storm of events while the broker is away
            self._events.put_nowait(item)

    async def _event_loop(self) -> None:
        while True:
            event, fields = await self._events.get()
            await self.connection.connected.wait()
            client = self.connection.client
            if client is None:
                continue
            payload = self.signer.sign(self.topic("events"), "event", {"event": event, **fields})
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(self.topic("events"), payload, qos=1)
                self.events_sent += 1

    async def _seed_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.seed_interval)
            client = self.connection.client
            if client is None or not self.connection.connected.is_set():
                continue
            for peer in [p for p, up in self.online.items() if up and p in self.verifier.peers]:
                with contextlib.suppress(aiomqtt.MqttError):
                    await client.publish(peer_topic(self.mesh, self.label, peer), self.seed_for(peer), qos=1)
                    self.seeds_sent += 1

    def seed_for(self, peer: str) -> bytes:
        """A signed message carrying a fresh pool seed sealed to ``peer``'s KEM key."""
        info = self.verifier.peers[peer]
        draw = self.engine.pool.draw(self.settings.seed_bytes, purpose=b"chaosmagnet.mesh-peer-seed/1|" + peer.encode())
        counter = self.signer.next_counter()
        body = seal_seed(
            draw.data,
            info.kem_algorithm,
            info.kem_public_key,
            mesh=self.mesh,
            sender=self.label,
            receiver=peer,
            epoch=self.signer.epoch,
            counter=counter,
        )
        topic = peer_topic(self.mesh, self.label, peer)
        return self.signer.sign(topic, "peer-seed", body, counter=counter)

    # -- incoming -----------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        name = parse_topic(topic)
        if name is not None and name.sender == self.label and name.mesh == self.mesh:
            return  # our own identity and status, echoed by the broker
        self.receive(topic, payload)

    def receive(self, topic: str, payload: bytes) -> None:
        """Check one message and act on it; drops are counted, nothing raises."""
        verdict = self.verifier.feed(topic, payload)
        if not isinstance(verdict, Accepted):
            return
        if verdict.kind == "status" and isinstance(verdict.body, dict):
            self.online[verdict.sender] = verdict.body.get("state") == "online"
        elif verdict.kind == "peer-seed":
            seed = open_seed(
                verdict.body,
                self.keys,
                mesh=self.mesh,
                sender=verdict.sender,
                receiver=self.label,
                epoch=verdict.epoch,
                counter=verdict.counter,
            )
            if isinstance(seed, str):
                self.seed_drops[seed] += 1
                return
            # entropy from another host: mixed in, never credited
            self.engine.pool.absorb(PEER_SOURCE_PREFIX + verdict.sender, seed, 0.0)
            self.seeds_received += 1
            self.peer_bytes += len(seed)
