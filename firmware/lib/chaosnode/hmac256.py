"""HMAC-SHA256 (RFC 2104) over hashlib.sha256, for ports without an hmac module.

MicroPython's sha256 objects cannot be copied and finalize on digest(), so the
padded keys are kept and both hashes are started afresh for every tag.
"""

import hashlib

BLOCK_SIZE = 64
TAG_SIZE = 32


class Hmac256:
    """A keyed HMAC-SHA256: ``tag(msg)`` returns the 32-byte tag of msg."""

    def __init__(self, key):
        if len(key) > BLOCK_SIZE:
            key = hashlib.sha256(key).digest()
        padded = bytearray(BLOCK_SIZE)
        padded[0 : len(key)] = key
        ipad = bytearray(BLOCK_SIZE)
        opad = bytearray(BLOCK_SIZE)
        for i in range(BLOCK_SIZE):
            ipad[i] = padded[i] ^ 0x36
            opad[i] = padded[i] ^ 0x5C
        self._ipad = bytes(ipad)
        self._opad = bytes(opad)

    def tag(self, msg):
        """Return HMAC-SHA256(key, msg); msg is any buffer (bytes, memoryview)."""
        inner = hashlib.sha256(self._ipad)
        inner.update(msg)
        outer = hashlib.sha256(self._opad)
        outer.update(inner.digest())
        return outer.digest()


def hmac_sha256(key, msg):
    """One-shot HMAC-SHA256."""
    return Hmac256(key).tag(msg)
