"""Known-answer tests: FIPS 203/204 vectors from `cryptography_vectors` drive every backend.

Seeded key generation is checked wherever a backend offers it (pk from d||z or
xi must equal the vector's pk); decapsulation is checked on every backend,
including the implicit-rejection ciphertext; ML-DSA signatures from the
vectors must verify, and keys from the vectors must sign verifiably.
"""

from __future__ import annotations

import pytest
from chaosmagnet.pqc import all_backends
from pqc_vectors import mldsa_records, mlkem_records

BACKENDS = [b for b in all_backends()]
MLKEM = (512, 768, 1024)
MLDSA = (44, 65, 87)


def _backend_or_skip(name: str, algorithm: str):
    backend = next(b for b in BACKENDS if b.name == name)
    ok, reason = backend.availability()
    if not ok:
        pytest.skip(f"{name} unavailable: {reason}")
    if not backend.supports(algorithm):
        pytest.skip(f"{name} does not serve {algorithm}")
    return backend


@pytest.mark.parametrize("level", MLKEM)
@pytest.mark.parametrize("backend_name", [b.name for b in BACKENDS])
def test_mlkem_seeded_keygen_matches_kat(backend_name: str, level: int) -> None:
    algorithm = f"ML-KEM-{level}"
    backend = _backend_or_skip(backend_name, algorithm)
    if not backend.can_seed(algorithm):
        pytest.skip(f"{backend_name} has no seeded {algorithm} keygen")
    for record in mlkem_records(level):
        seed = bytes.fromhex(record["d"] + record["z"])
        pair = backend.generate_keypair(algorithm, seed)
        assert pair.seeded and pair.secret_encoding == "seed"
        assert pair.public_key.hex() == record["pk"], f"count {record['count']}"


@pytest.mark.parametrize("level", MLKEM)
@pytest.mark.parametrize("backend_name", [b.name for b in BACKENDS])
def test_mlkem_decapsulation_matches_kat(backend_name: str, level: int) -> None:
    algorithm = f"ML-KEM-{level}"
    backend = _backend_or_skip(backend_name, algorithm)
    for record in mlkem_records(level):
        if backend.can_seed(algorithm):
            secret, encoding = bytes.fromhex(record["d"] + record["z"]), "seed"
        else:
            secret, encoding = bytes.fromhex(record["sk"]), "expanded"
        shared = backend.decapsulate(algorithm, secret, encoding, bytes.fromhex(record["ct"]))
        assert shared.hex() == record["ss"], f"count {record['count']}"
        # a ciphertext that fails re-encryption yields the implicit-rejection secret
        rejected = backend.decapsulate(algorithm, secret, encoding, bytes.fromhex(record["ct_n"]))
        assert rejected.hex() == record["ss_n"], f"count {record['count']}"


@pytest.mark.parametrize("level", MLDSA)
@pytest.mark.parametrize("backend_name", [b.name for b in BACKENDS])
def test_mldsa_seeded_keygen_matches_kat(backend_name: str, level: int) -> None:
    algorithm = f"ML-DSA-{level}"
    backend = _backend_or_skip(backend_name, algorithm)
    if not backend.can_seed(algorithm):
        pytest.skip(f"{backend_name} has no seeded {algorithm} keygen")
    for record in mldsa_records(level):
        pair = backend.generate_keypair(algorithm, bytes.fromhex(record["xi"]))
        assert pair.public_key.hex() == record["pk"], f"count {record['count']}"


@pytest.mark.parametrize("level", MLDSA)
def test_mldsa_kat_signature_verifies_with_context(level: int) -> None:
    """The vectors sign with a context string; our interface signs with the empty one,
    so this check talks to `cryptography` directly (the only backend taking a context)."""
    mldsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.mldsa")
    public_cls = getattr(mldsa, f"MLDSA{level}PublicKey")
    for record in mldsa_records(level):
        message = bytes.fromhex(record["msg"])
        signed = bytes.fromhex(record["sm"])
        signature = signed[: len(signed) - len(message)]
        assert signed.endswith(message)
        public = public_cls.from_public_bytes(bytes.fromhex(record["pk"]))
        public.verify(signature, message, bytes.fromhex(record["ctx"]))


@pytest.mark.parametrize("level", MLDSA)
@pytest.mark.parametrize("backend_name", [b.name for b in BACKENDS])
def test_mldsa_kat_keys_sign_and_verify_across_backends(backend_name: str, level: int) -> None:
    """Each backend signs with the vector's key (seed or expanded sk); every backend verifies."""
    algorithm = f"ML-DSA-{level}"
    backend = _backend_or_skip(backend_name, algorithm)
    verifiers = [b for b in BACKENDS if b.availability()[0] and b.supports(algorithm)]
    for record in mldsa_records(level)[:2]:
        if backend.can_seed(algorithm):
            secret, encoding = bytes.fromhex(record["xi"]), "seed"
        else:
            secret, encoding = bytes.fromhex(record["sk"]), "expanded"
        message = b"chaosmagnet KAT " + record["count"].encode()
        signature = backend.sign(algorithm, secret, encoding, message)
        public_key = bytes.fromhex(record["pk"])
        for verifier in verifiers:
            assert verifier.verify(algorithm, public_key, message, signature), verifier.name
            assert not verifier.verify(algorithm, public_key, message + b"!", signature), (
                verifier.name
            )
