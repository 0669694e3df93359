"""The keys a host uses in the mesh, all available without a passphrase.

* **Signing**: every mesh message is signed with the host's *audit key*
  (ML-DSA-65, keys/identity/audit-key.json).  It is the key `run` already
  holds unsealed for the audit trail, and the identity (Falcon-512 + ML-DSA-65,
  sealed) certifies it, so a receiver checks the chain identity -> audit key
  -> message.  The sealed identity keys never need unsealing to join a mesh.
* **Receiving seeds**: an ML-KEM-768 key (keys/identity/mesh-kem-key.json,
  0600, stored as its 64-byte seed), made from OS randomness the first time
  `run --mesh` starts, and certified by the audit key.  It only protects
  seeds that the receiver credits 0, so it needs no pool credit itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosmagnet.errors import IdentityError, MeshError, SealError
from chaosmagnet.minting.canonical import canonical_json, file_json, from_hex
from chaosmagnet.minting.identity import (
    PUBLIC_FILE,
    IdentityPublic,
    SecretKeyHandle,
    identity_dir,
    load_audit_signer,
    load_identity_public,
    utc_now,
)
from chaosmagnet.pqc import backend_for, backend_named
from chaosmagnet.securefile import write_private_file

MESH_KEM_ALGORITHM = "ML-KEM-768"
MESH_KEM_FILE = "mesh-kem-key.json"
MESH_KEM_FORMAT = "chaosmagnet.mesh-kem-key/1"
_KEM_CERT_DOMAIN = b"chaosmagnet.mesh-kem-key-certificate/1\n"


def kem_statement(fingerprint: str, audit_public_key: bytes, algorithm: str, public_key: bytes, created: str) -> bytes:
    """What the audit key signs to certify a host's mesh KEM key."""
    return _KEM_CERT_DOMAIN + canonical_json(
        {
            "algorithm": algorithm,
            "audit_key": audit_public_key.hex(),
            "created": created,
            "identity": fingerprint,
            "public_key": public_key.hex(),
            "purpose": "mesh-peer-seeds",
        }
    )


@dataclass(frozen=True)
class KemPublic:
    """A host's certified mesh KEM public key."""

    algorithm: str
    public_key: bytes
    created: str
    certificate: bytes

    def to_json(self) -> dict[str, Any]:
        """The form carried in identity messages."""
        return {
            "algorithm": self.algorithm,
            "public_key": self.public_key.hex(),
            "created": self.created,
            "certificate": self.certificate.hex(),
        }


@dataclass(frozen=True)
class MeshKeys:
    """What a host needs to speak in the mesh: public identity, audit signer, KEM key pair."""

    identity: IdentityPublic
    signer: SecretKeyHandle
    kem: KemPublic
    kem_backend: str
    kem_file: Path
    kem_secret: bytes = field(repr=False)

    def decapsulate(self, ciphertext: bytes) -> bytes:
        """The KEM shared secret in ``ciphertext``."""
        return backend_named(self.kem_backend).decapsulate(self.kem.algorithm, self.kem_secret, "seed", ciphertext)


def load_mesh_keys(keys_dir: Path, *, create: bool = True) -> MeshKeys:
    """The mesh keys of the host whose keys/ folder is ``keys_dir``; creates the KEM key when missing."""
    folder = identity_dir(keys_dir)
    if not (folder / PUBLIC_FILE).exists():
        raise MeshError(f"no host identity in {folder}: create one with `chaos-host identity init` first")
    try:
        identity = load_identity_public(folder / PUBLIC_FILE)
        signer = load_audit_signer(keys_dir)
    except (IdentityError, SealError) as exc:
        raise MeshError(str(exc)) from None
    if signer is None or identity.audit_key is None or signer.public_key != identity.audit_key.public_key:
        raise MeshError(f"{folder}: the audit key is missing or does not belong to the identity")
    if identity.audit_key_problems():
        raise MeshError(f"{folder}: the audit-key certificate does not verify")
    path = folder / MESH_KEM_FILE
    if not path.exists():
        if not create:
            raise MeshError(f"{path} not found")
        _create_kem_key(path, identity, signer)
    return _load_kem_key(path, identity, signer)


def _create_kem_key(path: Path, identity: IdentityPublic, signer: SecretKeyHandle) -> None:
    backend = backend_for(MESH_KEM_ALGORITHM, prefer_seeded=True)
    if not backend.can_seed(MESH_KEM_ALGORITHM):
        raise MeshError(f"no installed backend can make a seeded {MESH_KEM_ALGORITHM} key")
    pair = backend.generate_keypair(MESH_KEM_ALGORITHM, os.urandom(64))
    created = utc_now()
    statement = kem_statement(identity.fingerprint, signer.public_key, pair.algorithm, pair.public_key, created)
    certificate = signer.sign(statement)["value"]
    doc = {
        "format": MESH_KEM_FORMAT,
        "identity": identity.fingerprint,
        "algorithm": pair.algorithm,
        "backend": pair.backend,
        "public_key": pair.public_key.hex(),
        "secret_key": {"encoding": "seed", "plain": pair.secret.hex()},
        "created": created,
        "certificate": certificate,
        "randomness": "operating-system RNG (the key protects seeds that are credited 0)",
    }
    write_private_file(path, file_json(doc), overwrite=False)


def _load_kem_key(path: Path, identity: IdentityPublic, signer: SecretKeyHandle) -> MeshKeys:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != MESH_KEM_FORMAT or doc.get("identity") != identity.fingerprint:
            raise MeshError(f"{path}: not a mesh KEM key of this identity")
        algorithm = str(doc["algorithm"])
        public_key = from_hex(doc["public_key"], f"{path}: public key", MeshError)
        secret = from_hex(doc["secret_key"]["plain"], f"{path}: secret key", MeshError)
        certificate = from_hex(doc["certificate"], f"{path}: certificate", MeshError)
        created = str(doc["created"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise MeshError(f"{path}: unreadable or malformed") from None
    backend = backend_for(algorithm, prefer_seeded=True)
    if backend.public_key_from_secret(algorithm, secret, "seed") != public_key:
        raise MeshError(f"{path}: the secret key does not match the public key")
    statement = kem_statement(identity.fingerprint, signer.public_key, algorithm, public_key, created)
    if not backend_for(signer.algorithm, prefer_seeded=False).verify(
        signer.algorithm, signer.public_key, statement, certificate
    ):
        raise MeshError(f"{path}: the audit key's certificate does not verify")
    return MeshKeys(
        identity, signer, KemPublic(algorithm, public_key, created, certificate), backend.name, path, secret
    )
