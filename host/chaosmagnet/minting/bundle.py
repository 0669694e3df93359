"""Key bundles (docs/bundle-format.md): build, sign, write, parse, verify.

The body is everything but ``signatures``; its canonical JSON, prefixed with
``chaosmagnet.bundle/1\\n``, is what the host identity signs (Falcon-512 and
ML-DSA-65, detached).  The file is the body plus ``signatures`` in the
``file_json`` layout; verification requires exactly that layout and lowercase
hex, so any changed byte of the body or a signature fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosmagnet.audit import entry_is_authentic, find_entry
from chaosmagnet.errors import AuditError, BundleError, escape_device_text
from chaosmagnet.minting.canonical import canonical_json, digest_hex, file_json, from_hex
from chaosmagnet.minting.identity import IdentityPublic
from chaosmagnet.pqc import ALGORITHMS

BUNDLE_FORMAT = "chaosmagnet.bundle/1"
SIGNATURE_DOMAIN = b"chaosmagnet.bundle/1\n"
BODY_KEYS = {"format", "id", "created", "host", "kem", "signing_key", "provenance", "audit"}
KEY_KEYS = {"algorithm", "backend", "public_key", "seeded_from_pool", "secret_key"}


def signed_message(body: dict[str, Any]) -> bytes:
    """The bytes every bundle signature covers."""
    return SIGNATURE_DOMAIN + canonical_json(body)


def bundle_bytes(body: dict[str, Any], signatures: list[dict[str, str]]) -> bytes:
    """The bundle file's exact bytes."""
    return file_json({**body, "signatures": signatures})


def bundle_filename(bundle_id: str) -> str:
    """File name of a bundle under the output folder."""
    return f"bundle-{bundle_id}.json"


@dataclass
class BundleReport:
    """The outcome of verifying one bundle: ok when ``problems`` is empty."""

    path: str
    bundle_id: str | None = None
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check held."""
        return not self.problems


def load_bundle(path: Path) -> tuple[bytes, dict[str, Any]]:
    """(raw bytes, parsed JSON) of a bundle file; BundleError if unreadable or not JSON."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{path} not found") from None
    except OSError as exc:
        raise BundleError(f"{path}: {exc.strerror}") from None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to be a bundle
        raise BundleError(f"{path}: not valid JSON") from None
    if not isinstance(doc, dict):
        raise BundleError(f"{path}: not a bundle")
    return raw, doc


def split_bundle(doc: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(body, signatures) of a parsed bundle."""
    body = {k: v for k, v in doc.items() if k != "signatures"}
    return body, doc.get("signatures")


def _key_problems(name: str, key: object, kind: str) -> list[str]:
    if not isinstance(key, dict) or set(key) != KEY_KEYS:
        return [f"{name}: needs exactly {', '.join(sorted(KEY_KEYS))}"]
    spec = ALGORITHMS.get(key["algorithm"]) if isinstance(key["algorithm"], str) else None
    if spec is None or spec.kind != kind:
        return [f"{name}: unknown {kind} algorithm {str(key['algorithm'])[:40]!r}"]
    try:
        public_key = from_hex(key["public_key"], f"{name} public key", BundleError)
    except BundleError as exc:
        return [str(exc)]
    if len(public_key) != spec.public_key_size:
        return [f"{name}: {spec.name} public key must be {spec.public_key_size} bytes"]
    if not isinstance(key["seeded_from_pool"], bool) or not isinstance(key["backend"], str):
        return [f"{name}: malformed"]
    secret = key["secret_key"]
    if (
        not isinstance(secret, dict)
        or secret.get("encoding") not in ("seed", "expanded")
        or len(secret) != 2
        or not ({"sealed"} == set(secret) - {"encoding"} or {"plain"} == set(secret) - {"encoding"})
    ):
        return [f"{name}: malformed secret_key"]
    return []


def structure_problems(body: dict[str, Any]) -> list[str]:
    """Format problems with a bundle body (empty: well-formed)."""
    if body.get("format") != BUNDLE_FORMAT:
        return [f"format is not {BUNDLE_FORMAT}"]
    if set(body) != BODY_KEYS:
        extra = sorted(set(body) - BODY_KEYS)
        missing = sorted(BODY_KEYS - set(body))
        return [f"body fields: missing {missing}, unexpected {extra}"]
    problems = []
    if not isinstance(body["id"], str) or not body["id"] or not isinstance(body["created"], str):
        problems.append("id and created must be strings")
    if not isinstance(body["host"], dict) or not isinstance(body["host"].get("fingerprint"), str):
        problems.append("host.fingerprint is missing")
    problems += _key_problems("kem", body["kem"], "kem")
    if body["signing_key"] is not None:
        problems += _key_problems("signing_key", body["signing_key"], "sign")
    audit = body["audit"]
    if (
        not isinstance(audit, dict)
        or not isinstance(audit.get("seq"), int)
        or not isinstance(audit.get("hash"), str)
    ):
        problems.append("audit must hold seq and hash")
    if not isinstance(body["provenance"], dict):
        problems.append("provenance must be an object")
    return problems


def audit_fields(body: dict[str, Any]) -> dict[str, Any]:
    """What the mint audit entry records about a bundle (checked again on verify)."""
    signing = body["signing_key"]
    return {
        "bundle_id": body["id"],
        "identity": body["host"]["fingerprint"],
        "kem": body["kem"]["algorithm"],
        "kem_public_key": digest_hex(bytes.fromhex(body["kem"]["public_key"])),
        "signing_key": None if signing is None else signing["algorithm"],
        "signing_public_key": None
        if signing is None
        else digest_hex(bytes.fromhex(signing["public_key"])),
    }


def verify_bundle(
    path: Path,
    identity: IdentityPublic,
    *,
    audit_log: Path | None,
) -> BundleReport:
    """Check format, canonical layout, every signature and the audit entry.

    ``audit_log=None`` skips the audit entry (the log is not at hand).
    """
    report = BundleReport(str(path))
    raw, doc = load_bundle(path)
    body, signatures = split_bundle(doc)
    report.bundle_id = body.get("id") if isinstance(body.get("id"), str) else None
    problems = structure_problems(body)
    if problems:
        report.problems += problems
        return report
    report.checked.append("format")
    if raw != file_json(doc):
        report.problems.append("the file is not in canonical layout (bytes were changed)")
    if body["host"]["fingerprint"] != identity.fingerprint:
        report.problems.append(
            f"made by host {escape_device_text(body['host']['fingerprint'][:16])}, "
            f"not by identity {identity.fingerprint[:16]}"
        )
    sig_problems = identity.verify(signed_message(body), signatures, "bundle")
    report.problems += sig_problems
    if not sig_problems:
        report.checked.append("signatures (" + ", ".join(a for a, _ in identity.keys) + ")")
    if audit_log is not None:
        audit_problems = _audit_problems(body, identity, audit_log)
        report.problems += audit_problems
        if not audit_problems:
            report.checked.append(f"audit entry {body['audit']['seq']}")
    return report


def _audit_problems(body: dict[str, Any], identity: IdentityPublic, audit_log: Path) -> list[str]:
    seq, digest = body["audit"]["seq"], body["audit"]["hash"]
    try:
        entry = find_entry(audit_log, seq)
    except AuditError as exc:
        return [f"audit: {exc}"]
    if entry is None:
        return [f"audit: entry {seq} is not in {audit_log}"]
    if entry.get("hash") != digest:
        return [f"audit: entry {seq} in {audit_log} is not the one this bundle names"]
    why = entry_is_authentic(entry, identity)
    if why is not None:
        return [f"audit: entry {seq}: {why}"]
    fields = entry.get("fields")
    expected = audit_fields(body)
    if (
        entry.get("event") != "mint"
        or not isinstance(fields, dict)
        or any(fields.get(k) != v for k, v in expected.items())
    ):
        return [f"audit: entry {seq} does not record this bundle"]
    return []
