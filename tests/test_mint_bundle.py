"""Bundles: contents and provenance, verification, tamper detection, export, file modes."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
from chaosmagnet.errors import BundleError, IdentityError, SealError
from chaosmagnet.minting.bundle import BUNDLE_FORMAT, verify_bundle
from chaosmagnet.minting.export import export_public_key, export_secret_key
from chaosmagnet.minting.identity import create_identity, load_identity
from chaosmagnet.minting.sealing import Sealer, Unsealer
from mint_helpers import FAST_SCRYPT, PASSPHRASE, FullPool, make_minted


@pytest.fixture(scope="module")
def minted(tmp_path_factory: pytest.TempPathFactory):
    return make_minted(tmp_path_factory.mktemp("mint"), sign_keypair="ML-DSA-65")


def _doc(path: Path) -> dict:
    return json.loads(path.read_text())


def test_bundle_contents(minted) -> None:
    doc = _doc(minted.bundle.path)
    assert doc["format"] == BUNDLE_FORMAT == "chaosmagnet.bundle/1"
    assert doc["host"]["fingerprint"] == minted.identity.fingerprint
    assert (
        doc["kem"]["algorithm"] == "ML-KEM-768"
        and len(bytes.fromhex(doc["kem"]["public_key"])) == 1184
    )
    assert doc["signing_key"]["algorithm"] == "ML-DSA-65"
    assert "sealed" in doc["kem"]["secret_key"] and "plain" not in doc["kem"]["secret_key"]
    assert [s["algorithm"] for s in doc["signatures"]] == ["Falcon-512", "ML-DSA-65"]
    assert doc["audit"]["seq"] == minted.bundle.audit_seq == 2


def test_provenance_records_sources_fill_and_commitment(minted) -> None:
    doc = _doc(minted.bundle.path)
    prov = doc["provenance"]
    assert prov["seeds_from_pool"] is True and prov["credit_factor"] == 2.0
    kem = prov["keys"]["kem"]
    assert kem["seeded_from_pool"] is True and kem["backend"] == "cryptography"
    draw = kem["draw"]
    assert draw["required_bits"] == 384.0  # 2 x 192 for ML-KEM-768
    assert draw["bytes"] == 64 and draw["pool_fill_before"] == 1.0
    assert draw["credited_bits_drawn"] == 512.0
    assert draw["sources"] == {
        "test-source": {"credited_bits": 256.0, "h_assessed": 6.5, "state": "ok"},
        "test-source-b": {"credited_bits": 256.0, "h_assessed": 6.5, "state": "ok"},
    }
    assert draw["quorum"] == {
        "k": 2,
        "share_bits": 192.0,
        "met_by": {"test-source": ["test-source"], "test-source-b": ["test-source-b"]},
        "groups": {"test-source": 256.0, "test-source-b": 256.0},
    }
    assert len(bytes.fromhex(draw["pool_commitment"])) == 32
    assert prov["keys"]["signing_key"]["draw"]["required_bits"] == 384.0


def test_sealed_bundle_does_not_contain_the_seed(minted) -> None:
    raw = minted.bundle.path.read_text()
    secret, encoding = export_secret_key(minted.bundle.path, Unsealer(PASSPHRASE), "kem", "raw", identity=minted.public)
    assert encoding == "seed" and len(secret) == 64
    assert secret.hex() not in raw
    assert secret.hex() not in minted.log.read_text()


def test_verify_passes(minted) -> None:
    report = verify_bundle(minted.bundle.path, minted.public, audit_log=minted.log)
    assert report.ok, report.problems
    assert (
        any(c.startswith("signatures") for c in report.checked)
        and "audit entry 2" in report.checked
    )


def _positions(raw: bytes, doc: dict) -> list[int]:
    """A spread of byte positions plus some inside every signature value and the audit hash."""
    positions = set(range(0, len(raw), max(1, len(raw) // 250)))
    for signature in doc["signatures"]:
        start = raw.index(signature["value"].encode())
        positions.update(
            {start, start + len(signature["value"]) // 2, start + len(signature["value"]) - 1}
        )
        key_start = raw.index(signature["public_key"].encode())
        positions.update({key_start, key_start + 100})
    positions.add(raw.index(doc["audit"]["hash"].encode()))
    positions.add(raw.index(b'"seq"') + 7)
    positions.add(len(raw) - 1)  # the trailing newline
    return sorted(positions)


def test_any_changed_byte_fails_verification(minted, tmp_path: Path) -> None:
    raw = minted.bundle.path.read_bytes()
    doc = _doc(minted.bundle.path)
    target = tmp_path / "tampered.json"
    checked = 0
    for position in _positions(raw, doc):
        for flip in (0x01, 0x20):  # e.g. a hex digit's case, a space, a quote
            tampered = bytearray(raw)
            tampered[position] ^= flip
            target.write_bytes(bytes(tampered))
            try:
                report = verify_bundle(target, minted.public, audit_log=minted.log)
            except BundleError:
                continue  # unreadable: also a failure
            assert not report.ok, f"byte {position} ^ {flip:#x} went unnoticed"
            checked += 1
    assert checked > 200


def test_signature_list_manipulations_fail(minted, tmp_path: Path) -> None:
    doc = _doc(minted.bundle.path)
    target = tmp_path / "b.json"
    variants = {
        "dropped": doc["signatures"][:1],
        "duplicated": doc["signatures"] + doc["signatures"][:1],
        "swapped values": [
            {**doc["signatures"][0], "value": doc["signatures"][1]["value"]},
            {**doc["signatures"][1], "value": doc["signatures"][0]["value"]},
        ],
        "none": [],
    }
    from chaosmagnet.minting.canonical import file_json

    for name, signatures in variants.items():
        target.write_bytes(file_json({**doc, "signatures": signatures}))
        report = verify_bundle(target, minted.public, audit_log=minted.log)
        assert not report.ok, name


def test_other_identity_is_rejected(minted, tmp_path: Path) -> None:
    other = asyncio.run(create_identity(tmp_path / "keys", FullPool(), Sealer(PASSPHRASE, FAST_SCRYPT)))
    report = verify_bundle(minted.bundle.path, other.public, audit_log=None)
    assert not report.ok
    assert any("not by identity" in p for p in report.problems)


def test_audit_entry_must_be_present(minted, tmp_path: Path) -> None:
    lines = minted.log.read_text().splitlines(keepends=True)
    changed = tmp_path / "audit.jsonl"
    changed.write_text(lines[0])  # the mint entry removed
    report = verify_bundle(minted.bundle.path, minted.public, audit_log=changed)
    assert any("entry 2 is not in" in p for p in report.problems)
    report = verify_bundle(minted.bundle.path, minted.public, audit_log=tmp_path / "missing.jsonl")
    assert any("not found" in p for p in report.problems)


def test_export_round_trip_with_cryptography(minted, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import mlkem
    from cryptography.hazmat.primitives.serialization import (
        load_pem_private_key,
        load_pem_public_key,
    )

    public_pem = export_public_key(minted.bundle.path, "kem", "pem")
    public = load_pem_public_key(public_pem)
    raw_public = bytes.fromhex(_doc(minted.bundle.path)["kem"]["public_key"])
    assert (
        public.public_bytes_raw()
        == raw_public
        == export_public_key(minted.bundle.path, "kem", "raw")
    )
    shared, ciphertext = mlkem.MLKEM768PublicKey.from_public_bytes(raw_public).encapsulate()

    pem, encoding = export_secret_key(minted.bundle.path, Unsealer(PASSPHRASE), "kem", "pem", identity=minted.public)
    assert encoding == "pkcs8" and pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    private = load_pem_private_key(pem, password=None)
    assert private.decapsulate(ciphertext) == shared


def test_export_signing_key_signs_verifiably(minted) -> None:
    from cryptography.hazmat.primitives.serialization import (
        load_pem_private_key,
        load_pem_public_key,
    )

    private = load_pem_private_key(
        export_secret_key(minted.bundle.path, Unsealer(PASSPHRASE), "signing", identity=minted.public)[0], None
    )
    public = load_pem_public_key(export_public_key(minted.bundle.path, "signing"))
    public.verify(private.sign(b"hello"), b"hello")


def test_export_with_wrong_passphrase(minted) -> None:
    with pytest.raises(SealError, match="wrong passphrase"):
        export_secret_key(minted.bundle.path, Unsealer("not it"), "kem", identity=minted.public)


def test_identity_wrong_passphrase(minted) -> None:
    with pytest.raises(SealError, match="wrong passphrase"):
        load_identity(minted.keys, Unsealer("not it"))
    assert (
        load_identity(minted.keys, Unsealer(PASSPHRASE)).fingerprint == minted.identity.fingerprint
    )


def test_file_modes(minted) -> None:
    paths = [minted.bundle.path, minted.log, *sorted((minted.keys / "identity").iterdir())]
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((minted.keys / "identity").stat().st_mode) == 0o700


def test_identity_is_never_overwritten(minted) -> None:
    before = (minted.keys / "identity" / "identity.json").read_bytes()
    with pytest.raises(IdentityError, match="already exists"):
        asyncio.run(create_identity(minted.keys, FullPool(), Sealer(PASSPHRASE, FAST_SCRYPT)))
    assert (minted.keys / "identity" / "identity.json").read_bytes() == before


def test_unsealed_bundle_and_unseeded_backend(tmp_path: Path) -> None:
    minted = make_minted(tmp_path, kem="ML-KEM-512", seal=False)  # pqcrypto: no seeded keygen
    doc = _doc(minted.bundle.path)
    assert (
        "plain" in doc["kem"]["secret_key"] and doc["kem"]["secret_key"]["encoding"] == "expanded"
    )
    assert doc["kem"]["seeded_from_pool"] is False and doc["provenance"]["seeds_from_pool"] is False
    assert "cannot be seeded" in doc["provenance"]["keys"]["kem"]["randomness"]
    assert doc["provenance"]["keys"]["kem"]["draw"] is None
    assert verify_bundle(minted.bundle.path, minted.public, audit_log=minted.log).ok
    secret, encoding = export_secret_key(minted.bundle.path, None, "kem", "raw", identity=minted.public)
    assert encoding == "expanded" and len(secret) == 1632
    with pytest.raises(BundleError, match="use --format raw"):
        export_secret_key(minted.bundle.path, None, "kem", "pem", identity=minted.public)
