"""The MQTT connection (aiomqtt on paho-mqtt): TLS to the broker, reconnecting with back-off.

Moves messages only; what they mean is the agent's and the collector's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable

import aiomqtt

from chaosmagnet.errors import escape_device_text
from chaosmagnet.mqtt.credentials import ClientCredentials
from chaosmagnet.mqtt.url import BrokerURL

OnConnected = Callable[[aiomqtt.Client], Awaitable[None]]
OnMessage = Callable[[str, bytes], Awaitable[None] | None]
WillFactory = Callable[[], aiomqtt.Will | None]

_quiet = logging.getLogger("chaosmagnet.mqtt")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def mqtt_client(credentials: ClientCredentials, url: BrokerURL, *, will: aiomqtt.Will | None = None) -> aiomqtt.Client:
    """An (unconnected) aiomqtt client for these credentials, TLS verified against the mesh CA."""
    return aiomqtt.Client(
        url.host,
        url.port,
        username=credentials.username,
        password=credentials.password,
        identifier=f"{credentials.label}-{os.urandom(4).hex()}",
        tls_context=credentials.tls_context(),
        will=will,
        keepalive=15,
        timeout=10,
        logger=_quiet,
        max_queued_incoming_messages=10_000,
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],  # small messages: no Nagle delay
    )


async def cancel_and_wait(task: asyncio.Task[None], timeout: float = 15.0) -> None:
    """Cancel a connection task and wait for it, at most ``timeout`` seconds (a broker that never
    answers the disconnect must not hang whoever is stopping)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait({task}, timeout=timeout)
    if task.done() and not task.cancelled():
        with contextlib.suppress(Exception):
            task.result()  # retrieved: no "exception was never retrieved" warning


class MeshConnection:
    """Keeps one MQTT connection up: connect, call on_connected, feed messages, reconnect on loss."""

    def __init__(
        self,
        credentials: ClientCredentials,
        url: BrokerURL,
        on_message: OnMessage,
        on_connected: OnConnected,
        *,
        will: WillFactory | None = None,
        name: str = "mesh",
    ) -> None:
        self.credentials = credentials
        self.url = url
        self._on_message = on_message
        self._on_connected = on_connected
        self._will = will
        self.name = name
        self.state = "connecting"
        self.client: aiomqtt.Client | None = None
        self.connects = 0
        self.last_error = ""
        self.handler_errors = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connected = asyncio.Event()

    def start(self) -> None:
        """Start connecting in the background."""
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-mqtt")

    async def stop(self) -> None:
        """Close the connection (a clean disconnect: the broker sends no last will)."""
        self._stopping = True
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        self.state = "stopped"

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                async with mqtt_client(self.credentials, self.url, will=self._will() if self._will else None) as client:
                    self.client = client
                    self.connects += 1
                    self.state = "linked"
                    delay = 0.5
                    await self._on_connected(client)
                    self.connected.set()
                    async for message in client.messages:
                        payload = message.payload if isinstance(message.payload, (bytes, bytearray)) else b""
                        try:
                            result = self._on_message(str(message.topic), bytes(payload))
                            if result is not None:
                                await result
                        except Exception as exc:  # isolation boundary: one message never ends the connection
                            self.handler_errors += 1
                            if self.handler_errors == 1:
                                detail = escape_device_text(f"{type(exc).__name__}: {exc}")
                                print(f"{self.name}: a message could not be handled ({detail})", file=sys.stderr)
            except aiomqtt.MqttError as exc:
                self.client = None
                self.connected.clear()
                if self._stopping:  # the disconnect on the way out failed: stop(), not a retry
                    raise asyncio.CancelledError from exc
                error = escape_device_text(str(exc))
                if self.state != "lost" or error != self.last_error:
                    print(f"{self.name}: broker {self.url}: {error}; retrying", file=sys.stderr, flush=True)
                self.last_error = error
                self.state = "lost"
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
