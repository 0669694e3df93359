"""The node's side of the per-connection handshake (docs/wire-protocol.md, version 2).

HKDF-SHA256 (RFC 5869) over the firmware's HMAC: the session key and id come
from the node key, the host's challenge, the boot nonce, a fresh link nonce,
the node id and the boot counter.  Host commands carry a counter and an
HMAC-SHA256 tag under the session key; ``CommandGate`` refuses unauthenticated,
forged and replayed ones.
"""

import struct

from chaosnode.hmac256 import Hmac256, hmac_sha256

SESSION_INFO = b"chaosmagnet/2 session"
COMMAND_DOMAIN = b"chaosmagnet/2 command\n"
CHALLENGE_SIZE = 16
U32 = 0xFFFFFFFF


def hkdf_sha256(salt, ikm, info, length):
    """RFC 5869 extract-then-expand; length at most 255 * 32 bytes."""
    prk = hmac_sha256(salt, ikm)
    mac = Hmac256(prk)
    out = b""
    block = b""
    i = 1
    while len(out) < length:
        block = mac.tag(block + info + bytes([i]))
        out += block
        i += 1
    return out[:length]


def derive_session(node_key, node_id, challenge, boot_nonce, link_nonce, boot_counter):
    """(session key, session id) of one connection: 32 and 8 bytes."""
    info = SESSION_INFO + bytes(node_id) + struct.pack("<I", boot_counter & U32)
    okm = hkdf_sha256(bytes(challenge) + bytes(boot_nonce) + bytes(link_nonce), node_key, info, 64)
    return okm[0:32], okm[32:40]


def handshake_payload(challenge, boot_nonce, link_nonce, boot_counter):
    """The 36-byte HANDSHAKE payload: challenge, boot nonce, link nonce, boot counter."""
    return bytes(challenge) + bytes(boot_nonce) + bytes(link_nonce) + struct.pack("<I", boot_counter & U32)


def command_tag(session_key, session_id, counter, text):
    """The tag of one command (text: the command words joined by single spaces, bytes)."""
    return hmac_sha256(session_key, COMMAND_DOMAIN + session_id + struct.pack("<I", counter & U32) + text)


def _same(a, b):
    """Compare two equal-length byte strings without stopping at the first difference."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


class CommandGate:
    """Checks ``auth COUNTER TAG COMMAND...`` lines of one session; counters must rise."""

    def __init__(self, session_key, session_id):
        self.mac = Hmac256(session_key)
        self.session_id = session_id
        self.last = 0
        self.refused = 0

    def check(self, words):
        """The command words of an authentic, fresh line; else an error text (a str)."""
        if len(words) < 4 or words[0] != "auth":
            self.refused += 1
            return "error unauthenticated"
        try:
            counter = int(words[1])
            tag = _unhex(words[2])
        except ValueError:
            counter = -1
            tag = b""
        if counter < 1 or counter > U32 or len(tag) != 32:
            self.refused += 1
            return "error bad command tag"
        text = " ".join(words[3:]).encode()
        want = self.mac.tag(COMMAND_DOMAIN + self.session_id + struct.pack("<I", counter) + text)
        if not _same(want, tag):
            self.refused += 1
            return "error bad command tag"
        if counter <= self.last:
            self.refused += 1
            return "error replayed command"
        self.last = counter
        return words[3:]


def _unhex(text):
    if len(text) % 2:
        raise ValueError("odd hex")
    return bytes(int(text[i : i + 2], 16) for i in range(0, len(text), 2))
