"""Peer seeds: 32-64 bytes from one host's pool, readable only by the receiving host.

The sender encapsulates to the receiver's ML-KEM-768 key, derives an AEAD key
with HKDF-SHA256 from the shared secret and the message's header (sender,
receiver, epoch, counter), and seals the seed with ChaCha20-Poly1305; the
whole message is then signed like every other mesh message.  The receiver
absorbs what it opens with credit 0, always.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chaosmagnet.errors import PQCError
from chaosmagnet.mesh.keys import MeshKeys
from chaosmagnet.minting.canonical import canonical_json
from chaosmagnet.pqc import backend_for

MIN_SEED_BYTES = 32
MAX_SEED_BYTES = 64
_INFO = b"chaosmagnet.mesh-peer-seed/1\n"
_NONCE_BYTES = 12


def _header(mesh: str, sender: str, receiver: str, epoch: int, counter: int) -> bytes:
    return _INFO + canonical_json(
        {"counter": counter, "epoch": epoch, "mesh": mesh, "receiver": receiver, "sender": sender}
    )


def _aead_key(shared: bytes, header: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=header).derive(shared)


def seal_seed(
    seed: bytes,
    kem_algorithm: str,
    kem_public_key: bytes,
    *,
    mesh: str,
    sender: str,
    receiver: str,
    epoch: int,
    counter: int,
) -> dict[str, str]:
    """The body of a peer-seed message carrying ``seed`` to ``receiver``."""
    if not MIN_SEED_BYTES <= len(seed) <= MAX_SEED_BYTES:
        raise ValueError(f"a peer seed has {MIN_SEED_BYTES}-{MAX_SEED_BYTES} bytes")
    ciphertext, shared = backend_for(kem_algorithm, prefer_seeded=False).encapsulate(kem_algorithm, kem_public_key)
    header = _header(mesh, sender, receiver, epoch, counter)
    nonce = os.urandom(_NONCE_BYTES)
    sealed = ChaCha20Poly1305(_aead_key(shared, header)).encrypt(nonce, seed, header)
    return {
        "to": receiver,
        "kem": kem_algorithm,
        "ciphertext": ciphertext.hex(),
        "nonce": nonce.hex(),
        "sealed": sealed.hex(),
    }


def open_seed(
    body: object, keys: MeshKeys, *, mesh: str, sender: str, receiver: str, epoch: int, counter: int
) -> bytes | str:
    """The seed in a peer-seed body, or a drop reason (``malformed``, ``undecryptable``, ``seed-size``)."""
    if not isinstance(body, dict) or set(body) != {"to", "kem", "ciphertext", "nonce", "sealed"}:
        return "malformed"
    if body["to"] != receiver or body["kem"] != keys.kem.algorithm:
        return "malformed"
    try:
        ciphertext = bytes.fromhex(body["ciphertext"])
        nonce = bytes.fromhex(body["nonce"])
        sealed = bytes.fromhex(body["sealed"])
    except (TypeError, ValueError):
        return "malformed"
    if len(nonce) != _NONCE_BYTES or not MIN_SEED_BYTES + 16 <= len(sealed) <= MAX_SEED_BYTES + 16:
        return "seed-size"
    try:
        shared = keys.decapsulate(ciphertext)
    except (PQCError, ValueError):
        return "undecryptable"
    header = _header(mesh, sender, receiver, epoch, counter)
    try:
        return ChaCha20Poly1305(_aead_key(shared, header)).decrypt(nonce, sealed, header)
    except InvalidTag:
        return "undecryptable"
