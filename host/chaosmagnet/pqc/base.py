"""The one interface every post-quantum backend implements, and the algorithm table.

Algorithm names follow FIPS 203/204 and the NIST submissions (``ML-KEM-768``,
``ML-DSA-65``, ``Falcon-512``, ``SPHINCS+-SHA2-128f-simple``).  A secret key is
carried as a ``KeyPair.secret`` with an encoding: ``seed`` (FIPS 203 d||z,
FIPS 204 xi; any backend re-derives the key from it) or ``expanded`` (the
algorithm's standard secret-key bytes, for keys that were not made from a seed).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from chaosmagnet.errors import PQCError

KeyKind = Literal["kem", "sign"]
SecretEncoding = Literal["seed", "expanded"]


@dataclass(frozen=True)
class AlgorithmSpec:
    """What an algorithm is: its kind, security strength, seed and public-key sizes.

    ``strength_bits`` is the classical security strength of its NIST category
    (1 -> 128, 3 -> 192, 5 -> 256); minting waits for twice that in credit.
    ``seed_size`` is the FIPS seeded-keygen input size, None when there is none.
    """

    name: str
    kind: KeyKind
    strength_bits: int
    public_key_size: int
    seed_size: int | None = None
    family: str = ""


def _sphincs(variant: str, strength: int, pk: int) -> AlgorithmSpec:
    return AlgorithmSpec(f"SPHINCS+-{variant}-simple", "sign", strength, pk, None, "SPHINCS+")


ALGORITHMS: dict[str, AlgorithmSpec] = {
    spec.name: spec
    for spec in [
        AlgorithmSpec("ML-KEM-512", "kem", 128, 800, 64, "ML-KEM"),
        AlgorithmSpec("ML-KEM-768", "kem", 192, 1184, 64, "ML-KEM"),
        AlgorithmSpec("ML-KEM-1024", "kem", 256, 1568, 64, "ML-KEM"),
        AlgorithmSpec("ML-DSA-44", "sign", 128, 1312, 32, "ML-DSA"),
        AlgorithmSpec("ML-DSA-65", "sign", 192, 1952, 32, "ML-DSA"),
        AlgorithmSpec("ML-DSA-87", "sign", 256, 2592, 32, "ML-DSA"),
        AlgorithmSpec("Falcon-512", "sign", 128, 897, None, "Falcon"),
        AlgorithmSpec("Falcon-1024", "sign", 256, 1793, None, "Falcon"),
        *[
            _sphincs(f"{hash_}-{level}{speed}", level, level // 4)
            for hash_ in ("SHA2", "SHAKE")
            for level in (128, 192, 256)
            for speed in ("f", "s")
        ],
    ]
}


def algorithm_spec(name: str, kind: str | None = None) -> AlgorithmSpec:
    """The spec of algorithm ``name`` (case-insensitive); PQCError if unknown.

    ``kind`` ("kem" or "sign") names what the caller wants, so that the error
    lists only algorithms of that kind.
    """
    spec = ALGORITHMS.get(name)
    if spec is None:
        for candidate in ALGORITHMS.values():
            if candidate.name.lower() == name.lower():
                return candidate
        names = [n for n, s in ALGORITHMS.items() if kind is None or s.kind == kind]
        what = {"kem": "KEM", "sign": "signature algorithm"}.get(kind or "", "algorithm")
        raise PQCError(f"unknown {what} {name!r} (known: {', '.join(names)})")
    return spec


@dataclass(frozen=True)
class KeyPair:
    """A generated key pair.  ``secret`` never appears in repr or str.

    ``seeded`` is True when the caller's seed alone determined the key (the
    secret is then the seed itself); False when the backend drew its own
    randomness and the secret is the expanded key.
    """

    algorithm: str
    public_key: bytes
    secret: bytes = field(repr=False)
    secret_encoding: SecretEncoding
    seeded: bool
    backend: str

    def __repr__(self) -> str:
        return (
            f"KeyPair(algorithm={self.algorithm!r}, backend={self.backend!r}, "
            f"public_key={self.public_key[:8].hex()}..., secret=<{self.secret_encoding}, hidden>)"
        )

    __str__ = __repr__


class PQCBackend(ABC):
    """A library that implements some post-quantum algorithms.

    Every method takes the algorithm name, so one backend object serves all
    of its algorithms.  Methods raise PQCError for an algorithm the backend
    does not serve, or an operation it cannot do (e.g. seeded keygen).
    """

    name: str = ""

    @abstractmethod
    def availability(self) -> tuple[bool, str]:
        """(True, "") if the library can be used here, else (False, why)."""

    @abstractmethod
    def algorithms(self) -> tuple[str, ...]:
        """Names of the algorithms this backend serves (empty when unavailable)."""

    def supports(self, algorithm: str) -> bool:
        """Whether this backend serves ``algorithm``."""
        return algorithm in self.algorithms()

    @abstractmethod
    def can_seed(self, algorithm: str) -> bool:
        """Whether keygen for ``algorithm`` can be driven by a caller's seed."""

    @abstractmethod
    def generate_keypair(self, algorithm: str, seed: bytes | None = None) -> KeyPair:
        """A new key pair; from ``seed`` when given (PQCError if it cannot be seeded)."""

    @abstractmethod
    def encapsulate(self, algorithm: str, public_key: bytes) -> tuple[bytes, bytes]:
        """(ciphertext, shared secret) for ``public_key``."""

    @abstractmethod
    def decapsulate(
        self, algorithm: str, secret: bytes, encoding: SecretEncoding, ciphertext: bytes
    ) -> bytes:
        """The shared secret in ``ciphertext``, using a secret in ``encoding``."""

    @abstractmethod
    def sign(
        self, algorithm: str, secret: bytes, encoding: SecretEncoding, message: bytes
    ) -> bytes:
        """A detached signature over ``message``."""

    def signing_key(
        self, algorithm: str, secret: bytes, encoding: SecretEncoding
    ) -> Callable[[bytes], bytes]:
        """A function that signs messages with this secret key, loaded once for repeated use.

        Backends whose keys are costly to load (a seed expanded on every call)
        return the loaded key's own signing method; the default signs through ``sign``.
        """
        spec = self._require(algorithm, "sign")

        def sign(message: bytes) -> bytes:
            return self.sign(spec.name, secret, encoding, message)

        return sign

    @abstractmethod
    def verify(self, algorithm: str, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """True iff ``signature`` is valid for ``message`` under ``public_key``."""

    def public_key_from_secret(
        self, algorithm: str, secret: bytes, encoding: SecretEncoding
    ) -> bytes:
        """The public key belonging to a seed (expanded keys: PQCError)."""
        if encoding != "seed":
            raise PQCError(
                f"{self.name}: cannot derive a public key from an expanded {algorithm} key"
            )
        return self.generate_keypair(algorithm, secret).public_key

    def private_key_pem(
        self, algorithm: str, secret: bytes, encoding: SecretEncoding
    ) -> bytes | None:
        """The secret key as PKCS#8 PEM, or None where no standard encoding is available."""
        return None

    def public_key_pem(self, algorithm: str, public_key: bytes) -> bytes | None:
        """The public key as SubjectPublicKeyInfo PEM, or None without a standard encoding."""
        return None

    # -- helpers for implementations -------------------------------------
    def _require(self, algorithm: str, kind: KeyKind | None = None) -> AlgorithmSpec:
        spec = algorithm_spec(algorithm)
        if not self.supports(spec.name):
            raise PQCError(f"backend {self.name} does not serve {spec.name}")
        if kind is not None and spec.kind != kind:
            raise PQCError(
                f"{spec.name} is not a {'KEM' if kind == 'kem' else 'signature'} algorithm"
            )
        return spec

    def _check_seed(self, spec: AlgorithmSpec, seed: bytes) -> None:
        if spec.seed_size is None or not self.can_seed(spec.name):
            raise PQCError(f"backend {self.name} cannot generate {spec.name} keys from a seed")
        if len(seed) != spec.seed_size:
            raise PQCError(f"{spec.name} seed must be {spec.seed_size} bytes, got {len(seed)}")

    def _check_public_key(self, spec: AlgorithmSpec, public_key: bytes) -> None:
        if len(public_key) != spec.public_key_size:
            raise PQCError(
                f"{spec.name} public key must be {spec.public_key_size} bytes, "
                f"got {len(public_key)}"
            )
