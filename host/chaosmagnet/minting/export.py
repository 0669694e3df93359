"""Exporting keys from a bundle so other tools (OpenSSL, `cryptography`) can use them.

Public keys: SubjectPublicKeyInfo PEM where a standard encoding exists
(ML-KEM, ML-DSA), else raw bytes.  Secret keys (after unsealing): PKCS#8 PEM
for ML-KEM/ML-DSA seeds, else raw bytes (the seed, or the expanded secret key
for keys that were not made from a seed).  Before handing out a secret, the
key is checked against the bundle's public key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from chaosmagnet.errors import BundleError, PQCError
from chaosmagnet.minting.bundle import load_bundle, split_bundle, structure_problems, verify_bundle
from chaosmagnet.minting.canonical import from_hex
from chaosmagnet.minting.identity import IdentityPublic, key_context, open_secret
from chaosmagnet.minting.sealing import Unsealer
from chaosmagnet.pqc import all_backends

ExportFormat = Literal["pem", "raw"]
KeyRole = Literal["kem", "signing"]


def _section(body: dict[str, Any], role: KeyRole, path: Path) -> dict[str, Any]:
    problems = structure_problems(body)
    if problems:
        raise BundleError(f"{path}: {problems[0]}")
    section = body["kem"] if role == "kem" else body["signing_key"]
    if section is None:
        raise BundleError(f"{path}: the bundle has no signing key pair")
    return section


def _serving(algorithm: str) -> list[Any]:
    return [b for b in all_backends() if b.availability()[0] and b.supports(algorithm)]


def export_public_key(path: Path, role: KeyRole = "kem", fmt: ExportFormat = "pem") -> bytes:
    """The bundle's public key (KEM or signing) as PEM or raw bytes."""
    _, doc = load_bundle(path)
    body, _ = split_bundle(doc)
    section = _section(body, role, path)
    algorithm = section["algorithm"]
    public_key = from_hex(section["public_key"], "public key", BundleError)
    if fmt == "raw":
        return public_key
    for backend in _serving(algorithm):
        pem = backend.public_key_pem(algorithm, public_key)
        if pem is not None:
            return pem
    raise BundleError(
        f"no standard PEM encoding for {algorithm} public keys here; use --format raw"
    )


def check_before_export(path: Path, identity: IdentityPublic) -> None:
    """BundleError unless the bundle is well-formed, made by ``identity`` and every signature holds."""
    report = verify_bundle(path, identity, audit_log=None)
    if not report.ok:
        raise BundleError(f"{path}: not exporting a secret key: {report.problems[0]}")


def export_secret_key(
    path: Path,
    unsealer: Unsealer | None,
    role: KeyRole = "kem",
    fmt: ExportFormat = "pem",
    *,
    identity: IdentityPublic,
) -> tuple[bytes, str]:
    """(secret key bytes, encoding) after verifying and unsealing: PKCS#8 PEM or raw ("seed"/"expanded")."""
    check_before_export(path, identity)
    _, doc = load_bundle(path)
    body, _ = split_bundle(doc)
    section = _section(body, role, path)
    algorithm = section["algorithm"]
    public_key = from_hex(section["public_key"], "public key", BundleError)
    context = key_context(b"bundle", body["id"], algorithm, public_key)
    secret, encoding = open_secret(section["secret_key"], context, unsealer, f"{path} ({role})")
    backends = _serving(algorithm)
    if not backends:
        raise PQCError(f"no installed backend serves {algorithm}")
    if encoding == "seed":
        seeders = [b for b in backends if b.can_seed(algorithm)]
        if not seeders:
            raise PQCError(f"no installed backend can use a {algorithm} seed")
        if seeders[0].public_key_from_secret(algorithm, secret, encoding) != public_key:
            raise BundleError(f"{path}: the secret key does not match the public key")
    if fmt == "raw":
        return secret, encoding
    for backend in backends:
        try:
            pem = backend.private_key_pem(algorithm, secret, encoding)
        except PQCError:
            continue
        if pem is not None:
            return pem, "pkcs8"
    raise BundleError(
        f"no standard PKCS#8 encoding for this {algorithm} key here; use --format raw"
    )
