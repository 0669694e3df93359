"""The host identity: a Falcon-512 and an ML-DSA-65 key pair that sign bundles,
plus an audit key that the identity certifies and that signs the audit trail.

Files under keys/identity/ (all written atomically, mode 0600):

* ``identity.json``: public keys and the identity's secret keys, sealed under
  the passphrase; how each key was generated (seeded from the pool or not).
* ``identity.pub.json``: public keys, fingerprint and the audit-key certificate;
  give this to whoever verifies bundles (``chaos-host verify --identity``).
* ``audit-key.json``: the audit key (ML-DSA-65, stored as its seed, not
  sealed: `chaos-host run` must log quarantine events without a passphrase),
  certified by both identity keys.

The fingerprint is SHA3-256 over the canonical list of identity public keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from chaosmagnet.errors import ChaosError, IdentityError, PQCError
from chaosmagnet.minting.canonical import canonical_json, digest_hex, file_json, from_hex
from chaosmagnet.minting.sealing import Sealer, Unsealer
from chaosmagnet.minting.seeds import ProgressCallback, SeedDraw, SeedSource
from chaosmagnet.pqc import algorithm_spec, backend_for, backend_named
from chaosmagnet.pqc.base import KeyPair, SecretEncoding
from chaosmagnet.securefile import fsync_dir, write_private_file

IDENTITY_ALGORITHMS: tuple[str, ...] = ("Falcon-512", "ML-DSA-65")
AUDIT_KEY_ALGORITHM = "ML-DSA-65"
IDENTITY_FORMAT = "chaosmagnet.identity/1"
IDENTITY_PUBLIC_FORMAT = "chaosmagnet.identity-public/1"
AUDIT_KEY_FORMAT = "chaosmagnet.audit-key/1"
IDENTITY_FILE = "identity.json"
PUBLIC_FILE = "identity.pub.json"
AUDIT_KEY_FILE = "audit-key.json"
_CERT_DOMAIN = b"chaosmagnet.audit-key-certificate/1\n"


def utc_now() -> str:
    """The current time as RFC 3339 UTC with seconds (what every file records)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def identity_dir(keys_dir: Path) -> Path:
    """keys/identity/ under a keys folder."""
    return Path(keys_dir) / "identity"


def fingerprint_of(keys: list[tuple[str, bytes]]) -> str:
    """SHA3-256 over the canonical [{"algorithm", "public_key"}] list, hex."""
    return digest_hex(canonical_json([{"algorithm": a, "public_key": pk.hex()} for a, pk in keys]))


def _verifier(algorithm: str) -> Any:
    return backend_for(algorithm, prefer_seeded=False)


def verify_signature_list(
    expected: list[tuple[str, bytes]], message: bytes, signatures: object, what: str
) -> list[str]:
    """Problems with ``signatures`` (list of {algorithm, public_key, value}) over ``message``.

    Exactly one valid signature per expected (algorithm, public key) is required,
    listed in the order of ``expected``; an extra, missing, duplicated, foreign
    or out-of-order signature is a problem.
    """
    problems: list[str] = []
    if not isinstance(signatures, list):
        return [f"{what}: signatures must be a list"]
    seen: set[str] = set()
    wanted = {algorithm: public_key for algorithm, public_key in expected}
    order = [algorithm for algorithm, _ in expected]
    for index, entry in enumerate(signatures):
        label = f"{what}: signature {index + 1}"
        if not isinstance(entry, dict) or set(entry) != {"algorithm", "public_key", "value"}:
            problems.append(f"{label}: needs exactly algorithm, public_key and value")
            continue
        algorithm = entry["algorithm"]
        if algorithm not in wanted:
            problems.append(f"{label}: unexpected algorithm {str(algorithm)[:40]!r}")
            continue
        if algorithm in seen:
            problems.append(f"{label}: second {algorithm} signature")
            continue
        seen.add(algorithm)
        if index >= len(order) or order[index] != algorithm:
            problems.append(
                f"{label}: {algorithm} is out of order (signatures must be listed "
                f"{', '.join(order)})"
            )
            continue
        try:
            public_key = from_hex(entry["public_key"], f"{label} public key", IdentityError)
            value = from_hex(entry["value"], f"{label} value", IdentityError)
        except IdentityError as exc:
            problems.append(str(exc))
            continue
        if public_key != wanted[algorithm]:
            problems.append(f"{label}: {algorithm} public key is not the host identity's")
            continue
        try:
            ok = _verifier(algorithm).verify(algorithm, public_key, message, value)
        except PQCError as exc:
            problems.append(f"{label}: {exc}")
            continue
        if not ok:
            problems.append(f"{label}: {algorithm} signature does not verify")
    for algorithm in wanted:
        if algorithm not in seen:
            problems.append(f"{what}: no {algorithm} signature")
    return problems


@dataclass(frozen=True)
class AuditKeyPublic:
    """The audit key's public half and the identity's certificate for it."""

    algorithm: str
    public_key: bytes
    created: str
    certificate: list[dict[str, str]]

    @property
    def key_id(self) -> str:
        """Short id of the audit key (first 16 hex of its public-key digest)."""
        return digest_hex(self.public_key)[:16]

    def statement(self, fingerprint: str) -> bytes:
        """What the identity signs to certify this key."""
        return _CERT_DOMAIN + canonical_json(
            {
                "algorithm": self.algorithm,
                "created": self.created,
                "identity": fingerprint,
                "public_key": self.public_key.hex(),
                "purpose": "audit",
            }
        )


@dataclass(frozen=True)
class IdentityPublic:
    """The public side of a host identity: what verifiers need."""

    keys: tuple[tuple[str, bytes], ...]
    created: str
    audit_key: AuditKeyPublic | None = None

    @cached_property
    def fingerprint(self) -> str:
        """SHA3-256 hex over the identity public keys."""
        return fingerprint_of(list(self.keys))

    def verify(self, message: bytes, signatures: object, what: str) -> list[str]:
        """Problems with the identity's signatures over ``message`` (empty: all good)."""
        return verify_signature_list(list(self.keys), message, signatures, what)

    def audit_key_problems(self) -> list[str]:
        """Problems with the audit-key certificate (empty: the audit key is the identity's)."""
        if self.audit_key is None:
            return ["the identity has no audit key"]
        return self.verify(
            self.audit_key.statement(self.fingerprint),
            self.audit_key.certificate,
            "audit-key certificate",
        )

    def to_json(self) -> dict[str, Any]:
        """The identity.pub.json document."""
        doc: dict[str, Any] = {
            "format": IDENTITY_PUBLIC_FORMAT,
            "created": self.created,
            "fingerprint": self.fingerprint,
            "keys": [{"algorithm": a, "public_key": pk.hex()} for a, pk in self.keys],
            "audit_key": None,
        }
        if self.audit_key is not None:
            doc["audit_key"] = {
                "algorithm": self.audit_key.algorithm,
                "public_key": self.audit_key.public_key.hex(),
                "created": self.audit_key.created,
                "certificate": self.audit_key.certificate,
            }
        return doc

    @classmethod
    def from_json(cls, doc: object, source: str = "identity") -> IdentityPublic:
        """Parse identity.pub.json (or identity.json's public part); IdentityError if malformed."""
        try:
            if not isinstance(doc, dict) or doc.get("format") not in (
                IDENTITY_PUBLIC_FORMAT,
                IDENTITY_FORMAT,
            ):
                raise IdentityError(f"{source}: not a chaosmagnet identity file")
            keys = tuple(
                (
                    str(k["algorithm"]),
                    from_hex(k["public_key"], f"{source}: public key", IdentityError),
                )
                for k in doc["keys"]
            )
            if [a for a, _ in keys] != list(IDENTITY_ALGORITHMS):
                raise IdentityError(
                    f"{source}: identity keys must be {', '.join(IDENTITY_ALGORITHMS)}"
                )
            audit = doc.get("audit_key")
            audit_key = None
            if audit is not None:
                audit_key = AuditKeyPublic(
                    str(audit["algorithm"]),
                    from_hex(audit["public_key"], f"{source}: audit public key", IdentityError),
                    str(audit["created"]),
                    list(audit["certificate"]),
                )
            public = cls(keys, str(doc["created"]), audit_key)
        except (KeyError, TypeError, ValueError):
            raise IdentityError(f"{source}: malformed identity file") from None
        if doc.get("fingerprint") != public.fingerprint:
            raise IdentityError(f"{source}: fingerprint does not match the public keys")
        return public


@dataclass(frozen=True)
class SecretKeyHandle:
    """A usable secret key: its algorithm, backend and secret (never shown)."""

    algorithm: str
    backend: str
    public_key: bytes
    secret: bytes = field(repr=False)
    encoding: SecretEncoding

    def __repr__(self) -> str:
        return f"SecretKeyHandle({self.algorithm}, backend={self.backend}, secret=<hidden>)"

    __str__ = __repr__

    @cached_property
    def _signing_key(self) -> Callable[[bytes], bytes]:
        # Loaded on first use and kept for the session: expanding a seed into a
        # key object on every signature cost as much as a sixth of the signature.
        return backend_named(self.backend).signing_key(self.algorithm, self.secret, self.encoding)

    @cached_property
    def public_key_hex(self) -> str:
        """The public key as lowercase hex (as signatures list it)."""
        return self.public_key.hex()

    def sign(self, message: bytes) -> dict[str, str]:
        """A {algorithm, public_key, value} signature over ``message``."""
        return {
            "algorithm": self.algorithm,
            "public_key": self.public_key_hex,
            "value": self._signing_key(message).hex(),
        }


class HostIdentity:
    """A loaded (unsealed) host identity: signs with both identity keys."""

    def __init__(
        self,
        public: IdentityPublic,
        signers: list[SecretKeyHandle],
        audit_signer: SecretKeyHandle | None,
    ) -> None:
        self.public = public
        self._signers = signers
        self.audit_signer = audit_signer

    def __repr__(self) -> str:
        algorithms = [s.algorithm for s in self._signers]
        return f"<HostIdentity {self.public.fingerprint[:16]} keys={algorithms}>"

    @property
    def fingerprint(self) -> str:
        """The identity fingerprint (hex)."""
        return self.public.fingerprint

    def sign(self, message: bytes) -> list[dict[str, str]]:
        """Detached signatures over ``message`` by every identity key."""
        return [signer.sign(message) for signer in self._signers]


# -- secret-key storage ------------------------------------------------------
def store_secret(
    secret: bytes, encoding: SecretEncoding, context: bytes, sealer: Sealer | None
) -> dict[str, Any]:
    """The JSON form of a secret key: sealed under ``sealer``, or plain hex when None."""
    if sealer is None:
        return {"encoding": encoding, "plain": secret.hex()}
    return {"encoding": encoding, "sealed": sealer.seal(secret, context)}


def open_secret(
    stored: object, context: bytes, unsealer: Unsealer | None, what: str
) -> tuple[bytes, SecretEncoding]:
    """(secret, encoding) from a stored secret key; unseals when sealed."""
    from chaosmagnet.errors import SealError

    if not isinstance(stored, dict) or stored.get("encoding") not in ("seed", "expanded"):
        raise SealError(f"{what}: malformed secret key")
    encoding: SecretEncoding = stored["encoding"]
    if "plain" in stored:
        return from_hex(stored["plain"], f"{what} secret key", SealError), encoding
    if "sealed" not in stored:
        raise SealError(f"{what}: malformed secret key")
    if unsealer is None:
        raise SealError(f"{what}: the secret key is sealed and no passphrase was given")
    return unsealer.open(stored["sealed"], context), encoding


def key_context(kind: bytes, label: str, algorithm: str, public_key: bytes) -> bytes:
    """Associated data binding a sealed secret to its place: kind|label|algorithm|pk digest."""
    return b"|".join(
        [
            kind,
            label.encode(),
            algorithm.encode(),
            hashlib.sha3_256(public_key).hexdigest().encode(),
        ]
    )


def _handle(
    pair_algorithm: str, backend: str, public_key: bytes, secret: bytes, encoding: SecretEncoding
) -> SecretKeyHandle:
    return SecretKeyHandle(pair_algorithm, backend, public_key, secret, encoding)


def _usable_backend(algorithm: str, recorded: str, encoding: SecretEncoding) -> str:
    """The backend to use a stored key with: the recorded one when present, else any that can."""
    try:
        backend = backend_named(recorded)
        if backend.supports(algorithm):
            return recorded
    except PQCError:
        pass
    chosen = backend_for(algorithm, prefer_seeded=encoding == "seed")
    if encoding == "seed" and not chosen.can_seed(algorithm):
        raise IdentityError(f"no installed backend can use a {algorithm} seed")
    return chosen.name


# -- creation ----------------------------------------------------------------
async def generate_key(
    algorithm: str,
    seed_source: SeedSource,
    *,
    purpose: bytes,
    credit_factor: float,
    timeout: float,
    on_progress: ProgressCallback | None = None,
    backend: str | None = None,
) -> tuple[KeyPair, SeedDraw | None]:
    """A key pair for ``algorithm``: seeded from a pool draw when the backend allows it.

    The draw waits for ``credit_factor`` x the algorithm's strength in healthy
    credited bits.  When the backend cannot seed, no draw is made and the
    returned draw is None (the key comes from the backend's own RNG).
    """
    spec = algorithm_spec(algorithm)
    chosen = backend_for(spec.name, backend=backend)
    if spec.seed_size is not None and chosen.can_seed(spec.name):
        draw = await seed_source.draw(
            spec.seed_size,
            required_bits=credit_factor * spec.strength_bits,
            purpose=purpose,
            timeout=timeout,
            on_progress=on_progress,
        )
        return chosen.generate_keypair(spec.name, draw.data), draw
    return chosen.generate_keypair(spec.name), None


def key_provenance(pair: KeyPair, draw: SeedDraw | None) -> dict[str, Any]:
    """How one key was made: backend, seeded or not, and the draw's provenance."""
    return {
        "algorithm": pair.algorithm,
        "backend": pair.backend,
        "seeded_from_pool": draw is not None and pair.seeded,
        "randomness": "pool seed"
        if draw is not None
        else f"{pair.backend} internal RNG (keygen cannot be seeded)",
        "draw": draw.provenance() if draw is not None else None,
    }


async def create_identity(
    keys_dir: Path,
    seed_source: SeedSource,
    sealer: Sealer,
    *,
    credit_factor: float = 2.0,
    timeout: float = 300.0,
    on_progress: Callable[[str, float, float], None] | None = None,
) -> HostIdentity:
    """Create the host identity and its audit key under keys_dir/identity/ (never overwrites)."""
    folder = identity_dir(keys_dir)
    if (folder / IDENTITY_FILE).exists():
        raise IdentityError(f"a host identity already exists in {folder}")
    created = utc_now()
    pairs: list[KeyPair] = []
    provenance = []
    for algorithm in IDENTITY_ALGORITHMS:
        progress = (
            (lambda have, need, a=algorithm: on_progress(f"identity {a}", have, need))
            if on_progress
            else None
        )
        pair, draw = await generate_key(
            algorithm,
            seed_source,
            purpose=b"chaosmagnet.identity/1|" + algorithm.encode(),
            credit_factor=credit_factor,
            timeout=timeout,
            on_progress=progress,
        )
        pairs.append(pair)
        provenance.append(key_provenance(pair, draw))
    audit_progress = (
        (lambda have, need: on_progress("audit key", have, need)) if on_progress else None
    )
    audit_pair, audit_draw = await generate_key(
        AUDIT_KEY_ALGORITHM,
        seed_source,
        purpose=b"chaosmagnet.audit-key/1",
        credit_factor=credit_factor,
        timeout=timeout,
        on_progress=audit_progress,
    )
    signers = [
        _handle(p.algorithm, p.backend, p.public_key, p.secret, p.secret_encoding) for p in pairs
    ]
    public_keys = tuple((p.algorithm, p.public_key) for p in pairs)
    unsigned_audit = AuditKeyPublic(AUDIT_KEY_ALGORITHM, audit_pair.public_key, created, [])
    fingerprint = fingerprint_of(list(public_keys))
    statement = unsigned_audit.statement(fingerprint)
    certificate = [signer.sign(statement) for signer in signers]
    audit_public = AuditKeyPublic(AUDIT_KEY_ALGORITHM, audit_pair.public_key, created, certificate)
    public = IdentityPublic(public_keys, created, audit_public)

    identity_doc = {
        "format": IDENTITY_FORMAT,
        "created": created,
        "fingerprint": public.fingerprint,
        "keys": [
            {
                "algorithm": p.algorithm,
                "backend": p.backend,
                "public_key": p.public_key.hex(),
                "secret_key": store_secret(
                    p.secret,
                    p.secret_encoding,
                    key_context(b"identity", "identity", p.algorithm, p.public_key),
                    sealer,
                ),
            }
            for p in pairs
        ],
        "provenance": provenance,
        "audit_key": public.to_json()["audit_key"],
    }
    audit_doc = {
        "format": AUDIT_KEY_FORMAT,
        "identity": public.fingerprint,
        "algorithm": AUDIT_KEY_ALGORITHM,
        "backend": audit_pair.backend,
        "public_key": audit_pair.public_key.hex(),
        "secret_key": store_secret(audit_pair.secret, audit_pair.secret_encoding, b"", None),
        "provenance": key_provenance(audit_pair, audit_draw),
    }
    # identity.json last: it is what makes the identity exist.  On a failure
    # (a full disk) the files written so far are removed again.
    written: list[Path] = []
    try:
        for name, data, overwrite in (
            (AUDIT_KEY_FILE, file_json(audit_doc), True),
            (PUBLIC_FILE, file_json(public.to_json()), True),
            (IDENTITY_FILE, file_json(identity_doc), False),
        ):
            written.append(write_private_file(folder / name, data, overwrite=overwrite))
    except ChaosError:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        fsync_dir(folder)
        raise
    audit_signer = _handle(
        AUDIT_KEY_ALGORITHM,
        audit_pair.backend,
        audit_pair.public_key,
        audit_pair.secret,
        audit_pair.secret_encoding,
    )
    return HostIdentity(public, signers, audit_signer)


def remove_identity_files(keys_dir: Path) -> None:
    """Remove a just-created identity's files (identity.json first), e.g. when it cannot be recorded."""
    folder = identity_dir(keys_dir)
    for name in (IDENTITY_FILE, PUBLIC_FILE, AUDIT_KEY_FILE):
        with contextlib.suppress(FileNotFoundError):
            try:
                (folder / name).unlink()
            except FileNotFoundError:
                raise
            except OSError as exc:
                raise IdentityError(f"cannot remove {folder / name}: {exc.strerror}") from None
    fsync_dir(folder)


# -- loading -----------------------------------------------------------------
def _read_json(path: Path, error: type[Exception] = IdentityError) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path} not found") from None
    except OSError as exc:
        raise error(f"{path}: unreadable ({exc.strerror})") from None
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested too deeply
        raise error(f"{path}: not valid JSON") from None


def identity_exists(keys_dir: Path) -> bool:
    """Whether keys_dir/identity/identity.json exists."""
    return (identity_dir(keys_dir) / IDENTITY_FILE).exists()


def load_identity_public(path: Path) -> IdentityPublic:
    """The public identity from identity.pub.json (or identity.json, or a folder holding them)."""
    path = Path(path)
    if path.is_dir():
        path = (
            path / PUBLIC_FILE
            if (path / PUBLIC_FILE).exists()
            else identity_dir(path) / PUBLIC_FILE
        )
    return IdentityPublic.from_json(_read_json(path), str(path))


def load_audit_signer(keys_dir: Path) -> SecretKeyHandle | None:
    """The audit key (no passphrase needed), or None when there is no identity yet."""
    path = identity_dir(keys_dir) / AUDIT_KEY_FILE
    if not path.exists():
        return None
    doc = _read_json(path)
    try:
        if doc.get("format") != AUDIT_KEY_FORMAT:
            raise IdentityError(f"{path}: not an audit-key file")
        algorithm = str(doc["algorithm"])
        public_key = from_hex(doc["public_key"], f"{path}: public key", IdentityError)
        secret, encoding = open_secret(doc["secret_key"], b"", None, str(path))
        backend = _usable_backend(algorithm, str(doc.get("backend", "")), encoding)
    except (KeyError, TypeError, AttributeError):
        raise IdentityError(f"{path}: malformed audit-key file") from None
    if (
        encoding == "seed"
        and backend_named(backend).public_key_from_secret(algorithm, secret, encoding) != public_key
    ):
        raise IdentityError(f"{path}: the audit key does not match its public key")
    return SecretKeyHandle(algorithm, backend, public_key, secret, encoding)


def load_identity(keys_dir: Path, unsealer: Unsealer) -> HostIdentity:
    """Load and unseal the host identity; IdentityError/SealError when it cannot."""
    path = identity_dir(keys_dir) / IDENTITY_FILE
    doc = _read_json(path)
    public = IdentityPublic.from_json(doc, str(path))
    signers = []
    try:
        for entry in doc["keys"]:
            algorithm = str(entry["algorithm"])
            public_key = from_hex(entry["public_key"], f"{path}: public key", IdentityError)
            context = key_context(b"identity", "identity", algorithm, public_key)
            secret, encoding = open_secret(
                entry["secret_key"], context, unsealer, f"{path} ({algorithm})"
            )
            backend = _usable_backend(algorithm, str(entry.get("backend", "")), encoding)
            signers.append(SecretKeyHandle(algorithm, backend, public_key, secret, encoding))
    except (KeyError, TypeError, AttributeError):
        raise IdentityError(f"{path}: malformed identity file") from None
    probe = b"chaosmagnet.identity-selftest/1"
    if public.verify(probe, [s.sign(probe) for s in signers], "identity self-test"):
        raise IdentityError(f"{path}: the secret keys do not match the public keys")
    audit_signer = load_audit_signer(keys_dir)
    if audit_signer is not None and (
        public.audit_key is None or audit_signer.public_key != public.audit_key.public_key
    ):
        raise IdentityError("the audit key does not belong to this identity")
    return HostIdentity(public, signers, audit_signer)
