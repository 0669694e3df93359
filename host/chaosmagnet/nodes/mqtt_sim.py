"""A simulated Wi-Fi node: the firmware's Node and MQTT link (chaosnode.mqtt) over paho-mqtt.

``chaos-host nodes simulate --link mqtt`` runs one; scripts/bench-mesh-nodes
runs many per process.  The firmware's MqttLink is driven exactly as
chaosnode.mqtt_app drives it on a board; only the client differs:
``UmqttClient`` gives paho-mqtt (synchronous, no thread) the methods of
micropython-lib's ``umqtt.simple.MQTTClient``, with TLS from the node's mesh
credentials (the mesh CA, its client certificate, its password).
"""

from __future__ import annotations

import os
import random
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho

from chaosmagnet.mqtt.credentials import ClientCredentials
from chaosmagnet.mqtt.url import BrokerURL
from chaosmagnet.nodes.simulator import FAULTS, SimHal, firmware_modules, hal_fault, wire_fault

CONNECT_TIMEOUT_S = 10.0


class UmqttClient:
    """paho-mqtt behind umqtt.simple's interface: blocking connect/subscribe, publish,
    check_msg() delivering received messages to the callback; OSError on any failure."""

    def __init__(
        self,
        client_id: str,
        server: str,
        port: int = 8883,
        user: str | None = None,
        password: str | None = None,
        keepalive: int = 30,
        ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.server = server
        self.port = port
        self.keepalive = keepalive
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        if user is not None:
            self._client.username_pw_set(user, password)
        if ssl is not None:
            self._client.tls_set_context(ssl)
        self._client.on_message = self._on_message
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._callback: Callable[[bytes, bytes], None] | None = None
        self._inbox: deque[tuple[bytes, bytes]] = deque()
        self._connack: Any = None
        self._subacks = 0

    # paho callbacks
    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        self._inbox.append((message.topic.encode(), bytes(message.payload)))

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connack = reason

    def _on_subscribe(self, *_: Any) -> None:
        self._subacks += 1

    # umqtt.simple's interface
    def set_callback(self, callback: Callable[[bytes, bytes], None]) -> None:
        """Called as callback(topic, msg) from check_msg()."""
        self._callback = callback

    def set_last_will(self, topic: str, msg: bytes, retain: bool = False, qos: int = 0) -> None:
        """The message the broker publishes when the connection is lost."""
        self._client.will_set(topic, msg, qos, retain)

    def _wait(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not done():
            if time.monotonic() > deadline:
                raise OSError("MQTT: no answer from the broker")
            rc = self._client.loop(0.05)
            if rc != paho.MQTT_ERR_SUCCESS:
                raise OSError(f"MQTT: {paho.error_string(rc)}")

    def connect(self, clean_session: bool = True) -> None:
        """Connect and wait for the broker's CONNACK."""
        self._connack = None
        self._inbox.clear()
        try:
            self._client.connect(self.server, self.port, self.keepalive)
        except (OSError, ssl.SSLError) as exc:
            raise OSError(f"MQTT: cannot connect ({type(exc).__name__})") from None
        self._wait(lambda: self._connack is not None)
        if self._connack.is_failure:
            raise OSError(f"MQTT: refused ({self._connack})")

    def subscribe(self, topic: str, qos: int = 0) -> None:
        """Subscribe and wait for the SUBACK."""
        before = self._subacks
        rc, _ = self._client.subscribe(topic, qos)
        if rc != paho.MQTT_ERR_SUCCESS:
            raise OSError(f"MQTT: {paho.error_string(rc)}")
        self._wait(lambda: self._subacks > before)

    def publish(self, topic: str, msg: bytes, retain: bool = False, qos: int = 0) -> None:
        """Publish one message."""
        info = self._client.publish(topic, msg, qos, retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise OSError(f"MQTT: {paho.error_string(info.rc)}")

    def check_msg(self) -> None:
        """Read what arrived without blocking; call the callback for each message."""
        rc = self._client.loop(0)
        while self._inbox:
            topic, msg = self._inbox.popleft()
            if self._callback is not None:
                self._callback(topic, msg)
        if rc != paho.MQTT_ERR_SUCCESS:
            raise OSError(f"MQTT: {paho.error_string(rc)}")

    def disconnect(self) -> None:
        """Close the connection (no last will)."""
        self._client.disconnect()
        self._client.loop(0.01)


class _FaultyWrite:
    """The node's write into the outbox, with wire faults: garbage and replayed frames."""

    def __init__(self, write: Callable[[bytes], int], fault: str | None, seed: int | None) -> None:
        self._write = write
        self.fault = fault
        self._random = random.Random(seed)
        self._history: deque[bytes] = deque(maxlen=32)
        self._count = 0

    def __call__(self, frame: Any) -> int:
        data = bytes(frame)
        self._count += 1
        if self.fault == "garbage" and self._count % 4 == 0:
            self._write(os.urandom(self._random.randrange(1, 200)))
        if self.fault == "replay" and self._count % 4 == 0 and self._history:
            self._write(self._history[self._random.randrange(len(self._history))])
        n = self._write(data)
        if n:
            self._history.append(data)
        return n


class MqttNodeSim:
    """One simulated Wi-Fi node: firmware Node + firmware MqttLink + UmqttClient."""

    def __init__(
        self,
        config: dict[str, Any],
        credentials: ClientCredentials,
        url: BrokerURL,
        *,
        fault: str | None = None,
        seed: int | None = None,
        hal: SimHal | None = None,
    ) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        modules = firmware_modules()
        self._node_class = modules["chaosnode.node"].Node
        self._mqtt = modules["chaosnode.mqtt"]
        self.config = config
        self.credentials = credentials
        self.url = url
        self.fault = fault
        self.seed = seed
        self.hal = hal or SimHal(hal_fault(fault), seed)
        self.client = UmqttClient(
            f"{config['label']}-{os.urandom(4).hex()}",
            url.host,
            url.port,
            credentials.username,
            credentials.password,
            self._mqtt.KEEPALIVE_S,
            credentials.tls_context(),
        )
        self.node: Any = None
        self.link: Any = None
        self.created_at = 0.0  # time.monotonic() when the current Node started (uptime 0)
        self._retry_at = 0.0
        self._backoff = 0.5
        self._new_node()

    def _new_node(self) -> None:
        self.created_at = time.monotonic()
        self.node = self._node_class(self.hal, self.config, None)
        if self.link is None:
            self.link = self._mqtt.MqttLink(
                self.node, self.client, self.credentials.mesh, self.config["label"], lambda: os.urandom(8)
            )
        self.link.node = self.node
        self.node.write = _FaultyWrite(
            self.link.outbox.write, wire_fault(self.fault), self.seed
        )

    @property
    def online(self) -> bool:
        """Connected to the broker."""
        return bool(self.link.state == self._mqtt.ONLINE)

    def step(self) -> float:
        """One turn of the board's loop; returns seconds until the next is due."""
        now = time.monotonic()
        if not self.online:
            if now < self._retry_at:
                return min(self._retry_at - now, 0.05)
            if not self.link.connect():
                self._retry_at = now + self._backoff
                self._backoff = min(self._backoff * 2, 8.0)
                return 0.05
            self._backoff = 0.5
        wait_ms = self.node.step()
        if self.node.reboot_requested:
            self.link.poll()
            self.link.close()
            self.hal.boots += 1
            self._new_node()
            return 0.3
        self.link.poll()
        return min(wait_ms, 5) / 1000

    def close(self) -> None:
        """A clean goodbye (retained offline)."""
        self.link.close()


def run_sims(sims: list[MqttNodeSim], until: Callable[[], bool]) -> None:
    """Drive simulated nodes round-robin until ``until()`` is true."""
    try:
        while not until():
            wait = 0.005
            for sim in sims:
                wait = min(wait, sim.step())
            if wait > 0:
                time.sleep(wait)
    finally:
        for sim in sims:
            sim.close()
