"""Frame layout of docs/wire-protocol.md, version 2, and a no-allocation writer.

    off len field
    0   4   magic C4 4D 4E A7
    4   1   version (2)
    5   1   type (1 data, 2 status, 3 heartbeat, 4 reply, 5 handshake)
    6   2   payload length L, u16 little-endian, at most MAX_PAYLOAD
    8   8   node id
    16  8   session id (zero in a handshake frame)
    24  4   sequence, u32 LE, +1 per frame of this session
    28  4   timestamp, ms since boot mod 2^32
    32  1   source id (0 none, 1 adc, 2 rng, 3 jitter)
    33  1   bits per sample (0 for non-data frames)
    34  1   flags (bit 0 health failure in this frame, bit 1 conditioned)
    35  1   reserved, 0
    36  4   samples tested by this source since boot, mod 2^32
    40  4   RCT failures since boot
    44  4   APT failures since boot
    48  L   payload
    48+L 32 HMAC-SHA256(session key, bytes 0 .. 48+L); the node key for a handshake
"""

import struct

from chaosnode.hmac256 import TAG_SIZE, Hmac256

MAGIC = b"\xc4\x4d\x4e\xa7"
VERSION = 2
HEADER_SIZE = 48
MAX_PAYLOAD = 2048

TYPE_DATA = 1
TYPE_STATUS = 2
TYPE_HEARTBEAT = 3
TYPE_REPLY = 4
TYPE_HANDSHAKE = 5

SOURCE_NONE = 0
SOURCE_ADC = 1
SOURCE_RNG = 2
SOURCE_JITTER = 3
SOURCE_NAMES = ("", "adc", "rng", "jitter")

FLAG_HEALTH_FAIL = 1
FLAG_CONDITIONED = 2

U32 = 0xFFFFFFFF
# Fields written per frame, from offset 24: sequence, timestamp, source, bits,
# flags, reserved, samples, RCT failures, APT failures.
_TAIL_FORMAT = "<IIBBBBIII"


def encode_frame(key, node_id, session_id, seq, ftype, timestamp, source, bits, flags,
                 samples, rct_failures, apt_failures, payload):
    """Build one complete frame (header, payload, tag) as bytes."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload too long")
    if len(node_id) != 8 or len(session_id) != 8:
        raise ValueError("node id and session id are 8 bytes each")
    head = bytearray(HEADER_SIZE)
    head[0:4] = MAGIC
    struct.pack_into("<BBH", head, 4, VERSION, ftype, len(payload))
    head[8:16] = node_id
    head[16:24] = session_id
    struct.pack_into(_TAIL_FORMAT, head, 24, seq & U32, timestamp & U32, source, bits, flags,
                     0, samples & U32, rct_failures & U32, apt_failures & U32)
    body = bytes(head) + bytes(payload)
    return body + Hmac256(key).tag(body)


class FrameWriter:
    """Builds frames in one preallocated buffer; the sampler fills the payload in place.

    ``payload(n)`` gives a memoryview of the payload area; ``finish(...)`` writes
    the header and tag and returns a memoryview of the whole frame, valid until
    the next call.  Frames are tagged under the session key given to
    ``start_session``; the sequence counts every frame of that session, and
    ``exhausted`` is set when it wraps (the session must end).
    """

    def __init__(self, node_id, max_payload=MAX_PAYLOAD):
        if len(node_id) != 8:
            raise ValueError("node id is 8 bytes")
        self.max_payload = max_payload
        self.buf = bytearray(HEADER_SIZE + max_payload + TAG_SIZE)
        self.view = memoryview(self.buf)
        self.mac = None
        self.seq = 0
        self.exhausted = False
        self.buf[0:4] = MAGIC
        self.buf[4] = VERSION
        self.buf[8:16] = node_id

    def start_session(self, session_key, session_id):
        """Tag frames under a new session key and id; the sequence starts at 0."""
        self.mac = Hmac256(session_key)
        self.buf[16:24] = session_id
        self.seq = 0
        self.exhausted = False

    def end_session(self):
        """Forget the session key: nothing can be framed until the next handshake."""
        self.mac = None
        self.buf[16:24] = bytes(8)

    def payload(self, n):
        """Memoryview of the payload area for an n-byte payload."""
        if n > self.max_payload:
            raise ValueError("payload too long")
        return self.view[HEADER_SIZE : HEADER_SIZE + n]

    def finish(self, ftype, length, timestamp, source=0, bits=0, flags=0,
               samples=0, rct_failures=0, apt_failures=0):
        """Write header and tag around the payload already in place; return the frame."""
        if self.mac is None:
            raise ValueError("no session")
        buf = self.buf
        buf[5] = ftype
        buf[6] = length & 0xFF
        buf[7] = length >> 8
        struct.pack_into(_TAIL_FORMAT, buf, 24, self.seq, timestamp & U32, source, bits, flags,
                         0, samples & U32, rct_failures & U32, apt_failures & U32)
        end = HEADER_SIZE + length
        buf[end : end + TAG_SIZE] = self.mac.tag(self.view[0:end])
        self.seq = (self.seq + 1) & U32
        if self.seq == 0:
            self.exhausted = True  # 2^32 frames: the caller ends the session
        return self.view[0 : end + TAG_SIZE]
