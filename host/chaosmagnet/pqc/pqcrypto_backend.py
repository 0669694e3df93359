"""`pqcrypto` 0.4.0 (PQClean) backend: ML-KEM, ML-DSA, Falcon and SPHINCS+.

Pinned to 0.4.0 because 1.0.0 dropped Falcon.  pqcrypto exposes no seeded
key generation: its keys come from the OS RNG inside PQClean, so they are
never derived from pool seeds, and a bundle made with it says so.  Secret keys
are the algorithm's standard (expanded) secret-key bytes.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from chaosmagnet.errors import PQCError
from chaosmagnet.pqc.base import ALGORITHMS, KeyPair, PQCBackend, SecretEncoding


def _module_name(algorithm: str) -> tuple[str, str]:
    """('kem'|'sign', pqcrypto module name) for one of our algorithm names."""
    spec = ALGORITHMS[algorithm]
    if spec.family == "SPHINCS+":
        name = "sphincs_" + algorithm.removeprefix("SPHINCS+-").replace("-", "_").lower()
    else:
        name = algorithm.replace("-", "_").lower()
    return spec.kind, name


class PqcryptoBackend(PQCBackend):
    """PQClean implementations through the `pqcrypto` wheel."""

    name = "pqcrypto"

    def __init__(self) -> None:
        self._modules: dict[str, ModuleType] = {}
        self._available: tuple[str, ...] | None = None
        self._reason = ""

    def _scan(self) -> tuple[str, ...]:
        if self._available is None:
            found: list[str] = []
            try:
                importlib.import_module("pqcrypto")
            except ImportError as exc:
                self._reason = f"pqcrypto is not installed ({exc})"
                self._available = ()
                return self._available
            for algorithm in ALGORITHMS:
                kind, module = _module_name(algorithm)
                try:
                    self._modules[algorithm] = importlib.import_module(f"pqcrypto.{kind}.{module}")
                except ImportError:
                    continue
                found.append(algorithm)
            self._available = tuple(found)
        return self._available

    def availability(self) -> tuple[bool, str]:
        algorithms = self._scan()
        return (bool(algorithms), self._reason or ("" if algorithms else "no algorithms found"))

    def algorithms(self) -> tuple[str, ...]:
        return self._scan()

    def can_seed(self, algorithm: str) -> bool:
        return False

    def _module(self, algorithm: str) -> ModuleType:
        spec = self._require(algorithm)
        return self._modules[spec.name]

    @staticmethod
    def _expanded(algorithm: str, encoding: SecretEncoding) -> None:
        if encoding != "expanded":
            raise PQCError(f"pqcrypto needs an expanded {algorithm} secret key, not a seed")

    def generate_keypair(self, algorithm: str, seed: bytes | None = None) -> KeyPair:
        spec = self._require(algorithm)
        if seed is not None:
            self._check_seed(spec, seed)  # always raises: no seeded keygen here
        public_key, secret_key = self._module(spec.name).generate_keypair()
        return KeyPair(spec.name, public_key, secret_key, "expanded", False, self.name)

    def encapsulate(self, algorithm: str, public_key: bytes) -> tuple[bytes, bytes]:
        spec = self._require(algorithm, "kem")
        self._check_public_key(spec, public_key)
        ciphertext, shared_secret = self._module(spec.name).encrypt(public_key)
        return ciphertext, shared_secret

    def decapsulate(
        self, algorithm: str, secret: bytes, encoding: SecretEncoding, ciphertext: bytes
    ) -> bytes:
        spec = self._require(algorithm, "kem")
        self._expanded(spec.name, encoding)
        try:
            return self._module(spec.name).decrypt(secret, ciphertext)
        except (ValueError, RuntimeError) as exc:
            raise PQCError(f"{spec.name}: cannot decapsulate ({exc})") from None

    def sign(
        self, algorithm: str, secret: bytes, encoding: SecretEncoding, message: bytes
    ) -> bytes:
        spec = self._require(algorithm, "sign")
        self._expanded(spec.name, encoding)
        try:
            return self._module(spec.name).sign(secret, message)
        except (ValueError, RuntimeError) as exc:
            raise PQCError(f"{spec.name}: cannot sign ({exc})") from None

    def verify(self, algorithm: str, public_key: bytes, message: bytes, signature: bytes) -> bool:
        spec = self._require(algorithm, "sign")
        self._check_public_key(spec, public_key)
        try:
            return bool(self._module(spec.name).verify(public_key, message, signature))
        except ValueError:  # signature longer than the algorithm allows
            return False
