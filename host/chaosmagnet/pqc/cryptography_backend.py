"""`cryptography` (OpenSSL) backend: ML-KEM-768/1024 and ML-DSA-44/65/87.

Key generation is seeded (``from_seed_bytes``: 64-byte d||z for ML-KEM,
32-byte xi for ML-DSA), secret keys are always seeds, and PKCS#8 export is
available, so OpenSSL and other tools can use the keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaosmagnet.errors import PQCError
from chaosmagnet.pqc.base import KeyPair, PQCBackend, SecretEncoding

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem

    _KEM: dict[str, tuple[Any, Any]] = {
        "ML-KEM-768": (mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey),
        "ML-KEM-1024": (mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey),
    }
    _SIGN: dict[str, tuple[Any, Any]] = {
        "ML-DSA-44": (mldsa.MLDSA44PrivateKey, mldsa.MLDSA44PublicKey),
        "ML-DSA-65": (mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PublicKey),
        "ML-DSA-87": (mldsa.MLDSA87PrivateKey, mldsa.MLDSA87PublicKey),
    }
    _IMPORT_ERROR = ""
except ImportError as exc:  # cryptography < 50 has no ML-KEM/ML-DSA
    _KEM, _SIGN = {}, {}
    _IMPORT_ERROR = f"cryptography >= 50 with ML-KEM/ML-DSA is needed ({exc})"


class CryptographyBackend(PQCBackend):
    """ML-KEM and ML-DSA through the `cryptography` package (OpenSSL 3.5+)."""

    name = "cryptography"

    def availability(self) -> tuple[bool, str]:
        return (not _IMPORT_ERROR, _IMPORT_ERROR)

    def algorithms(self) -> tuple[str, ...]:
        return tuple(_KEM) + tuple(_SIGN)

    def can_seed(self, algorithm: str) -> bool:
        return self.supports(algorithm)

    def _classes(self, algorithm: str) -> tuple[Any, Any]:
        spec = self._require(algorithm)
        return (_KEM if spec.kind == "kem" else _SIGN)[spec.name]

    def _private(self, algorithm: str, secret: bytes, encoding: SecretEncoding) -> Any:
        if encoding != "seed":
            raise PQCError(f"{self.name} loads {algorithm} secret keys from seeds only")
        spec = self._require(algorithm)
        if len(secret) != spec.seed_size:
            raise PQCError(f"{spec.name} seed must be {spec.seed_size} bytes, got {len(secret)}")
        return self._classes(algorithm)[0].from_seed_bytes(secret)

    def generate_keypair(self, algorithm: str, seed: bytes | None = None) -> KeyPair:
        spec = self._require(algorithm)
        private_cls = self._classes(spec.name)[0]
        if seed is None:
            key = private_cls.generate()
            seeded = False
        else:
            self._check_seed(spec, seed)
            key = private_cls.from_seed_bytes(seed)
            seeded = True
        return KeyPair(
            algorithm=spec.name,
            public_key=key.public_key().public_bytes_raw(),
            secret=key.private_bytes_raw(),  # the seed
            secret_encoding="seed",
            seeded=seeded,
            backend=self.name,
        )

    def encapsulate(self, algorithm: str, public_key: bytes) -> tuple[bytes, bytes]:
        spec = self._require(algorithm, "kem")
        self._check_public_key(spec, public_key)
        public = _KEM[spec.name][1].from_public_bytes(public_key)
        shared_secret, ciphertext = public.encapsulate()
        return ciphertext, shared_secret

    def decapsulate(
        self, algorithm: str, secret: bytes, encoding: SecretEncoding, ciphertext: bytes
    ) -> bytes:
        self._require(algorithm, "kem")
        try:
            return self._private(algorithm, secret, encoding).decapsulate(ciphertext)
        except ValueError as exc:
            raise PQCError(f"{algorithm}: cannot decapsulate ({exc})") from None

    def sign(
        self, algorithm: str, secret: bytes, encoding: SecretEncoding, message: bytes
    ) -> bytes:
        self._require(algorithm, "sign")
        return self._private(algorithm, secret, encoding).sign(message)

    def signing_key(
        self, algorithm: str, secret: bytes, encoding: SecretEncoding
    ) -> Callable[[bytes], bytes]:
        # from_seed_bytes re-expands the seed (about a sixth of an ML-DSA-65
        # signature's time): load it once and keep the key object.
        self._require(algorithm, "sign")
        sign: Callable[[bytes], bytes] = self._private(algorithm, secret, encoding).sign
        return sign

    def verify(self, algorithm: str, public_key: bytes, message: bytes, signature: bytes) -> bool:
        spec = self._require(algorithm, "sign")
        self._check_public_key(spec, public_key)
        public = _SIGN[spec.name][1].from_public_bytes(public_key)
        try:
            public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def public_key_pem(self, algorithm: str, public_key: bytes) -> bytes | None:
        spec = self._require(algorithm)
        self._check_public_key(spec, public_key)
        public = self._classes(spec.name)[1].from_public_bytes(public_key)
        from cryptography.hazmat.primitives import serialization  # PEM export only

        return public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def private_key_pem(
        self, algorithm: str, secret: bytes, encoding: SecretEncoding
    ) -> bytes | None:
        key = self._private(algorithm, secret, encoding)
        from cryptography.hazmat.primitives import serialization  # PEM export only

        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
