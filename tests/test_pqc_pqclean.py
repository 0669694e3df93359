"""The vendored PQClean AVX2 ML-DSA-65 (csrc/mldsa65) against the FIPS 204 vectors and OpenSSL.

test_pqc_kat.py and test_pqc_interop.py drive it with every other backend (expanded-key
signing, verification both ways); these cover what only it has: the FIPS 204 seed expanded
through the vendored keypair, and its refusals."""

from __future__ import annotations

import pytest
from chaosmagnet.errors import PQCError
from chaosmagnet.pqc import all_backends, backend_for
from pqc_vectors import mldsa_records

ALGORITHM = "ML-DSA-65"


@pytest.fixture(scope="module")
def pqclean():
    backend = next(b for b in all_backends() if b.name == "pqclean")
    ok, reason = backend.availability()
    if not ok:
        pytest.skip(f"pqclean unavailable here: {reason}")
    return backend


def test_the_fips204_seed_gives_the_vector_key(pqclean) -> None:
    for record in mldsa_records(65):
        public = pqclean.public_key_from_secret(ALGORITHM, bytes.fromhex(record["xi"]), "seed")
        assert public.hex() == record["pk"], f"count {record['count']}"


def test_signs_with_a_seed_that_openssl_verifies_and_verifies_openssl(pqclean) -> None:
    mldsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.mldsa")
    seed = bytes(range(32))
    openssl = mldsa.MLDSA65PrivateKey.from_seed_bytes(seed)
    public = openssl.public_key()
    ours = pqclean.sign(ALGORITHM, seed, "seed", b"status")
    public.verify(ours, b"status")  # raises InvalidSignature if not
    assert ours != pqclean.sign(ALGORITHM, seed, "seed", b"status")  # hedged: fresh randomness each time
    theirs = openssl.sign(b"status")
    raw = public.public_bytes_raw()
    assert pqclean.verify(ALGORITHM, raw, b"status", theirs)
    assert not pqclean.verify(ALGORITHM, raw, b"statuS", theirs)
    flipped = bytearray(theirs)
    flipped[1000] ^= 0x10
    assert not pqclean.verify(ALGORITHM, raw, b"status", bytes(flipped))
    assert not pqclean.verify(ALGORITHM, raw, b"status", theirs[:-1])
    assert not pqclean.verify(ALGORITHM, raw, b"status", b"")


def test_refusals_are_pqc_errors(pqclean) -> None:
    with pytest.raises(PQCError, match="public key must be 1952 bytes"):
        pqclean.verify(ALGORITHM, b"\0" * 10, b"m", b"\0" * 3309)
    with pytest.raises(PQCError, match="seed must be 32 bytes"):
        pqclean.sign(ALGORITHM, b"\0" * 31, "seed", b"m")
    with pytest.raises(PQCError, match="secret key must be 4032 bytes"):
        pqclean.sign(ALGORITHM, b"\0" * 31, "expanded", b"m")
    with pytest.raises(PQCError, match="not used for seeded"):
        pqclean.generate_keypair(ALGORITHM, bytes(32))
    with pytest.raises(PQCError, match="does not serve"):
        pqclean.verify("ML-DSA-44", b"\0" * 1312, b"m", b"")
    pair = pqclean.generate_keypair(ALGORITHM)
    assert (pair.secret_encoding, pair.seeded, len(pair.secret)) == ("expanded", False, 4032)
    assert pqclean.verify(ALGORITHM, pair.public_key, b"m", pqclean.sign(ALGORITHM, pair.secret, "expanded", b"m"))


def test_verification_prefers_it_and_minting_keeps_seeded_keys_with_cryptography(pqclean) -> None:
    assert backend_for(ALGORITHM, prefer_seeded=False).name == "pqclean"
    assert backend_for(ALGORITHM, prefer_seeded=True).name == "cryptography"


def test_a_signing_key_from_a_seed_expands_it_once(pqclean) -> None:
    mldsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.mldsa")
    seed = bytes(range(1, 33))
    sign = pqclean.signing_key(ALGORITHM, seed, "seed")
    public = mldsa.MLDSA65PrivateKey.from_seed_bytes(seed).public_key()
    for message in (b"one", b"two"):
        public.verify(sign(message), message)
