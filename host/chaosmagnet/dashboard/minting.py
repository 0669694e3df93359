"""The dashboard's Mint button: mint one bundle from the running engine's pool, list bundles.

Uses the minting API (chaosmagnet.minting) with an EngineSeedSource, so the
seeds come from this process's pool under the same credit rules as
`chaos-host mint`.  The passphrase comes from the request or, when the form
field is empty, from the server's $CHAOS_PASSPHRASE; it is used to unseal the
host identity and seal the new secret keys, and is never stored, logged or
echoed.  The first mint creates the host identity (as `chaos-host mint` does),
which needs the passphrase typed twice unless it comes from the server.

Only public parts of bundles are ever served: secret-key sections are
dropped before anything leaves this module.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosmagnet.audit import AuditLog, record_identity_created
from chaosmagnet.errors import BundleError, IdentityError, UsageError
from chaosmagnet.minting.bundle import bundle_filename, load_bundle, split_bundle
from chaosmagnet.minting.identity import (
    HostIdentity,
    create_identity,
    identity_dir,
    identity_exists,
    load_identity,
    load_identity_public,
)
from chaosmagnet.minting.mint import DEFAULT_CREDIT_FACTOR, DEFAULT_KEM, MintOptions, mint_bundle
from chaosmagnet.minting.sealing import (
    DEFAULT_SCRYPT,
    PASSPHRASE_ENV,
    ScryptParams,
    Sealer,
    Unsealer,
)
from chaosmagnet.minting.seeds import EngineSeedSource
from chaosmagnet.pqc.registry import backend_table

_BUNDLE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_LISTED = 100


class MintRefused(UsageError):
    """A mint request the dashboard refuses (busy, no passphrase, confirmation differs)."""


@dataclass
class MintProgress:
    """What the current mint waits for (shown live on the page)."""

    what: str = ""
    have: float = 0.0
    need: float = 0.0
    phase: str = "idle"  # idle / unsealing / waiting / writing
    reason: str = ""  # why the draw still waits when the credit is there (the key quorum)


@dataclass
class MintService:
    """Mints bundles into ``keys_dir`` from ``engine``'s pool and lists them."""

    engine: Any
    keys_dir: Path
    audit_path: Path
    scrypt: ScryptParams = DEFAULT_SCRYPT
    credit_factor: float = DEFAULT_CREDIT_FACTOR
    timeout: float = 300.0
    environ: Callable[[], dict[str, str]] = lambda: dict(os.environ)
    progress: MintProgress = field(default_factory=MintProgress)
    minted: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __repr__(self) -> str:
        return f"<MintService {self.keys_dir} minted={self.minted}>"

    # -- what can be minted ------------------------------------------------
    @staticmethod
    def algorithms() -> dict[str, list[dict[str, Any]]]:
        """KEM and signature algorithms that an installed backend serves, with their strength."""
        out: dict[str, list[dict[str, Any]]] = {"kem": [], "sign": []}
        for row in backend_table():
            if row.backend is not None and row.kind in out:
                out[row.kind].append(
                    {
                        "name": row.algorithm,
                        "strength_bits": row.strength_bits,
                        "backend": row.backend,
                        "seeded_from_pool": row.seeded,
                    }
                )
        return out

    def _server_passphrase(self) -> str | None:
        value = self.environ().get(PASSPHRASE_ENV)
        return value or None

    def status(self) -> dict[str, Any]:
        """Whether the button works, why not, and the progress of a mint under way."""
        algorithms = self.algorithms()
        available, reason = True, ""
        if not algorithms["kem"]:
            available, reason = (
                False,
                "no installed post-quantum backend serves a KEM (see `chaos-host backends`)",
            )
        identity: dict[str, Any] = {"exists": identity_exists(self.keys_dir), "fingerprint": None}
        if identity["exists"]:
            try:
                identity["fingerprint"] = load_identity_public(
                    identity_dir(self.keys_dir)
                ).fingerprint
            except IdentityError as exc:
                identity["problem"] = str(exc)
        return {
            "available": available,
            "reason": reason,
            "busy": self._lock.locked(),
            "progress": {
                "phase": self.progress.phase,
                "what": self.progress.what,
                "have": round(self.progress.have, 1),
                "need": round(self.progress.need, 1),
                "reason": self.progress.reason,
            },
            "algorithms": algorithms,
            "default_kem": DEFAULT_KEM,
            "server_passphrase": self._server_passphrase() is not None,
            "identity": identity,
            "credit_factor": self.credit_factor,
            "minted": self.minted,
        }

    # -- minting -----------------------------------------------------------
    def _passphrase(self, typed: str, confirm: str | None, creating: bool) -> str:
        if typed:
            if creating and confirm != typed:
                raise MintRefused(
                    "the first mint creates the host identity: "
                    "type the passphrase twice (the two differ)"
                )
            return typed
        server = self._server_passphrase()
        if server is None:
            raise MintRefused(
                "a passphrase is needed: type one, "
                f"or start chaos-host run with ${PASSPHRASE_ENV} set"
            )
        return server

    def _on_waiting(self, reason: str) -> None:
        self.progress.reason = reason

    def _on_progress(self, what: str, have: float, need: float) -> None:
        self.progress.phase, self.progress.what = "waiting", what
        self.progress.have, self.progress.need = have, need

    async def _identity(self, passphrase: str, source: EngineSeedSource) -> HostIdentity:
        if identity_exists(self.keys_dir):
            self.progress.phase = "unsealing"
            return await asyncio.to_thread(load_identity, self.keys_dir, Unsealer(passphrase))
        sealer = await asyncio.to_thread(Sealer, passphrase, self.scrypt)
        identity = await create_identity(
            self.keys_dir,
            source,
            sealer,
            credit_factor=self.credit_factor,
            timeout=self.timeout,
            on_progress=self._on_progress,
        )
        record_identity_created(identity, self.audit_path, keys=self.keys_dir)
        return identity

    async def mint(
        self,
        kem: str,
        sign_keypair: str | None,
        passphrase: str = "",
        passphrase_confirm: str | None = None,
    ) -> dict[str, Any]:
        """Mint one sealed bundle; returns its public summary.  ChaosError subclasses on refusal."""
        options = MintOptions(
            kem=kem,
            sign_keypair=sign_keypair or None,
            count=1,
            out_dir=self.keys_dir,
            seal=True,
            credit_factor=self.credit_factor,
            timeout=self.timeout,
        )
        options.validate()
        if self._lock.locked():
            raise MintRefused("a mint is already under way")
        async with self._lock:
            self.progress = MintProgress(phase="unsealing")
            try:
                secret = self._passphrase(
                    passphrase, passphrase_confirm, not identity_exists(self.keys_dir)
                )
                source = EngineSeedSource(self.engine)
                source.on_waiting = self._on_waiting
                identity = await self._identity(secret, source)
                sealer = await asyncio.to_thread(Sealer, secret, self.scrypt)
                minted = await mint_bundle(
                    options,
                    seed_source=source,
                    identity=identity,
                    sealer=sealer,
                    audit=AuditLog(self.audit_path, identity.audit_signer),
                    on_progress=self._on_progress,
                )
            finally:
                self.progress = MintProgress()
        self.minted += 1
        return {
            "id": minted.bundle_id,
            "file": minted.path.name,
            "kem": minted.kem,
            "signing_key": minted.signing_key,
            "seeded_from_pool": minted.seeded_from_pool,
            "credited_bits_drawn": minted.credited_bits_drawn,
            "audit_seq": minted.audit_seq,
            "public_url": f"/api/bundles/{minted.bundle_id}/public",
        }

    # -- listing -----------------------------------------------------------
    def bundles(self) -> list[dict[str, Any]]:
        """Summaries of the bundles in ``keys_dir``, newest first (unreadable files skipped)."""
        rows = []
        for path in self.keys_dir.glob("bundle-*.json"):
            try:
                _, doc = load_bundle(path)
            except BundleError:
                continue
            summary = _summary(doc)
            if summary is not None:
                rows.append(summary)
        rows.sort(key=lambda r: (r["created"], r["id"]), reverse=True)
        return rows[:MAX_LISTED]

    def public_part(self, bundle_id: str) -> dict[str, Any]:
        """The bundle without its secret keys; BundleError if there is no such bundle."""
        if not _BUNDLE_ID.match(bundle_id):
            raise BundleError("no such bundle")
        path = self.keys_dir / bundle_filename(bundle_id)
        if not path.is_file():
            raise BundleError("no such bundle")
        _, doc = load_bundle(path)
        body, signatures = split_bundle(doc)
        public = dict(body)
        for role in ("kem", "signing_key"):
            section = body.get(role)
            if isinstance(section, dict):
                public[role] = {k: v for k, v in section.items() if k != "secret_key"}
        public["signatures"] = signatures
        public["secret_keys"] = "withheld: only the bundle file holds them (sealed)"
        return public


def _summary(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The listed facts of one parsed bundle, or None when it is not shaped like one."""
    try:
        bundle_id = str(doc["id"])
        if not _BUNDLE_ID.match(bundle_id):
            return None
        signing = doc.get("signing_key")
        return {
            "id": bundle_id,
            "created": str(doc.get("created", "")),
            "kem": str(doc["kem"]["algorithm"]),
            "signing_key": str(signing["algorithm"]) if isinstance(signing, dict) else None,
            "seeded_from_pool": bool(doc.get("provenance", {}).get("seeds_from_pool", False)),
            "audit_seq": (doc.get("audit") or {}).get("seq"),
            "host": str(doc.get("host", {}).get("fingerprint", "")),
            "public_url": f"/api/bundles/{bundle_id}/public",
        }
    except (KeyError, TypeError, AttributeError):
        return None
