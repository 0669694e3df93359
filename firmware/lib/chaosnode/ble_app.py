"""The node's main loop over Bluetooth LE on the board (MicroPython's ``bluetooth``).

Registers the GATT service of chaosnode.ble, advertises the node's label,
feeds writes to the node's command reader and notifies the frames through the
Outbox, chunked to the negotiated MTU.  After a disconnect the node advertises
again.  The radio is the same ``bluetooth.BLE()`` the HAL switched on for the
hardware RNG: it is never switched off while the node samples.
"""

import time

import bluetooth
import machine
from micropython import const

from chaosnode.ble import (
    ADV_INTERVAL_US,
    COMMAND_UUID,
    MAX_MTU,
    SERVICE_UUID,
    STREAM_UUID,
    BleService,
    advertising_payload,
    scan_response_payload,
)

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_MTU_EXCHANGED = const(21)
_FLAG_WRITE_NO_RESPONSE = const(0x0004)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)


class BoardBle:
    """bluetooth.BLE wired to a BleService: IRQs in, notifications out."""

    def __init__(self, ble, node, label):
        self.ble = ble
        self.label = label
        ble.active(True)
        ble.config(mtu=MAX_MTU)
        ble.config(gap_name=label[:29])
        service = (
            bluetooth.UUID(SERVICE_UUID),
            (
                (bluetooth.UUID(STREAM_UUID), _FLAG_NOTIFY),
                (bluetooth.UUID(COMMAND_UUID), _FLAG_WRITE | _FLAG_WRITE_NO_RESPONSE),
            ),
        )
        ((self.stream_handle, self.command_handle),) = ble.gatts_register_services((service,))
        ble.gatts_set_buffer(self.command_handle, 256, True)  # append: no write is lost between polls
        self.service = BleService(node, self._notify)
        self.inbox = bytearray()
        self.readvertise = False
        ble.irq(self._irq)

    def advertise(self):
        self.ble.gap_advertise(
            ADV_INTERVAL_US,
            adv_data=advertising_payload(self.label),
            resp_data=scan_response_payload(self.label),
            connectable=True,
        )
        self.service.start()

    def _irq(self, event, data):
        # IRQ context: record, do the work in the main loop
        if event == _IRQ_CENTRAL_CONNECT:
            self.service.on_connect(data[0])
        elif event == _IRQ_CENTRAL_DISCONNECT:
            self.service.on_disconnect(data[0])
            self.readvertise = True
        elif event == _IRQ_GATTS_WRITE:
            conn, handle = data[0], data[1]
            if handle == self.command_handle:
                self.inbox.extend(self.ble.gatts_read(handle))
                self.ble.gatts_write(handle, b"")
        elif event == _IRQ_MTU_EXCHANGED:
            self.service.on_mtu(data[1])

    def _notify(self, chunk):
        conn = self.service.conn
        if conn is None:
            return False
        try:
            self.ble.gatts_notify(conn, self.stream_handle, chunk)
        except OSError:  # ENOMEM: the stack's buffers are full; retry next turn
            return False
        return True

    def poll(self):
        """Main-loop work: re-advertise, run received commands, notify waiting chunks."""
        if self.readvertise:
            self.readvertise = False
            self.advertise()
        if self.inbox:
            data, self.inbox = bytes(self.inbox), bytearray()
            self.service.on_write(data)
        self.service.pump()


def run_ble(node, label):
    """Serve the node over BLE until reset (chaosnode.app calls this for link = "ble")."""
    board = BoardBle(bluetooth.BLE(), node, label)
    node.write = board.service.outbox.write
    board.advertise()
    while True:
        wait = node.step()
        if node.reboot_requested:
            board.service.pump()
            time.sleep_ms(100)
            machine.reset()
        board.poll()
        time.sleep_ms(wait if wait < 5 else 5)
