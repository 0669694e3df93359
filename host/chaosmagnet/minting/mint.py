"""Minting: key bundles whose seeds come from credited, health-tested pool entropy.

``mint_bundle`` makes one bundle: a KEM key pair (and optionally a signing key
pair), each seeded from its own pool draw once the pool holds
``credit_factor`` x the algorithm's strength in healthy credited bits (where
the backend's keygen can be seeded; otherwise the bundle says so), secret keys
sealed under the passphrase, provenance, and the host identity's
signatures; it writes the bundle atomically with mode 0600 and only then
appends its audit entry (see docs/minting.md, "Write order").
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosmagnet.audit import AuditLog, recorded_file
from chaosmagnet.errors import UsageError
from chaosmagnet.minting.bundle import (
    BUNDLE_FORMAT,
    audit_fields,
    bundle_bytes,
    bundle_filename,
    signed_message,
)
from chaosmagnet.minting.identity import (
    HostIdentity,
    generate_key,
    key_context,
    key_provenance,
    store_secret,
    utc_now,
)
from chaosmagnet.minting.sealing import Sealer
from chaosmagnet.minting.seeds import SeedSource
from chaosmagnet.pqc import algorithm_spec, backend_for
from chaosmagnet.securefile import ensure_private_dir, write_private_file

DEFAULT_KEM = "ML-KEM-768"
DEFAULT_CREDIT_FACTOR = 2.0
MintProgress = Callable[[str, float, float], None]  # (what, credited bits so far, bits needed)


@dataclass
class MintOptions:
    """What to mint and how strictly; defaults follow the issue (ML-KEM-768, 2x strength)."""

    kem: str = DEFAULT_KEM
    sign_keypair: str | None = None
    count: int = 1
    out_dir: Path = field(default_factory=lambda: Path("keys"))
    seal: bool = True
    credit_factor: float = DEFAULT_CREDIT_FACTOR
    timeout: float = 300.0
    kem_backend: str | None = None
    sign_backend: str | None = None

    def validate(self) -> None:
        """UsageError/PQCError for anything wrong, before any entropy is drawn."""
        if algorithm_spec(self.kem).kind != "kem":
            raise UsageError(f"{self.kem} is not a KEM (try ML-KEM-768)")
        backend_for(self.kem, backend=self.kem_backend)
        if self.sign_keypair is not None:
            if algorithm_spec(self.sign_keypair).kind != "sign":
                raise UsageError(
                    f"{self.sign_keypair} is not a signature algorithm (try ML-DSA-65)"
                )
            backend_for(self.sign_keypair, backend=self.sign_backend)
        if self.count < 1:
            raise UsageError("--count must be at least 1")
        if not self.credit_factor >= 1.0:
            raise UsageError(
                "the credit factor must be at least 1 (credited bits per bit of strength)"
            )
        if not self.timeout > 0:
            raise UsageError("--timeout must be positive")
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise UsageError(f"{self.out_dir} is not a folder")

    def required_bits(self, algorithm: str) -> float:
        """Credited bits that must be pooled before ``algorithm``'s seed is drawn."""
        return self.credit_factor * algorithm_spec(algorithm).strength_bits


@dataclass(frozen=True)
class MintedBundle:
    """One bundle that was written: where, which keys, how they were seeded."""

    bundle_id: str
    path: Path
    kem: str
    signing_key: str | None
    seeded_from_pool: bool
    credited_bits_drawn: float  # from sources in state ok only (the headline figure)
    audit_seq: int


async def _key_section(
    role: str,
    algorithm: str,
    backend: str | None,
    bundle_id: str,
    options: MintOptions,
    seed_source: SeedSource,
    sealer: Sealer | None,
    on_progress: MintProgress | None,
) -> tuple[dict[str, Any], dict[str, Any], float]:
    progress = (
        (lambda have, need: on_progress(f"{role} {algorithm}", have, need)) if on_progress else None
    )
    pair, draw = await generate_key(
        algorithm,
        seed_source,
        purpose=f"chaosmagnet.mint/1|{bundle_id}|{role}".encode(),
        credit_factor=options.credit_factor,
        timeout=options.timeout,
        on_progress=progress,
        backend=backend,
    )
    context = key_context(b"bundle", bundle_id, pair.algorithm, pair.public_key)
    section = {
        "algorithm": pair.algorithm,
        "backend": pair.backend,
        "public_key": pair.public_key.hex(),
        "seeded_from_pool": draw is not None and pair.seeded,
        "secret_key": store_secret(pair.secret, pair.secret_encoding, context, sealer),
    }
    return section, key_provenance(pair, draw), (draw.healthy_debited_total if draw else 0.0)


async def mint_bundle(
    options: MintOptions,
    *,
    seed_source: SeedSource,
    identity: HostIdentity,
    sealer: Sealer | None,
    audit: AuditLog,
    on_progress: MintProgress | None = None,
) -> MintedBundle:
    """Mint, sign, audit and write one bundle (see the module docstring)."""
    if options.seal and sealer is None:
        raise UsageError("sealing was asked for but no passphrase was given")
    if not options.seal:
        sealer = None
    bundle_id = str(uuid.UUID(bytes=os.urandom(16), version=4))
    kem, kem_prov, kem_bits = await _key_section(
        "kem",
        options.kem,
        options.kem_backend,
        bundle_id,
        options,
        seed_source,
        sealer,
        on_progress,
    )
    signing = signing_prov = None
    sign_bits = 0.0
    if options.sign_keypair is not None:
        signing, signing_prov, sign_bits = await _key_section(
            "signing",
            options.sign_keypair,
            options.sign_backend,
            bundle_id,
            options,
            seed_source,
            sealer,
            on_progress,
        )
    seeded = kem["seeded_from_pool"] and (signing is None or signing["seeded_from_pool"])
    body: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "id": bundle_id,
        "created": utc_now(),
        "host": {"fingerprint": identity.fingerprint},
        "kem": kem,
        "signing_key": signing,
        "provenance": {
            "seeds_from_pool": seeded,
            "credit_factor": round(options.credit_factor, 3),
            "keys": {"kem": kem_prov, "signing_key": signing_prov},
        },
        "audit": None,
    }
    ensure_private_dir(options.out_dir)
    path = options.out_dir / bundle_filename(bundle_id)
    # The bundle is written (atomically, fsynced) before its entry is appended,
    # under the log's lock: a kill in between leaves a bundle without an entry,
    # which `audit verify` names and `audit repair` moves aside; never the reverse.
    with audit.reserve(
        "mint",
        **audit_fields(body),
        seeded_from_pool=seeded,
        sealed=sealer is not None,
        file=recorded_file(audit.path, path),
    ) as pending:
        entry = pending.entry
        body["audit"] = {"seq": entry["seq"], "hash": entry["hash"]}
        signatures = identity.sign(signed_message(body))
        write_private_file(path, bundle_bytes(body, signatures), overwrite=False)
        pending.written.append(path)
    return MintedBundle(
        bundle_id,
        path,
        kem["algorithm"],
        None if signing is None else signing["algorithm"],
        seeded,
        round(kem_bits + sign_bits, 3),
        entry["seq"],
    )


async def mint_bundles(
    options: MintOptions,
    *,
    seed_source: SeedSource,
    identity: HostIdentity,
    sealer: Sealer | None,
    audit: AuditLog,
    on_progress: MintProgress | None = None,
    on_minted: Callable[[MintedBundle], None] | None = None,
) -> list[MintedBundle]:
    """Mint ``options.count`` bundles one after the other (each waits for its own credit)."""
    options.validate()
    minted = []
    for _ in range(options.count):
        bundle = await mint_bundle(
            options,
            seed_source=seed_source,
            identity=identity,
            sealer=sealer,
            audit=audit,
            on_progress=on_progress,
        )
        minted.append(bundle)
        if on_minted is not None:
            on_minted(bundle)
    return minted
