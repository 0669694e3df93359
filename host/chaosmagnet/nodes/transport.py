"""The transport interface: what every node link (serial, BLE, MQTT) provides.

A transport moves bytes and reports its state; it knows nothing of frames,
handshakes or keys.  The node connection (chaosmagnet.nodes.sources) owns
the handshake and session (chaosmagnet.nodes.session) and the sans-IO frame
parser above it, once for every kind of transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable
from typing import Any, Protocol

BytesCallback = Callable[[bytes], None]
EventCallback = Callable[[], None]


class TransportState(str, enum.Enum):
    """Where a transport stands."""

    IDLE = "idle"  # not started
    WAITING = "waiting"  # the device or port is not there
    SCANNING = "scanning"  # looking for the device's advertisements (BLE)
    CONNECTING = "connecting"  # opening it
    LINKED = "linked"  # bytes flow
    LOST = "lost"  # it went away; trying again
    CLOSED = "closed"  # close() was called


class Transport(Protocol):
    """Bytes to and from one node.  ``run()`` connects, reconnects after a loss and returns
    after ``close()``; ``on_connect`` runs after every (re)connection, ``on_disconnect``
    after every loss, ``on_bytes`` for every chunk received."""

    state: str
    connects: int

    @property
    def is_open(self) -> bool:
        """True while bytes can flow."""
        ...

    def write(self, data: bytes) -> bool:
        """Queue bytes for the node; False when not connected."""
        ...

    async def run(self) -> None:
        """Connect, deliver bytes, reconnect; until close()."""
        ...

    def close(self) -> None:
        """Ask run() to finish."""
        ...


class TransportFactory(Protocol):
    """Makes the transport for one node's address (a port path, a BLE address, a topic)."""

    def __call__(
        self,
        address: str,
        on_bytes: BytesCallback,
        *,
        on_connect: EventCallback | None = ...,
        on_disconnect: EventCallback | None = ...,
    ) -> Transport:
        """A transport for address that calls back into the node connection."""
        ...


class RetryLoop:
    """What the reconnecting transports share: a run() loop that waits between tries and
    wakes at once when close() is asked for (serial and BLE links derive from it)."""

    def __init__(self) -> None:
        self._closing = False
        self._wake: asyncio.Event | None = None  # made inside run(), on the running loop

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if close() is called meanwhile."""
        assert self._wake is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _stop_waiting(self) -> None:
        """Mark the loop closing and wake any wait in progress."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()


def open_link(
    address: str,
    on_bytes: BytesCallback,
    *,
    on_connect: EventCallback | None = None,
    on_disconnect: EventCallback | None = None,
    check_port: Callable[[], Any] | None = None,
) -> Transport:
    """The transport a registry link names: ``ble:ADDRESS`` a BLE link, ``mqtt:LABEL`` a Wi-Fi
    node through the mesh's broker, else a serial port path (opened only when ``check_port``,
    chaosmagnet.nodes.ports.PortGuard, says it is still the node's)."""
    if address.startswith("mqtt:"):
        from chaosmagnet.nodes.mqtt import MqttLink

        return MqttLink(address, on_bytes, on_connect=on_connect, on_disconnect=on_disconnect)
    if address.startswith("ble:"):
        from chaosmagnet.nodes.ble import BleLink

        return BleLink(address, on_bytes, on_connect=on_connect, on_disconnect=on_disconnect, check_port=check_port)
    from chaosmagnet.nodes.link import SerialLink

    return SerialLink(
        address, on_bytes, on_connect=on_connect, on_disconnect=on_disconnect, check_port=check_port
    )
