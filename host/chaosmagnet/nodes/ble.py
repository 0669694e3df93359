"""A Bluetooth LE link on bleak: one implementation of the transport interface.

The node's GATT service (docs/wire-protocol.md, firmware chaosnode.ble) has a
notify characteristic carrying the node's frames as a byte stream, chunked to
the MTU, and a write characteristic taking the host's command lines.  This
link finds the node by address (``BleakScanner``), connects with
bleak-retry-connector's ``establish_connection``, subscribes, and hands every
notification's payload, in order, to ``on_bytes``: the node connection feeds
them to the same frame parser and handshake as a serial port's reads (no
chunk header: notifications on one connection arrive whole and in order, and
the parser resynchronises after anything torn by a disconnect).  Writes are
queued and sent in chunks of the characteristic's write size, with response,
in order.  After a loss it scans and connects again with a backoff from
0.2 s up to 2 s, and reports its state: ``scanning``, ``connecting``,
``linked``, ``lost``.

bleak picks the platform's backend (BlueZ on Linux).  ``client_backend`` and
``scanner_backend`` pass another one in through bleak's ``backend=`` hook: the
tests and ``nodes simulate --link ble`` use a bumble stack that way
(chaosmagnet.nodes.ble_bumble, selected by CHAOS_BLE_HCI).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from typing import Any

from chaosmagnet.errors import ChaosError, escape_device_text
from chaosmagnet.nodes.transport import BytesCallback, EventCallback, RetryLoop, TransportState

SERVICE_UUID = "c4a05e10-7d1b-4b8e-9a6f-3f2d8c0e5a01"  # the same as firmware chaosnode.ble
STREAM_UUID = "c4a05e10-7d1b-4b8e-9a6f-3f2d8c0e5a02"  # notify: frames, node -> host
COMMAND_UUID = "c4a05e10-7d1b-4b8e-9a6f-3f2d8c0e5a03"  # write: hello and commands, host -> node
LINK_PREFIX = "ble:"
BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 2.0
HCI_ENV = "CHAOS_BLE_HCI"  # a bumble HCI transport (tests and the simulator only)


class BleUnavailable(ChaosError):
    """No Bluetooth adapter, or no BlueZ, on this machine."""


def is_ble_link(link: str) -> bool:
    """True for a registry link that names a BLE address (``ble:AA:BB:CC:DD:EE:FF``)."""
    return link.startswith(LINK_PREFIX)


def ble_address(link: str) -> str:
    """The BLE address of a ``ble:ADDRESS`` link, upper-case."""
    return link[len(LINK_PREFIX) :].upper() if is_ble_link(link) else link.upper()


def check_ble_address(address: str) -> str:
    """A BLE address as ``AA:BB:CC:DD:EE:FF`` (upper-case); ValueError otherwise."""
    parts = address.strip().split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError("a BLE address is six two-digit hex bytes, AA:BB:CC:DD:EE:FF")
    int("".join(parts), 16)
    return address.strip().upper()


def ble_backends() -> tuple[Any, Any]:
    """(client backend, scanner backend) for bleak: None, None (the platform's: BlueZ) unless
    CHAOS_BLE_HCI names a bumble HCI transport (the simulator's virtual adapter)."""
    spec = os.environ.get(HCI_ENV)
    if not spec:
        return None, None
    from chaosmagnet.nodes.ble_bumble import central_for_hci

    return central_for_hci(spec).backends()


def _unavailable(exc: BaseException) -> BleUnavailable:
    detail = escape_device_text(str(exc))[:160] or type(exc).__name__
    return BleUnavailable(f"Bluetooth LE is not available here (no adapter or no BlueZ): {detail}")


@dataclass(frozen=True)
class Advertiser:
    """A ChaosMagnet node seen advertising."""

    address: str
    label: str
    rssi: int


async def scan_nodes(
    seconds: float = 5.0, *, scanner_backend: Any = None, use_env: bool = True
) -> list[Advertiser]:
    """The ChaosMagnet nodes (our service UUID) advertising within ``seconds``, strongest first.

    Raises BleUnavailable when there is no adapter or no BlueZ."""
    from bleak import BleakScanner
    from bleak.exc import BleakError

    if scanner_backend is None and use_env:
        scanner_backend = ble_backends()[1]
    try:
        found = await BleakScanner.discover(
            timeout=seconds,
            return_adv=True,
            service_uuids=[SERVICE_UUID],
            backend=scanner_backend,
        )
    except (BleakError, OSError, EOFError) as exc:  # BlueZ missing, D-Bus missing, no adapter
        raise _unavailable(exc) from None
    result = []
    for device, adv in found.values():
        if SERVICE_UUID not in [u.lower() for u in adv.service_uuids]:
            continue
        label = escape_device_text(adv.local_name or device.name or "")
        result.append(Advertiser(device.address.upper(), label, int(adv.rssi)))
    return sorted(result, key=lambda a: (-a.rssi, a.address))


class BleLink(RetryLoop):
    """Feeds the notifications of one BLE node to ``on_bytes`` while connected; reconnects.

    ``on_connect`` runs after every connection (the node connection sends hello
    there), ``on_disconnect`` after every loss.  ``run()`` returns after ``close()``.
    """

    def __init__(
        self,
        address: str,
        on_bytes: BytesCallback,
        *,
        on_connect: EventCallback | None = None,
        on_disconnect: EventCallback | None = None,
        client_backend: Any = None,
        scanner_backend: Any = None,
        scan_timeout: float = 1.0,
        use_env: bool = True,
        check_port: Any = None,  # the transport interface's port check: a BLE link has no port
    ) -> None:
        self.address = ble_address(address)
        if client_backend is None and scanner_backend is None and use_env:
            client_backend, scanner_backend = ble_backends()
        self._client_backend = client_backend
        self._scanner_backend = scanner_backend
        self.scan_timeout = scan_timeout
        self._on_bytes = on_bytes
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._client: Any = None
        super().__init__()
        self._lost: asyncio.Event | None = None
        self._outgoing = bytearray()
        self._write_ready: asyncio.Event | None = None
        self._write_size = 20
        self.state: str = TransportState.IDLE.value
        self.connects = 0
        self.notifications = 0
        self.bytes_received = 0
        self.last_error = ""

    @property
    def is_open(self) -> bool:
        """True while connected and subscribed."""
        return self.state == TransportState.LINKED.value and self._client is not None

    def write(self, data: bytes) -> bool:
        """Queue bytes for the node's command characteristic; False when not connected."""
        if not self.is_open or self._write_ready is None:
            return False
        self._outgoing += data
        self._write_ready.set()
        return True

    def _on_notify(self, _char: Any, data: bytearray) -> None:
        self.notifications += 1
        self.bytes_received += len(data)
        self._on_bytes(bytes(data))

    def _on_lost(self, _client: Any) -> None:
        if self._lost is not None:
            self._lost.set()

    async def _writer(self, client: Any) -> None:
        assert self._write_ready is not None
        while True:
            await self._write_ready.wait()
            self._write_ready.clear()
            while self._outgoing:
                chunk = bytes(self._outgoing[: self._write_size])
                del self._outgoing[: len(chunk)]
                await client.write_gatt_char(COMMAND_UUID, chunk, response=True)

    async def run(self) -> None:
        """Scan, connect, subscribe, deliver; after a loss scan again with a backoff; until close()."""
        from bleak import BleakClient, BleakScanner
        from bleak.exc import BleakError
        from bleak_retry_connector import establish_connection

        self._wake = asyncio.Event()
        backoff = BACKOFF_MIN_S
        while not self._closing:
            self.state = TransportState.SCANNING.value
            try:
                device = await BleakScanner.find_device_by_address(
                    self.address, timeout=self.scan_timeout, backend=self._scanner_backend
                )
            except (BleakError, OSError, EOFError) as exc:
                self.state = TransportState.WAITING.value
                self.last_error = str(_unavailable(exc))
                await self._sleep(BACKOFF_MAX_S)
                continue
            if device is None or self._closing:
                continue  # scanning took its timeout: no wait on top of it
            self.state = TransportState.CONNECTING.value
            self._lost = asyncio.Event()
            try:
                client = await establish_connection(
                    BleakClient,
                    device,
                    self.address,
                    disconnected_callback=self._on_lost,
                    max_attempts=2,
                    backend=self._client_backend,
                )
            except (BleakError, asyncio.TimeoutError, OSError, EOFError) as exc:
                self.state = TransportState.LOST.value
                self.last_error = type(exc).__name__
                await self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            await self._serve(client)
            backoff = BACKOFF_MIN_S
        self.state = TransportState.CLOSED.value

    async def _serve(self, client: Any) -> None:
        from bleak.exc import BleakError

        assert self._lost is not None
        writer: asyncio.Task[None] | None = None
        try:
            await client.start_notify(STREAM_UUID, self._on_notify)
            char = client.services.get_characteristic(COMMAND_UUID)
            if char is None:
                raise BleakError("the node has no command characteristic")
            self._write_size = max(20, int(char.max_write_without_response_size))
            self._outgoing.clear()
            self._write_ready = asyncio.Event()
            self._client = client
            writer = asyncio.create_task(self._writer(client), name=f"ble-writer:{self.address}")
            self.state = TransportState.LINKED.value
            self.last_error = ""
            self.connects += 1
            if self._on_connect is not None:
                self._on_connect()
            lost = asyncio.create_task(self._lost.wait())
            await asyncio.wait({lost, writer}, return_when=asyncio.FIRST_COMPLETED)
            lost.cancel()
            if writer.done() and not writer.cancelled() and writer.exception() is not None:
                self.last_error = type(writer.exception()).__name__
        except (BleakError, asyncio.TimeoutError, OSError, EOFError) as exc:
            self.last_error = type(exc).__name__
        finally:
            was_linked = self._client is not None
            self._client = None
            self._write_ready = None
            if writer is not None:
                writer.cancel()
                with contextlib.suppress(BaseException):
                    await writer
            with contextlib.suppress(Exception):
                await client.disconnect()
            if was_linked and self._on_disconnect is not None:
                self._on_disconnect()
            if not self._closing:
                self.state = TransportState.LOST.value

    def close(self) -> None:
        """Ask run() to finish: disconnects if connected."""
        self._stop_waiting()
        if self._lost is not None:
            self._lost.set()
