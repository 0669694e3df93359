"""PQClean's AVX2 ML-DSA-65, vendored in csrc/mldsa65/ (``chaosmagnet._mldsa65``).

The same code liboqs ships for x86-64, about five times faster to verify than
OpenSSL's portable ML-DSA here (40-70 µs against 170-250 µs): the collector
verifies every status of a fleet, and every host verifies its peers.  Built on
x86-64 only and used only where the CPU has AVX2, POPCNT and BMI2.

Signatures are FIPS 204 ML-DSA-65 with an empty context, hedged (32 fresh bytes
from the OS per signature), interchangeable with OpenSSL's both ways.  It signs
with a seed (FIPS 204 xi, expanded here exactly as ML-DSA.KeyGen_internal does)
or with the standard 4,032-byte secret key.  It is not offered for seeded
minting (``can_seed`` is False) so that minted keys stay with the `cryptography`
backend, which also exports them as PKCS#8.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaosmagnet.errors import PQCError
from chaosmagnet.pqc.base import KeyPair, PQCBackend, SecretEncoding

ALGORITHM = "ML-DSA-65"


def _load() -> tuple[Any, Any, str]:
    """(ffi, lib, "") when the module is built and the CPU can run it, else (None, None, why)."""
    try:
        from chaosmagnet._mldsa65 import ffi, lib
    except ImportError:
        return None, None, "not built on this machine type (x86-64 only)"
    if not lib.cm_mldsa65_cpu_ok():
        return None, None, "this CPU lacks AVX2, POPCNT or BMI2"
    return ffi, lib, ""


class PqcleanBackend(PQCBackend):
    """ML-DSA-65 through PQClean's AVX2 implementation."""

    name = "pqclean"

    def __init__(self) -> None:
        self._loaded: tuple[Any, Any, str] | None = None

    def _lib(self) -> tuple[Any, Any]:
        if self._loaded is None:
            self._loaded = _load()
        ffi, lib, reason = self._loaded
        if lib is None:
            raise PQCError(f"backend {self.name} is not available: {reason}")
        return ffi, lib

    def availability(self) -> tuple[bool, str]:
        if self._loaded is None:
            self._loaded = _load()
        reason = self._loaded[2]
        return (not reason, reason)

    def algorithms(self) -> tuple[str, ...]:
        return (ALGORITHM,) if self.availability()[0] else ()

    def can_seed(self, algorithm: str) -> bool:
        return False  # see the module docstring: seeded minting stays with `cryptography`

    def _keypair(self, seed: bytes | None) -> tuple[bytes, bytes]:
        ffi, lib = self._lib()
        public = ffi.new("uint8_t[]", lib.CM_MLDSA65_PUBLICKEYBYTES)
        secret = ffi.new("uint8_t[]", lib.CM_MLDSA65_SECRETKEYBYTES)
        if lib.cm_mldsa65_keypair(public, secret, ffi.NULL if seed is None else seed) != 0:
            raise PQCError(f"{ALGORITHM}: key generation failed")
        return bytes(public), bytes(secret)

    def generate_keypair(self, algorithm: str, seed: bytes | None = None) -> KeyPair:
        self._require(algorithm, "sign")
        if seed is not None:
            raise PQCError(f"backend {self.name} is not used for seeded {algorithm} keys")
        public, secret = self._keypair(None)
        return KeyPair(ALGORITHM, public, secret, "expanded", seeded=False, backend=self.name)

    def public_key_from_secret(self, algorithm: str, secret: bytes, encoding: SecretEncoding) -> bytes:
        return self._keypair(self._seed(algorithm, secret, encoding))[0]

    def encapsulate(self, algorithm: str, public_key: bytes) -> tuple[bytes, bytes]:
        raise PQCError(f"backend {self.name} does not serve {algorithm}")

    def decapsulate(self, algorithm: str, secret: bytes, encoding: SecretEncoding, ciphertext: bytes) -> bytes:
        raise PQCError(f"backend {self.name} does not serve {algorithm}")

    def _seed(self, algorithm: str, secret: bytes, encoding: SecretEncoding) -> bytes:
        spec = self._require(algorithm, "sign")
        if encoding != "seed":
            raise PQCError(f"{self.name}: cannot derive a public key from an expanded {algorithm} key")
        if len(secret) != spec.seed_size:
            raise PQCError(f"{spec.name} seed must be {spec.seed_size} bytes, got {len(secret)}")
        return secret

    def sign(self, algorithm: str, secret: bytes, encoding: SecretEncoding, message: bytes) -> bytes:
        self._require(algorithm, "sign")
        ffi, lib = self._lib()
        if encoding == "seed":
            expanded = self._keypair(self._seed(algorithm, secret, encoding))[1]
        elif len(secret) == lib.CM_MLDSA65_SECRETKEYBYTES:
            expanded = secret
        else:
            raise PQCError(f"{ALGORITHM} secret key must be {lib.CM_MLDSA65_SECRETKEYBYTES} bytes, got {len(secret)}")
        signature = ffi.new("uint8_t[]", lib.CM_MLDSA65_SIGNATUREBYTES)
        length = ffi.new("size_t *")
        if lib.cm_mldsa65_sign(signature, length, message, len(message), expanded) != 0:
            raise PQCError(f"{ALGORITHM}: signing failed")
        return bytes(ffi.buffer(signature, length[0]))

    def signing_key(self, algorithm: str, secret: bytes, encoding: SecretEncoding) -> Callable[[bytes], bytes]:
        self._require(algorithm, "sign")
        expanded = self._keypair(self._seed(algorithm, secret, encoding))[1] if encoding == "seed" else secret

        def sign(message: bytes) -> bytes:
            return self.sign(ALGORITHM, expanded, "expanded", message)

        return sign

    def verify(self, algorithm: str, public_key: bytes, message: bytes, signature: bytes) -> bool:
        spec = self._require(algorithm, "sign")
        _, lib = self._lib()
        self._check_public_key(spec, public_key)
        if len(signature) != lib.CM_MLDSA65_SIGNATUREBYTES:
            return False
        return lib.cm_mldsa65_verify(signature, len(signature), message, len(message), public_key) == 0
