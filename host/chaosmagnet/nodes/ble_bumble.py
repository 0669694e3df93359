"""Bluetooth LE without a kernel adapter: Google's bumble stack, for tests and the simulator.

Not the production path.  Three parts:

- a bleak backend (``BumbleBleakClient``, ``BumbleBleakScanner``) bound to a
  bumble central (``BumbleCentral``), passed in through bleak's ``backend=``
  hook, so the host's BleLink and ``scan_nodes`` (the code that runs against
  BlueZ on a real machine) run unchanged over bumble;
- ``VirtualRadio``: a bumble LocalLink with virtual controllers on it, and
  optionally one controller served as an HCI transport (``tcp-server:...``) for
  a host in another process (CHAOS_BLE_HCI=tcp-client:...);
- ``BlePeripheral``: the firmware's Node and its BLE service state machine
  (chaosnode.ble) as a bumble GATT peripheral, the way chaosnode.ble_app runs
  them on a board.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_str
from bumble import gatt
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

logging.getLogger("bumble").setLevel(logging.ERROR)  # the virtual controller warns on every teardown

MTU = 247
_T = TypeVar("_T")
_PROPERTY_NAMES = {
    gatt.Characteristic.Properties.BROADCAST: "broadcast",
    gatt.Characteristic.Properties.READ: "read",
    gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE: "write-without-response",
    gatt.Characteristic.Properties.WRITE: "write",
    gatt.Characteristic.Properties.NOTIFY: "notify",
    gatt.Characteristic.Properties.INDICATE: "indicate",
}


def uuid_text(uuid: UUID) -> str:
    """A bumble UUID in bleak's form (lower-case, 128-bit with dashes)."""
    digits = bytes(reversed(uuid.uuid_bytes)).hex()
    if len(digits) in (4, 8):
        return normalize_uuid_str(digits)
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def address_text(address: Address) -> str:
    """AA:BB:CC:DD:EE:FF, without bumble's type suffix."""
    return address.to_string(with_type_qualifier=False).upper()


async def _as_bleak(awaitable: Awaitable[_T], what: str) -> _T:
    """Await a bumble operation; its failures become BleakError, as a bleak backend's must.

    bumble cancels a pending GATT request when the link drops (CancelledError):
    that is a lost connection, unless this task itself is being cancelled."""
    try:
        return await awaitable
    except asyncio.CancelledError:
        task = asyncio.current_task()
        cancelling = getattr(task, "cancelling", None)  # Python 3.11+
        if cancelling is None or cancelling():
            raise
        raise BleakError(f"{what}: the connection went away") from None
    except BleakError:
        raise
    except Exception as exc:
        raise BleakError(f"{what} failed: {type(exc).__name__}") from exc


class BumbleCentral:
    """One bumble Device acting as this process's Bluetooth adapter, shared by every
    scanner and client bound to it (scans are reference-counted, connects serialised)."""

    def __init__(self, make_device: Callable[[], Awaitable[Device]]) -> None:
        self._make_device = make_device
        self._device: Device | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self.connect_lock: asyncio.Lock | None = None
        self._scanners: set[BumbleBleakScanner] = set()
        self._scanning = False
        self._backends: tuple[type[BaseBleakClient], type[BaseBleakScanner]] | None = None

    async def device(self) -> Device:
        """The powered-on central (made on first use in this event loop)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop: start over
            self._loop, self._device, self._scanning = loop, None, False
            self._lock, self.connect_lock = asyncio.Lock(), asyncio.Lock()
            self._scanners.clear()
        assert self._lock is not None
        async with self._lock:
            if self._device is None:
                device = await self._make_device()
                device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)
                await device.power_on()
                self._device = device
        return self._device

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        for scanner in list(self._scanners):
            scanner.on_advertisement(advertisement)

    async def start_scan(self, scanner: BumbleBleakScanner) -> None:
        """Deliver advertisements to scanner (scanning starts with the first)."""
        device = await self.device()
        self._scanners.add(scanner)
        if not self._scanning:
            self._scanning = True
            await device.start_scanning(filter_duplicates=False)

    async def stop_scan(self, scanner: BumbleBleakScanner) -> None:
        """Stop delivering to scanner (scanning stops with the last)."""
        self._scanners.discard(scanner)
        if not self._scanners and self._scanning and self._device is not None:
            self._scanning = False
            with contextlib.suppress(Exception):
                await self._device.stop_scanning()

    def backends(self) -> tuple[type[BaseBleakClient], type[BaseBleakScanner]]:
        """(client backend, scanner backend) classes bound to this central, for bleak's backend=."""
        if self._backends is None:
            client = type("BumbleClient", (BumbleBleakClient,), {"central": self})
            scanner = type("BumbleScanner", (BumbleBleakScanner,), {"central": self})
            self._backends = (client, scanner)
        return self._backends


class BumbleBleakScanner(BaseBleakScanner):
    """bleak's scanner interface over a BumbleCentral."""

    central: BumbleCentral

    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)

    async def start(self) -> None:
        """Start scanning."""
        self.seen_devices = {}
        await self.central.start_scan(self)

    async def stop(self) -> None:
        """Stop scanning."""
        await self.central.stop_scan(self)

    def on_advertisement(self, adv: Advertisement) -> None:
        """One bumble advertisement as bleak's BLEDevice and AdvertisementData."""
        data = adv.data
        name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
            AdvertisingData.SHORTENED_LOCAL_NAME
        )
        local_name = name if isinstance(name, str) else None
        uuids: list[str] = []
        for kind in (
            AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        ):
            for value in data.get_all(kind):
                for uuid in value if isinstance(value, list) else [value]:
                    text = uuid_text(uuid)
                    if text not in uuids:
                        uuids.append(text)
        address = address_text(adv.address)
        advertisement = AdvertisementData(
            local_name=local_name,
            manufacturer_data={},
            service_data={},
            service_uuids=uuids,
            tx_power=None,
            rssi=int(adv.rssi),
            platform_data=(adv,),
        )
        device = self.create_or_update_device(address, address, local_name, adv.address, advertisement)
        if self.is_allowed_uuid(uuids):
            self.call_detection_callbacks(device, advertisement)


class BumbleBleakClient(BaseBleakClient):
    """bleak's client interface over a BumbleCentral: connect, discover, notify, write."""

    central: BumbleCentral

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        details = getattr(address_or_ble_device, "details", None)
        self._target = details if isinstance(details, Address) else Address(self.address)
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        """The peer's address (bumble keeps no name for it)."""
        return self.address

    @property
    def mtu_size(self) -> int:
        """The ATT MTU negotiated for this connection."""
        return self._connection.att_mtu if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        """True while the connection is up."""
        return self._connection is not None

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        """Connect, exchange the MTU and discover the services."""
        device = await self.central.device()
        assert self.central.connect_lock is not None
        timeout = float(kwargs.get("timeout", self._timeout))
        async with self.central.connect_lock:
            try:
                connection = await device.connect(self._target, timeout=timeout)
            except Exception as exc:  # bumble raises its own errors: bleak's callers expect BleakError
                raise BleakError(f"bumble connect failed: {type(exc).__name__}") from exc
        self._connection = connection
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        peer = Peer(connection)
        self._peer = peer
        try:
            await _as_bleak(peer.request_mtu(MTU), "MTU exchange")
            await _as_bleak(peer.discover_services(), "service discovery")
            for service in peer.services:
                await _as_bleak(peer.discover_characteristics(service=service), "service discovery")
                for characteristic in service.characteristics:
                    await _as_bleak(
                        peer.discover_descriptors(characteristic=characteristic), "service discovery"
                    )
        except BleakError:
            await self.disconnect()
            raise
        self.services = self._collection(peer, connection)

    @staticmethod
    def _collection(peer: Peer, connection: Connection) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in peer.services:
            bleak_service = BleakGATTService(service, service.handle, uuid_text(service.uuid))
            collection.add_service(bleak_service)
            for characteristic in service.characteristics:
                properties = [
                    name for flag, name in _PROPERTY_NAMES.items() if characteristic.properties & flag
                ]
                bleak_char = BleakGATTCharacteristic(
                    characteristic,
                    characteristic.handle,
                    uuid_text(characteristic.uuid),
                    properties,  # type: ignore[arg-type]
                    lambda: connection.att_mtu - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for descriptor in characteristic.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor, descriptor.handle, uuid_text(descriptor.type), bleak_char
                        )
                    )
        return collection

    def _on_disconnection(self, *_args: Any) -> None:
        self._connection = None
        self._peer = None
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        """Disconnect (nothing when not connected)."""
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.disconnect()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Not used by ChaosMagnet: the session handshake authenticates the node."""
        raise NotImplementedError

    async def unpair(self) -> None:
        """Not used by ChaosMagnet."""
        raise NotImplementedError

    def _need_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError("not connected")
        return self._peer

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a characteristic's value."""
        return bytearray(await _as_bleak(self._need_peer().read_value(characteristic.obj), "read"))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a descriptor's value."""
        return bytearray(await _as_bleak(self._need_peer().read_value(descriptor.obj), "read"))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        """Write a characteristic (with or without response)."""
        await _as_bleak(
            self._need_peer().write_value(characteristic.obj, bytes(data), with_response=response), "write"
        )

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        """Write a descriptor."""
        await _as_bleak(self._need_peer().write_value(descriptor.obj, bytes(data), with_response=True), "write")

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Subscribe to notifications; callback gets each payload."""

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[characteristic.handle] = deliver
        await _as_bleak(self._need_peer().subscribe(characteristic.obj, deliver), "subscribe")

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Unsubscribe."""
        deliver = self._subscribers.pop(characteristic.handle, None)
        await _as_bleak(self._need_peer().unsubscribe(characteristic.obj, deliver), "unsubscribe")


_HCI_CENTRALS: dict[str, BumbleCentral] = {}


def central_for_hci(spec: str) -> BumbleCentral:
    """The central on a bumble HCI transport (e.g. tcp-client:127.0.0.1:PORT, the adapter
    a ``nodes simulate --link ble`` serves); one per transport per process."""
    central = _HCI_CENTRALS.get(spec)
    if central is None:

        async def make() -> Device:
            from bumble.transport import open_transport

            transport = await open_transport(spec)
            return Device.with_hci(
                "chaos-host", Address.generate_static_address(), transport.source, transport.sink
            )

        central = _HCI_CENTRALS[spec] = BumbleCentral(make)
    return central


class VirtualRadio:
    """A bumble LocalLink: virtual controllers for centrals and peripherals in this process,
    and optionally one served on an HCI transport for a host in another process."""

    def __init__(self) -> None:
        self.link = LocalLink()
        self._count = 0
        self._transports: list[Any] = []
        self._controllers: dict[str, Controller] = {}

    def next_address(self) -> str:
        """A fresh static random address (C0:..., distinct per device on this radio)."""
        self._count += 1
        n = self._count
        return f"C0:00:00:00:{(n >> 8) & 0xFF:02X}:{n & 0xFF:02X}"

    def device(self, name: str, address: str | None = None) -> Device:
        """A bumble Device with its own virtual controller on this radio."""
        address = address or self.next_address()
        controller = Controller(name, link=self.link, public_address=address)
        self._controllers[address] = controller
        return Device(name=name, address=Address(address), host=Host(controller, AsyncPipeSink(controller)))

    def central(self) -> BumbleCentral:
        """A central (the host's adapter) on this radio."""

        async def make() -> Device:
            return self.device("chaos-host")

        return BumbleCentral(make)

    def power_off(self, address: str) -> None:
        """Take a device's controller off this radio (its address may then be used again)."""
        controller = self._controllers.pop(address, None)
        if controller is not None and controller in self.link.controllers:
            self.link.remove_controller(controller)

    async def serve_hci(self, spec: str) -> None:
        """Serve one more controller on this radio through an HCI transport (tcp-server:HOST:PORT)."""
        from bumble.transport import open_transport

        transport = await open_transport(spec)
        self._transports.append(transport)
        Controller("adapter", host_source=transport.source, host_sink=transport.sink, link=self.link)

    async def close(self) -> None:
        """Close the served transports."""
        for transport in self._transports:
            with contextlib.suppress(Exception):
                await transport.close()
        self._transports.clear()


class BlePeripheral:
    """The firmware's Node served over a virtual BLE peripheral, as chaosnode.ble_app serves it.

    ``present`` False takes it off the air (disconnects, stops advertising);
    True brings it back.  The node runs on a SimHal (the simulator's noise).
    """

    def __init__(
        self,
        radio: VirtualRadio,
        config: dict[str, Any],
        *,
        address: str | None = None,
        fault: str | None = None,
        seed: int | None = None,
    ) -> None:
        import importlib

        from chaosmagnet.nodes.faults import HAL_FAULTS, WIRE_FAULTS
        from chaosmagnet.nodes.simulator import FAULTS, SimHal, _Wire, firmware_modules

        modules = firmware_modules()
        self.ble = importlib.import_module("chaosnode.ble")
        self._node_class = modules["chaosnode.node"].Node
        self.config = config
        self.label = str(config.get("label", "node"))
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        self.hal = SimHal(fault if fault in HAL_FAULTS else None, seed)
        # wire faults (garbage, replay) corrupt the byte stream before the outbox chunks it
        self.wire = _Wire(fault, seed) if fault in WIRE_FAULTS else None
        self.outbox = self.ble.Outbox()
        self.node = self._node_class(self.hal, config, self._node_write)
        self.service = self.ble.BleService(self.node, self._notify, self.outbox)
        self.address = address or radio.next_address()
        self.radio = radio
        self.device = radio.device(self.label, self.address)
        self.stream = gatt.Characteristic(
            self.ble.STREAM_UUID, gatt.Characteristic.Properties.NOTIFY, gatt.Characteristic.READABLE, b""
        )
        command: gatt.Characteristic[bytes] = gatt.Characteristic(
            self.ble.COMMAND_UUID,
            gatt.Characteristic.Properties.WRITE | gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue[bytes](write=self._on_write),
        )
        self.device.add_service(gatt.Service(self.ble.SERVICE_UUID, [self.stream, command]))
        self.device.on(self.device.EVENT_CONNECTION, self._on_connection)
        self._outgoing: asyncio.Queue[tuple[Connection, bytes]] | None = None
        self._connection: Connection | None = None
        self.present = True
        self._running = False
        self._readvertise: asyncio.Task[None] | None = None

    # -- radio side ---------------------------------------------------------
    def _on_connection(self, connection: Connection) -> None:
        self._connection = connection
        self.service.on_connect(connection)
        connection.on(connection.EVENT_DISCONNECTION, lambda *_: self._on_disconnection(connection))
        connection.on(
            connection.EVENT_CONNECTION_ATT_MTU_UPDATE, lambda *_: self.service.on_mtu(connection.att_mtu)
        )

    def _on_disconnection(self, connection: Connection) -> None:
        if self._connection is connection:
            self._connection = None
        if self.service.on_disconnect(connection) and self.present and self._running:
            self._readvertise = asyncio.get_running_loop().create_task(self._advertise())

    def _on_write(self, connection: Connection, value: bytes) -> None:
        if connection is self._connection:
            self.service.on_write(bytes(value))

    def _node_write(self, data: Any) -> int | None:
        if self.wire is None:
            return int(self.outbox.write(data))
        self.wire.write(data)
        return None

    def _move_wire(self) -> None:
        wire = self.wire
        if wire is not None and wire.pending and self.service.state == self.ble.CONNECTED:
            taken = self.outbox.write(bytes(wire.pending))
            del wire.pending[:taken]
        elif wire is not None and self.service.state != self.ble.CONNECTED:
            wire.pending.clear()

    def _notify(self, chunk: bytes) -> bool:
        queue = self._outgoing
        if queue is None or self._connection is None or queue.full():
            return False
        queue.put_nowait((self._connection, chunk))
        return True

    async def _sender(self) -> None:
        assert self._outgoing is not None
        while True:
            connection, chunk = await self._outgoing.get()
            if connection is self._connection:
                with contextlib.suppress(Exception):
                    await self.device.notify_subscriber(connection, self.stream, chunk)

    async def _advertise(self) -> None:
        with contextlib.suppress(Exception):
            await self.device.start_advertising(
                advertising_data=self.ble.advertising_payload(self.label),
                scan_response_data=self.ble.scan_response_payload(self.label),
                advertising_interval_min=self.ble.ADV_INTERVAL_US / 1000,
                advertising_interval_max=self.ble.ADV_INTERVAL_US / 1000,
            )

    async def set_present(self, present: bool) -> None:
        """Take the node off the air (disconnect, stop advertising) or bring it back."""
        self.present = present
        if present:
            await self._advertise()
            return
        with contextlib.suppress(Exception):
            await self.device.stop_advertising()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.disconnect()

    # -- the node's loop ----------------------------------------------------
    async def run(self, until: Callable[[], bool] | None = None) -> None:
        """Power on, advertise and run the node's loop until stop() or until()."""
        self._outgoing = asyncio.Queue(32)
        sender = asyncio.create_task(self._sender())
        await self.device.power_on()
        self.service.start()
        await self._advertise()
        self._running = True
        try:
            while self._running and not (until and until()):
                wait_ms = self.node.step()
                if self.node.reboot_requested:
                    await self._reboot()
                    continue
                self._move_wire()
                self.service.pump()
                busy = self.outbox.pending() and not self._outgoing.full()
                await asyncio.sleep(0 if busy else min(wait_ms, 5) / 1000)
        finally:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
            self._running = False
            if self._readvertise is not None:
                with contextlib.suppress(BaseException):
                    await self._readvertise
            await self.set_present(False)
            await asyncio.sleep(0.05)  # let the controller answer the last commands
            self.radio.power_off(self.address)  # off the air for good

    async def _reboot(self) -> None:
        """machine.reset(): the connection drops, a new boot with the counter plus one."""
        self.service.pump()
        await asyncio.sleep(0.05)
        await self.set_present(False)
        self.hal.boots += 1
        self.node = self._node_class(self.hal, self.config, self._node_write)
        self.service.node = self.node
        await asyncio.sleep(0.2)
        await self.set_present(True)

    def stop(self) -> None:
        """Ask run() to finish."""
        self._running = False
