"""Interoperability: keys, ciphertexts and signatures made by one backend, used by another."""

from __future__ import annotations

import itertools

import pytest
from chaosmagnet.pqc import all_backends
from chaosmagnet.pqc.base import PQCBackend


def _serving(algorithm: str) -> list[PQCBackend]:
    return [b for b in all_backends() if b.availability()[0] and b.supports(algorithm)]


def _pairs(algorithm: str, required: tuple[str, str] | None = None):
    backends = _serving(algorithm)
    names = {b.name for b in backends}
    if required and not set(required) <= names:
        missing = ", ".join(sorted(set(required) - names))
        pytest.skip(f"{algorithm} interop needs {missing}")
    if len(backends) < 2:
        pytest.skip(f"fewer than two backends serve {algorithm}")
    return list(itertools.permutations(backends, 2))


@pytest.mark.parametrize("algorithm", ["ML-KEM-512", "ML-KEM-768", "ML-KEM-1024"])
def test_mlkem_across_backends(algorithm: str) -> None:
    required = ("cryptography", "pqcrypto") if algorithm == "ML-KEM-768" else None
    for owner, sender in _pairs(algorithm, required):
        pair = owner.generate_keypair(algorithm)
        ciphertext, shared = sender.encapsulate(algorithm, pair.public_key)
        received = owner.decapsulate(algorithm, pair.secret, pair.secret_encoding, ciphertext)
        assert received == shared, f"{sender.name} -> {owner.name}"


def test_mlkem768_seeded_key_is_the_same_key_everywhere() -> None:
    """A seed made into a key by `cryptography` decapsulates what pqcrypto encapsulates."""
    crypto = next((b for b in _serving("ML-KEM-768") if b.name == "cryptography"), None)
    pq = next((b for b in _serving("ML-KEM-768") if b.name == "pqcrypto"), None)
    if crypto is None or pq is None:
        pytest.skip("needs cryptography and pqcrypto")
    seed = bytes(range(64))
    pair = crypto.generate_keypair("ML-KEM-768", seed)
    for _ in range(3):
        ciphertext, shared = pq.encapsulate("ML-KEM-768", pair.public_key)
        assert crypto.decapsulate("ML-KEM-768", seed, "seed", ciphertext) == shared


@pytest.mark.parametrize("algorithm", ["ML-DSA-44", "ML-DSA-65", "ML-DSA-87"])
def test_mldsa_across_backends(algorithm: str) -> None:
    for signer, verifier in _pairs(algorithm):
        pair = signer.generate_keypair(algorithm)
        signature = signer.sign(algorithm, pair.secret, pair.secret_encoding, b"bundle body")
        assert verifier.verify(algorithm, pair.public_key, b"bundle body", signature)
        assert not verifier.verify(algorithm, pair.public_key, b"bundle bodY", signature)


@pytest.mark.parametrize("algorithm", ["Falcon-512"])
def test_falcon_between_pqcrypto_and_liboqs(algorithm: str) -> None:
    for signer, verifier in _pairs(algorithm, ("pqcrypto", "liboqs")):
        pair = signer.generate_keypair(algorithm)
        signature = signer.sign(algorithm, pair.secret, pair.secret_encoding, b"host identity")
        assert verifier.verify(algorithm, pair.public_key, b"host identity", signature)
        # the expanded secret key is interchangeable too
        again = verifier.sign(algorithm, pair.secret, pair.secret_encoding, b"host identity")
        assert signer.verify(algorithm, pair.public_key, b"host identity", again)


def test_seeded_keygen_refused_where_unsupported() -> None:
    from chaosmagnet.errors import PQCError

    pq = next((b for b in _serving("Falcon-512") if b.name == "pqcrypto"), None)
    if pq is None:
        pytest.skip("pqcrypto missing")
    with pytest.raises(PQCError):
        pq.generate_keypair("Falcon-512", b"\x00" * 48)


def test_keypair_repr_hides_the_secret() -> None:
    backend = _serving("ML-KEM-768")[0]
    pair = backend.generate_keypair("ML-KEM-768", bytes(64))
    assert pair.secret.hex() not in repr(pair)
    assert pair.secret.hex()[:16] not in str(pair)
