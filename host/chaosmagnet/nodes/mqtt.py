"""Wi-Fi nodes over MQTT: one implementation of the transport interface (aiomqtt).

A node on Wi-Fi (firmware chaosnode.mqtt) publishes its frames, whole, to
``chaosmagnet/<mesh>/node/<label>/frames``, reads the host's hello and
commands from ``.../cmd`` and announces each MQTT connection with a retained
``online <nonce>`` on ``.../state`` (its last will says ``offline``).  This
link subscribes to the node's frames and state, hands every frames payload,
in order, to ``on_bytes`` (the node connection feeds it to the one parser and
handshake), and publishes what the node connection writes to the cmd topic.
A new ``online`` nonce is a new connection (``on_connect``: a new hello); an
``offline`` or a lost broker connection is a loss (``on_disconnect``).

Every link of one process shares one broker connection, an ``MqttNodeBus``
(the host's mesh credentials: the broker's ACL lets a host read the frames
and write the commands only of the nodes assigned to it).  Messages on any
other topic, oversized ones and frames before the node announced itself are
counted and dropped; frames from anyone but the node fail the session tags.

Registry links name the node: ``mqtt:LABEL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

from chaosmagnet.errors import UsageError, escape_device_text
from chaosmagnet.mqtt.credentials import ClientCredentials, load_client
from chaosmagnet.mqtt.topics import ROOT, node_prefix, valid_name
from chaosmagnet.mqtt.url import BrokerURL, parse_broker_url
from chaosmagnet.nodes.transport import BytesCallback, EventCallback, TransportState

LINK_PREFIX = "mqtt:"
MAX_MESSAGE_BYTES = 64 * 1024  # the firmware publishes at most 4 KB of frames per message
NODE_CHANNELS = ("frames", "cmd", "state")
RETRY_MIN_S = 0.5
RETRY_MAX_S = 8.0


def is_mqtt_link(link: str) -> bool:
    """True for a registry link that names a Wi-Fi node (``mqtt:LABEL``)."""
    return link.startswith(LINK_PREFIX)


def mqtt_label(link: str) -> str:
    """The node label of an ``mqtt:LABEL`` link; UsageError when it is not one."""
    label = link[len(LINK_PREFIX) :] if is_mqtt_link(link) else link
    if not valid_name(label):
        raise UsageError(f"{link!r}: an MQTT node link is mqtt:LABEL (1-32 of a-z 0-9 _ -)")
    return label


def node_topic(mesh: str, label: str, channel: str) -> str:
    """``chaosmagnet/<mesh>/node/<label>/<channel>`` (frames, cmd or state)."""
    return f"{node_prefix(mesh, label)}/{channel}"


def parse_node_topic(topic: str, mesh: str) -> tuple[str, str] | None:
    """(label, channel) of one of this mesh's node topics, or None."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != ROOT or parts[1] != mesh or parts[2] != "node":
        return None
    if not valid_name(parts[3]) or parts[4] not in NODE_CHANNELS:
        return None
    return parts[3], parts[4]


def default_credentials(folder: Path | None = None) -> ClientCredentials:
    """The host's mesh credentials (default: $CHAOS_HOME/mesh/client)."""
    from chaosmagnet.mqtt.credentials import mesh_dir

    return load_client(folder if folder is not None else mesh_dir() / "client")


def broker_of(credentials: ClientCredentials, url: str | None = None) -> BrokerURL:
    """The broker: ``url`` when given, else the one written in the client folder."""
    text = url or credentials.broker
    if not text:
        raise UsageError(f"{credentials.folder}: no broker URL in client.json; pass --mesh mqtts://HOST:PORT")
    return parse_broker_url(text)


class MqttNodeBus:
    """One broker connection for every Wi-Fi node link of this process.

    Subscribes to the frames and state topics of each attached link, feeds
    their messages to it, publishes its commands in order, reconnects with a
    backoff.  Runs while at least one link is attached.
    """

    def __init__(self, credentials: ClientCredentials, url: BrokerURL) -> None:
        self.credentials = credentials
        self.url = url
        self.mesh = credentials.mesh
        self.links: dict[str, MqttLink] = {}
        self.state = "idle"
        self.connects = 0
        self.last_error = ""
        self.drops: dict[str, int] = {"wrong_topic": 0, "oversized": 0, "bad_state": 0, "unlinked": 0}
        self._client: Any = None
        self._outgoing: asyncio.Queue[tuple[str, bytes]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- links ----------------------------------------------------------------
    def attach(self, link: MqttLink) -> None:
        """Start delivering the node's messages to ``link`` (connecting first if needed)."""
        self.links[link.label] = link
        client = self._client
        if client is not None:
            asyncio.get_running_loop().create_task(self._subscribe(client, [link.label]))
        if self._task is None:
            self._outgoing = asyncio.Queue()
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="mqtt-node-bus")

    async def detach(self, link: MqttLink) -> None:
        """Stop delivering to ``link``; the last one closes the connection."""
        if self.links.get(link.label) is link:
            del self.links[link.label]
            client = self._client
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.unsubscribe([node_topic(self.mesh, link.label, c) for c in ("frames", "state")])
        if not self.links and self._task is not None:
            from chaosmagnet.mqtt.client import cancel_and_wait

            task, self._task = self._task, None
            self._stopping = True
            await cancel_and_wait(task)
            self._client = None
            self.state = "idle"

    def publish(self, topic: str, payload: bytes) -> bool:
        """Queue one message (QoS 0, in order); False when not connected."""
        if self._client is None or self._outgoing is None:
            return False
        self._outgoing.put_nowait((topic, payload))
        return True

    # -- the connection -------------------------------------------------------
    async def _subscribe(self, client: Any, labels: list[str]) -> None:
        topics = [(node_topic(self.mesh, label, c), 0) for label in labels for c in ("state", "frames")]
        if topics:
            await client.subscribe(topics)

    async def _writer(self, client: Any) -> None:
        assert self._outgoing is not None
        while True:
            topic, payload = await self._outgoing.get()
            await client.publish(topic, payload, qos=0)

    async def _run(self) -> None:
        import aiomqtt

        from chaosmagnet.mqtt.client import mqtt_client

        delay = RETRY_MIN_S
        while True:
            self.state = "connecting"
            writer: asyncio.Task[None] | None = None
            try:
                async with mqtt_client(self.credentials, self.url) as client:
                    self._client = client
                    self.connects += 1
                    self.state = "linked"
                    self.last_error = ""
                    delay = RETRY_MIN_S
                    self._notify()
                    await self._subscribe(client, list(self.links))
                    writer = asyncio.create_task(self._writer(client), name="mqtt-node-bus-writer")
                    async for message in client.messages:
                        payload = message.payload
                        self.dispatch(
                            str(message.topic), bytes(payload) if isinstance(payload, (bytes, bytearray)) else b""
                        )
            except aiomqtt.MqttError as exc:
                if self._stopping:  # the disconnect on the way out failed: detach(), not a retry
                    raise asyncio.CancelledError from exc
                error = escape_device_text(str(exc))
                if error != self.last_error:
                    print(f"nodes: broker {self.url}: {error}; retrying", file=sys.stderr, flush=True)
                self.last_error = error
            finally:
                if writer is not None:
                    writer.cancel()
                self._client = None
                if self._outgoing is not None:
                    while not self._outgoing.empty():
                        self._outgoing.get_nowait()
                for link in list(self.links.values()):
                    link.broker_lost()
            self.state = "lost"
            self._notify()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def _notify(self) -> None:
        for link in list(self.links.values()):
            link.bus_state_changed()

    def dispatch(self, topic: str, payload: bytes) -> None:
        """One received message: to its node's link, or counted and dropped."""
        parsed = parse_node_topic(topic, self.mesh)
        link = self.links.get(parsed[0]) if parsed is not None else None
        if parsed is None or link is None or parsed[1] == "cmd":
            self.drops["wrong_topic"] += 1
            return
        if len(payload) > MAX_MESSAGE_BYTES:
            self.drops["oversized"] += 1
            return
        if parsed[1] == "state":
            if not link.on_state(payload):
                self.drops["bad_state"] += 1
        elif not link.deliver(payload):
            self.drops["unlinked"] += 1


_BUSES: dict[tuple[Path, str, int], MqttNodeBus] = {}


def shared_bus(credentials: ClientCredentials | None = None, url: BrokerURL | None = None) -> MqttNodeBus:
    """The process's bus for these credentials and broker (default: the host's mesh client)."""
    credentials = credentials or default_credentials()
    url = url or broker_of(credentials)
    key = (credentials.folder.resolve(), url.host, url.port)
    bus = _BUSES.get(key)
    if bus is None or (bus._task is not None and bus._task.get_loop() is not asyncio.get_running_loop()):
        bus = _BUSES[key] = MqttNodeBus(credentials, url)
    return bus


class MqttLink:
    """One Wi-Fi node over the shared broker connection: frames in, commands out.

    ``state``: ``connecting`` (no broker yet), ``waiting`` (the node is not
    online), ``linked``, ``lost`` (it went offline or the broker went away).
    ``run()`` returns after ``close()``.
    """

    def __init__(
        self,
        address: str,
        on_bytes: BytesCallback,
        *,
        on_connect: EventCallback | None = None,
        on_disconnect: EventCallback | None = None,
        bus: MqttNodeBus | None = None,
        check_port: object = None,  # the transport interface's port check: a broker topic has no port
    ) -> None:
        self.label = mqtt_label(address)
        self._bus = bus if bus is not None else shared_bus()  # a missing mesh folder: one line, now
        self._on_bytes = on_bytes
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._closed: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None  # close() or a change of the broker connection
        self._online_nonce: bytes | None = None
        self.state: str = TransportState.IDLE.value
        self.connects = 0
        self.messages = 0
        self.bytes_received = 0

    @property
    def last_error(self) -> str:
        """Why the broker connection is not up (empty while it is)."""
        bus = self._bus
        return "" if bus is None or bus.state == "linked" else bus.last_error

    @property
    def bus(self) -> MqttNodeBus:
        """The broker connection this link uses (the process's shared one unless given)."""
        if self._bus is None:
            self._bus = shared_bus()
        return self._bus

    @property
    def is_open(self) -> bool:
        """True while the node is online and the broker connection is up."""
        return self.state == TransportState.LINKED.value

    def write(self, data: bytes) -> bool:
        """Publish bytes to the node's cmd topic; False when not linked."""
        if not self.is_open:
            return False
        return self.bus.publish(node_topic(self.bus.mesh, self.label, "cmd"), data)

    def deliver(self, payload: bytes) -> bool:
        """A frames message: to on_bytes while linked (False otherwise: dropped)."""
        if not self.is_open:
            return False
        self.messages += 1
        self.bytes_received += len(payload)
        self._on_bytes(payload)
        return True

    def on_state(self, payload: bytes) -> bool:
        """The node's retained state: ``online <nonce>`` (a new connection) or ``offline``
        (a loss); False for anything else (ignored)."""
        words = payload.split()
        if len(words) == 2 and words[0] == b"online" and 1 <= len(words[1]) <= 64:
            if words[1] == self._online_nonce and self.is_open:
                return True  # the same connection, announced again (e.g. after our resubscribe)
            self._lose()
            self._online_nonce = words[1]
            self.state = TransportState.LINKED.value
            self.connects += 1
            if self._on_connect is not None:
                self._on_connect()
            return True
        if payload.strip() == b"offline":
            self._online_nonce = None
            if not self._lose() and self.state != TransportState.LOST.value:
                self.state = TransportState.WAITING.value
            return True
        return False

    def _lose(self) -> bool:
        if not self.is_open:
            return False
        self.state = TransportState.LOST.value
        if self._on_disconnect is not None:
            self._on_disconnect()
        return True

    def broker_lost(self) -> None:
        """The broker connection went away: a loss; the node's state comes again on reconnect."""
        self._online_nonce = None
        self._lose()
        if self._closed is not None and not self._closed.is_set():
            self.state = TransportState.CONNECTING.value

    async def run(self) -> None:
        """Attach to the bus until close()."""
        self._closed = asyncio.Event()
        self._wake = wake = asyncio.Event()
        self.state = TransportState.CONNECTING.value
        bus = self.bus
        bus.attach(self)
        try:
            while not self._closed.is_set():
                wake.clear()
                if bus.state == "linked" and self.state == TransportState.CONNECTING.value:
                    self.state = TransportState.WAITING.value
                elif bus.state != "linked" and self.state == TransportState.WAITING.value:
                    self.state = TransportState.CONNECTING.value
                await wake.wait()  # no polling: the bus and close() say when to look again
        finally:
            self._lose()
            await bus.detach(self)
            self.state = TransportState.CLOSED.value

    def bus_state_changed(self) -> None:
        """The broker connection came up or went away: run() updates the state."""
        if self._wake is not None:
            self._wake.set()

    def close(self) -> None:
        """Ask run() to finish."""
        if self._closed is not None:
            self._closed.set()
            if self._wake is not None:
                self._wake.set()
        else:
            self.state = TransportState.CLOSED.value


def wifi_node_settings(
    credentials: ClientCredentials, url: BrokerURL, ssid: str, psk: str | None
) -> tuple[dict[str, Any], dict[str, bytes], dict[str, bytes]]:
    """What `nodes deploy --link wifi` adds for a node: (config fields, NVS secrets, public files).

    The config names the Wi-Fi network, the mesh, the broker and the MQTT user; the
    secrets (Wi-Fi passphrase, MQTT password, TLS client key) go to NVS with the node
    key; the files are the mesh CA and the node's certificate."""
    if credentials.role != "node":
        raise UsageError(f"{credentials.folder} is a {credentials.role}'s folder, not a node's (mesh add LABEL --node)")
    if not ssid or len(ssid.encode()) > 32:
        raise UsageError("--ssid must be 1-32 bytes")
    if credentials.cert_file is None or credentials.key_file is None:
        raise UsageError(f"{credentials.folder}: the node needs client.pem and client.key (the broker asks for them)")
    config = {
        "link": "wifi",
        "wifi_ssid": ssid,
        "mesh": credentials.mesh,
        "broker_host": url.host,
        "broker_port": url.port,
        "mqtt_user": credentials.username,
    }
    secrets: dict[str, bytes] = {}
    if psk is not None:
        if not 8 <= len(psk.encode()) <= 63:
            raise UsageError("the Wi-Fi passphrase (WPA2/WPA3) must be 8-63 characters")
        secrets = {
            "wifi_psk": psk.encode(),
            "mqtt_pw": credentials.password.encode(),
            "tls_key": credentials.key_file.read_bytes(),
        }
    files = {
        "chaosnode_ca.pem": credentials.ca_file.read_bytes(),
        "chaosnode_cert.pem": credentials.cert_file.read_bytes(),
    }
    return config, secrets, files
