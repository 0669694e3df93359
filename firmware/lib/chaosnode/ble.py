"""The node's Bluetooth LE link, portable part: UUIDs, advertising payloads, the outbox
that chunks frames to the negotiated MTU, and the service's state machine.

The GATT service (UUIDs below, documented in docs/wire-protocol.md) has a
notify characteristic, node to host, and a write characteristic, host to node.
Both carry a plain byte stream: the frames exactly as the serial link carries
them, cut into notifications of at most ATT_MTU - 3 bytes, and the host's
command lines cut into writes.  There is no chunk header: ATT notifications
on one connection arrive complete and in order (the link layer acknowledges
and retransmits), so the host hands the payloads in order to the same
byte-stream frame parser as a serial port's reads; a chunk the node could not
send is retried, never skipped.  Commands are lines, so the node's LineReader
joins writes the same way.

Board code (chaosnode.ble_app) feeds the IRQs in here; the host's simulator
and the tests (MicroPython VM) drive the same class.
"""

SERVICE_UUID = "c4a05e10-7d1b-4b8e-9a6f-3f2d8c0e5a01"
STREAM_UUID = "c4a05e10-7d1b-4b8e-9a6f-3f2d8c0e5a02"  # notify: frames, node -> host
COMMAND_UUID = "c4a05e10-7d1b-4b8e-9a6f-3f2d8c0e5a03"  # write: hello and commands, host -> node

ADV_INTERVAL_US = 100000  # 100 ms: a host finds a node again well within 2 s
DEFAULT_MTU = 23  # ATT_MTU before an exchange; notifications carry MTU - 3 bytes
MAX_MTU = 247  # what the node offers (fits one LE data-length-extended packet)
OUTBOX_BYTES = 8192  # frames waiting for notifications; a full outbox is a short write
AD_FLAGS = 0x01
AD_SHORT_NAME = 0x08
AD_COMPLETE_NAME = 0x09
AD_UUID128_COMPLETE = 0x07
ADV_NAME_MAX = 8  # 31 bytes: flags (3) + 128-bit UUID (18) + name (2 + 8)
SCAN_NAME_MAX = 29

# service states
ADVERTISING = "advertising"
CONNECTED = "connected"
IDLE = "idle"


def uuid_bytes(text):
    """A 128-bit UUID string as the 16 little-endian bytes advertising and GATT use."""
    hexdigits = text.replace("-", "")
    if len(hexdigits) != 32:
        raise ValueError("not a 128-bit UUID")
    raw = bytes(int(hexdigits[i:i + 2], 16) for i in range(0, 32, 2))
    return bytes(reversed(raw))


def _ad(ad_type, value):
    return bytes((len(value) + 1, ad_type)) + value


def advertising_payload(label):
    """Flags, our service UUID and the label (shortened to 8 bytes when longer): 31 bytes at most."""
    name = label.encode()
    short = name[:ADV_NAME_MAX]
    name_type = AD_COMPLETE_NAME if len(name) <= ADV_NAME_MAX else AD_SHORT_NAME
    return _ad(AD_FLAGS, b"\x06") + _ad(AD_UUID128_COMPLETE, uuid_bytes(SERVICE_UUID)) + _ad(name_type, short)


def scan_response_payload(label):
    """The complete label (up to 29 bytes) for active scanners."""
    return _ad(AD_COMPLETE_NAME, label.encode()[:SCAN_NAME_MAX])


def parse_advertising(data):
    """{ad type: value} of an advertising payload (the last of each type wins)."""
    fields = {}
    i = 0
    n = len(data)
    while i < n:
        length = data[i]
        if length == 0 or i + 1 + length > n:
            break
        fields[data[i + 1]] = bytes(data[i + 2:i + 1 + length])
        i += 1 + length
    return fields


class Outbox:
    """Bytes waiting to be notified, cut into chunks of at most ``chunk`` bytes.

    ``write(buf)`` is the node's write callable: it takes what fits and returns
    that count (the node finishes short writes or counts the frame dropped).
    Sent bytes are skipped by an offset and compacted away in bulk, so the
    board does not copy the buffer for every notification.
    """

    def __init__(self, capacity=OUTBOX_BYTES):
        self.capacity = capacity
        self.buf = bytearray()
        self.start = 0
        self.chunk = DEFAULT_MTU - 3
        self.chunks_sent = 0
        self.bytes_sent = 0

    def write(self, data):
        room = self.capacity - self.pending()
        if room <= 0:
            return 0
        n = len(data) if len(data) <= room else room
        if self.start and len(self.buf) + n > self.capacity:
            self.buf = self.buf[self.start:]  # compact only when the new bytes need the space
            self.start = 0
        self.buf.extend(data[0:n] if n < len(data) else data)
        return n

    def pending(self):
        return len(self.buf) - self.start

    def peek(self):
        """The next chunk to notify (empty when nothing waits)."""
        return bytes(self.buf[self.start:self.start + self.chunk])

    def sent(self, n):
        """The first n waiting bytes went out."""
        self.start += n
        if self.start >= len(self.buf):
            self.buf = bytearray()
            self.start = 0
        self.chunks_sent += 1
        self.bytes_sent += n

    def clear(self):
        self.buf = bytearray()
        self.start = 0


class BleService:
    """The link's state machine: advertising -> connected -> (disconnect) -> advertising.

    ``node`` is the firmware Node; ``notify(chunk)`` sends one notification and
    returns True, or False when the radio's buffers are full (try again later).
    One central at a time: the node stops advertising while connected and
    advertises again after the disconnect.  A new connection needs a new
    handshake: the node's session ends with the connection.
    """

    def __init__(self, node, notify, outbox=None):
        self.node = node
        self.notify = notify
        self.outbox = outbox if outbox is not None else Outbox()
        self.state = IDLE
        self.conn = None
        self.connections = 0
        self.notify_failures = 0

    def start(self):
        """Begin advertising; returns True when the caller must (re)start advertising."""
        self.state = ADVERTISING
        return True

    def on_connect(self, conn):
        self.conn = conn
        self.connections += 1
        self.state = CONNECTED
        self.outbox.clear()
        self.outbox.chunk = DEFAULT_MTU - 3

    def on_mtu(self, mtu):
        """The ATT MTU was exchanged: notifications can carry MTU - 3 bytes."""
        if mtu < DEFAULT_MTU:
            mtu = DEFAULT_MTU
        if mtu > MAX_MTU:
            mtu = MAX_MTU
        self.outbox.chunk = mtu - 3

    def on_disconnect(self, conn=None):
        """The central went away: drop what waits, end the session, advertise again (True)."""
        self.conn = None
        self.outbox.clear()
        self.node.link_lost()
        self.state = ADVERTISING
        return True

    def on_write(self, data):
        """Bytes the host wrote to the command characteristic."""
        if self.state == CONNECTED:
            self.node.feed_commands(data)

    def pump(self, budget=64):
        """Notify waiting chunks until the outbox is empty, the radio is full or budget is spent."""
        sent = 0
        while self.state == CONNECTED and self.outbox.pending() and sent < budget:
            chunk = self.outbox.peek()
            if not self.notify(chunk):
                self.notify_failures += 1
                break
            self.outbox.sent(len(chunk))
            sent += 1
        return sent
