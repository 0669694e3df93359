"""A serial link on pyserial-asyncio that keeps a port open and comes back after unplugging.

It is one implementation of the transport interface (chaosmagnet.nodes.transport):
bytes in, bytes out, a state; frames and handshakes live above it.

The port is opened without a DTR/RTS transition: both lines are left asserted,
the state the kernel itself sets when a tty is opened, because dropping DTR
while RTS is high is the reset (and bootloader) sequence of the ESP32-S3's USB
serial.  Opening runs in a worker thread, writes go through the transport's
buffer and reads arrive as callbacks: a slow or vanished port never blocks the
event loop or the other sources.  While the port is missing the link polls for
it every ``retry_interval`` seconds (0.2 s), so it reopens well within 2 s of
the port reappearing.

Before every open a ``check_port`` callable (chaosmagnet.nodes.ports.PortGuard)
may say which path to open, or why to wait: a port that now belongs to
another device is never opened, so nothing is written to it.  After opening,
the device is compared with the one that was checked.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import serial
import serial_asyncio

from chaosmagnet.nodes.ports import PortCheck, fd_device_id
from chaosmagnet.nodes.transport import BytesCallback, EventCallback, RetryLoop, TransportState

PortChecker = Callable[[], PortCheck]


class _Protocol(asyncio.Protocol):
    def __init__(self, on_bytes: BytesCallback, lost: asyncio.Event) -> None:
        self._on_bytes = on_bytes
        self._lost = lost

    def data_received(self, data: bytes) -> None:
        self._on_bytes(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost.set()


def open_serial(port: str, baudrate: int = 115200) -> serial.Serial:
    """Open port raw, exclusively, keeping DTR and RTS asserted (no reset pulse)."""
    ser = serial.Serial()
    ser.port = port
    ser.baudrate = baudrate  # ignored by USB CDC; used by UART bridges
    ser.bytesize = serial.EIGHTBITS
    ser.parity = serial.PARITY_NONE
    ser.stopbits = serial.STOPBITS_ONE
    ser.xonxoff = False
    ser.rtscts = False
    ser.dsrdtr = False
    ser.exclusive = True
    ser.dtr = True
    ser.rts = True
    ser.timeout = 0
    ser.open()
    return ser


class SerialLink(RetryLoop):
    """Feeds the bytes of one serial port to ``on_bytes`` while the port exists.

    ``on_connect`` runs after every (re)open (the node connection sends hello
    there); ``on_disconnect`` after every loss.  ``run()`` returns only when
    ``close()`` is called.
    """

    def __init__(
        self,
        port: str,
        on_bytes: BytesCallback,
        *,
        on_connect: EventCallback | None = None,
        on_disconnect: EventCallback | None = None,
        baudrate: int = 115200,
        retry_interval: float = 0.2,
        check_port: PortChecker | None = None,
    ) -> None:
        self.port = port
        self.opened_port = ""  # the path actually opened (a USB node may have moved)
        self._check_port = check_port
        self.baudrate = baudrate
        self.retry_interval = retry_interval
        self._on_bytes = on_bytes
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._transport: asyncio.Transport | None = None
        super().__init__()
        self.state: str = TransportState.IDLE.value
        self.connects = 0
        self.last_error = ""
        self.refusal = ""  # why the last port check did not allow an open ("" when it did)
        self.wrong_device = False  # ...because another device is behind the path

    @property
    def is_open(self) -> bool:
        """True while the port is open."""
        return self._transport is not None

    def write(self, data: bytes) -> bool:
        """Queue bytes for the device; False when the port is not open."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        transport.write(data)
        return True

    async def run(self) -> None:
        """Open, read until lost, wait for the port, reopen; until close()."""
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while not self._closing:
            check = (  # the check lists ports (sysfs reads): off the event loop
                await asyncio.to_thread(self._check_port)
                if self._check_port is not None
                else PortCheck(self.port)
            )
            self.refusal, self.wrong_device = check.reason, check.wrong_device
            path = check.path
            if path is None or not os.path.exists(path):
                self.state = TransportState.WAITING.value
                await self._sleep(self.retry_interval)
                continue
            self.state = TransportState.CONNECTING.value
            try:
                ser = await asyncio.to_thread(open_serial, path, self.baudrate)
            except (serial.SerialException, OSError, ValueError) as exc:
                self.state = TransportState.WAITING.value
                self.last_error = type(exc).__name__
                await self._sleep(self.retry_interval)
                continue
            if check.device is not None and fd_device_id(ser.fileno()) != check.device:
                ser.close()  # the device changed between the check and the open
                self.state = TransportState.WAITING.value
                self.refusal, self.wrong_device = "port now belongs to another device", True
                await self._sleep(self.retry_interval)
                continue
            if self._closing:
                ser.close()
                break
            self.opened_port = path
            lost = asyncio.Event()
            transport, _ = await serial_asyncio.connection_for_serial(
                loop, lambda lost=lost: _Protocol(self._on_bytes, lost), ser
            )
            self._transport = transport
            self.state = TransportState.LINKED.value
            self.connects += 1
            if self._on_connect is not None:
                self._on_connect()
            try:
                await lost.wait()
            finally:
                self._transport = None
                if not transport.is_closing():
                    transport.close()
                if self._on_disconnect is not None:
                    self._on_disconnect()
            if not self._closing:
                self.state = TransportState.LOST.value
                await self._sleep(self.retry_interval)
        self.state = TransportState.CLOSED.value

    def close(self) -> None:
        """Ask run() to finish: closes the port if open."""
        self._stop_waiting()
        transport = self._transport
        if transport is not None:
            transport.close()
