"""The signed audit trail: logs/audit.jsonl, one hash-chained, signed entry per event.

Each line is the canonical JSON of one entry::

    {"seq": 7, "time": "...Z", "event": "mint", "fields": {...},
     "prev": <hash of entry 6>, "hash": <SHA3-256 of this entry's content>,
     "signer": <audit key id>, "signature": <ML-DSA-65 over the hash>}

The audit key is certified by the host identity (see minting.identity), so
the trail is signed by the identity without the running aggregator needing
the passphrase.  logs/audit.head.json holds the signed last (seq, hash), so
entries removed from the end are detected too.  Appends take an exclusive
lock, so `chaos-host run` and `chaos-host mint` can log at the same time.

``verify_audit_log`` names every entry that was changed, removed, reordered
or inserted.  Events: identity_created, mint, source_quarantined,
source_failed, source_cleared, config_change (and whatever callers record).
Secrets never go here: byte values are refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosmagnet.errors import AuditError, IdentityError, UsageError
from chaosmagnet.eventlog import data_dir, logs_dir
from chaosmagnet.minting.canonical import canonical_json, digest_hex, file_json, from_hex
from chaosmagnet.minting.identity import (
    HostIdentity,
    IdentityPublic,
    SecretKeyHandle,
    load_audit_signer,
    utc_now,
)
from chaosmagnet.pqc import backend_for
from chaosmagnet.securefile import PRIVATE_FILE_MODE, ensure_private_dir, write_private_file

ENTRY_DOMAIN = b"chaosmagnet.audit/1\n"
SIGNATURE_DOMAIN = b"chaosmagnet.audit.signature/1\n"
HEAD_DOMAIN = b"chaosmagnet.audit.head/1\n"
GENESIS = "0" * 64
_ENTRY_KEYS = {"seq", "time", "event", "fields", "prev", "hash", "signer", "signature"}


def entry_hash(seq: int, time: str, event: str, fields: dict[str, Any], prev: str) -> str:
    """SHA3-256 (hex) of an entry's content: everything but hash and signature."""
    core = {"event": event, "fields": fields, "prev": prev, "seq": seq, "time": time}
    return digest_hex(ENTRY_DOMAIN + canonical_json(core))


def _clean(value: Any, where: str) -> Any:
    """A JSON-ready copy of a field value; bytes are refused (they could be secrets)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise AuditError(
            f"audit field {where} is raw bytes; record a digest or public value instead"
        )
    if isinstance(value, float):
        return round(value, 3)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return str(value)


class AuditLog:
    """Appends signed, hash-chained entries to one audit.jsonl file."""

    def __init__(self, path: Path, signer: SecretKeyHandle | None = None) -> None:
        self.path = Path(path)
        self.signer = signer
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<AuditLog {self.path} signer={self.signer.algorithm if self.signer else None}>"

    @property
    def head_path(self) -> Path:
        """The signed head file beside the log."""
        return self.path.with_name(self.path.stem + ".head.json")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        ensure_private_dir(self.path.parent)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with self._lock:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def _sign(self, entry_hash_hex: str) -> tuple[str | None, str | None]:
        if self.signer is None:
            return None, None
        value = self.signer.sign(SIGNATURE_DOMAIN + bytes.fromhex(entry_hash_hex))["value"]
        return digest_hex(self.signer.public_key)[:16], value

    def _last(self) -> dict[str, Any] | None:
        """The last entry in the file (read from the end), or None if the log is empty."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                chunk = min(size, 1 << 20)
                handle.seek(size - chunk)
                tail = handle.read(chunk)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuditError(f"{self.path}: {exc.strerror}") from None
        lines = [line for line in tail.split(b"\n") if line.strip()]
        if not lines:
            return None
        try:
            last = json.loads(lines[-1])
            int(last["seq"]), str(last["hash"])
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
            raise AuditError(
                f"{self.path}: the last entry is damaged; run `chaos-host audit verify`"
            ) from None
        return last

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one entry for ``event`` with ``fields``; returns the entry (seq, hash, ...)."""
        clean = _clean(fields, event)
        with self._locked():
            last = self._last()
            seq = 1 if last is None else int(last["seq"]) + 1
            prev = GENESIS if last is None else str(last["hash"])
            stamp = utc_now()
            digest = entry_hash(seq, stamp, event, clean, prev)
            signer, signature = self._sign(digest)
            entry = {
                "seq": seq,
                "time": stamp,
                "event": event,
                "fields": clean,
                "prev": prev,
                "hash": digest,
                "signer": signer,
                "signature": signature,
            }
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
                with os.fdopen(fd, "ab") as handle:
                    handle.write(canonical_json(entry) + b"\n")
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise AuditError(f"cannot append to {self.path}: {exc.strerror}") from None
            self._write_head(seq, digest)
        return entry

    def _write_head(self, seq: int, digest: str) -> None:
        if self.signer is None:
            return
        body = {"seq": seq, "hash": digest}
        value = self.signer.sign(HEAD_DOMAIN + canonical_json(body))["value"]
        head = {**body, "signer": digest_hex(self.signer.public_key)[:16], "signature": value}
        write_private_file(self.head_path, file_json(head))

    def sign_pending(self) -> int:
        """Countersign entries recorded before an audit key existed; returns how many.

        Refuses (AuditError) when the unsigned part of the chain does not hold
        together: a tampered entry is never signed.
        """
        if self.signer is None:
            raise AuditError("no audit key to sign with")
        with self._locked():
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                return 0
            except OSError as exc:
                raise AuditError(f"{self.path}: {exc.strerror}") from None
            lines = [line for line in raw.split(b"\n") if line.strip()]
            entries = []
            prev = GENESIS
            for number, line in enumerate(lines, 1):
                try:
                    entry = json.loads(line)
                    digest = entry_hash(
                        entry["seq"], entry["time"], entry["event"], entry["fields"], entry["prev"]
                    )
                except (ValueError, KeyError, TypeError, RecursionError):
                    raise AuditError(
                        f"line {number} of {self.path} is damaged; not signing"
                    ) from None
                if entry["seq"] != number or entry["prev"] != prev or entry["hash"] != digest:
                    raise AuditError(
                        f"entry {number} of {self.path} does not fit the chain; not signing"
                    )
                prev = digest
                entries.append(entry)
            pending = [e for e in entries if e.get("signature") is None]
            if not pending:
                return 0
            for entry in pending:
                entry["signer"], entry["signature"] = self._sign(entry["hash"])
            write_private_file(self.path, b"".join(canonical_json(e) + b"\n" for e in entries))
            self._write_head(entries[-1]["seq"], entries[-1]["hash"])
        return len(pending)


# -- verification ------------------------------------------------------------
@dataclass
class AuditReport:
    """Result of verifying an audit log: ok when ``problems`` is empty."""

    entries: int = 0
    signed: int = 0
    last_seq: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


@dataclass
class _Line:
    number: int
    entry: dict[str, Any] | None
    seq: int | None
    authentic: bool
    why: str = ""


def _parse_line(number: int, raw: bytes, audit_pk: bytes | None, key_id: str | None) -> _Line:
    try:
        entry = json.loads(raw)
    except (ValueError, RecursionError):
        return _Line(number, None, None, False, "not valid JSON")
    if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
        return _Line(number, None, None, False, "not an audit entry")
    seq = (
        entry["seq"]
        if isinstance(entry["seq"], int) and not isinstance(entry["seq"], bool)
        else None
    )
    try:
        digest = entry_hash(
            entry["seq"], entry["time"], entry["event"], entry["fields"], entry["prev"]
        )
    except (TypeError, ValueError, RecursionError):
        return _Line(number, entry, seq, False, "content cannot be hashed")
    if canonical_json(entry) != raw:
        return _Line(number, entry, seq, False, "not in canonical form")
    if entry["hash"] != digest:
        return _Line(number, entry, seq, False, "its hash does not match its content")
    if entry["signature"] is None:
        return _Line(number, entry, seq, False, "not signed")
    if audit_pk is None:
        return _Line(number, entry, seq, False, "no certified audit key to check the signature")
    if entry["signer"] != key_id:
        return _Line(
            number, entry, seq, False, "signed by a key that is not the certified audit key"
        )
    try:
        signature = from_hex(entry["signature"], "signature", AuditError)
        ok = backend_for("ML-DSA-65", prefer_seeded=False).verify(
            "ML-DSA-65", audit_pk, SIGNATURE_DOMAIN + bytes.fromhex(digest), signature
        )
    except AuditError:
        ok = False
    if not ok:
        return _Line(number, entry, seq, False, "its signature does not verify")
    return _Line(number, entry, seq, True)


def _ranges(values: list[int]) -> list[str]:
    out: list[str] = []
    if not values:
        return out
    values = sorted(values)
    start = prev = values[0] if values else 0
    for value in values[1:] + [None]:  # type: ignore[list-item]
        if value is not None and value == prev + 1:
            prev = value
            continue
        out.append(f"entry {start}" if start == prev else f"entries {start}-{prev}")
        if value is not None:
            start = prev = value
    return out


def verify_audit_log(
    path: Path, identity: IdentityPublic, *, head_path: Path | None = None
) -> AuditReport:
    """Check every entry, the chain and the head.

    Names each entry that was changed, removed, reordered or inserted.
    """
    path = Path(path)
    report = AuditReport()
    cert_problems = identity.audit_key_problems()
    report.problems += cert_problems
    audit_pk = key_id = None
    if not cert_problems and identity.audit_key is not None:
        audit_pk = identity.audit_key.public_key
        key_id = identity.audit_key.key_id
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AuditError(f"{path} not found") from None
    except OSError as exc:
        raise AuditError(f"{path}: {exc.strerror}") from None
    raw_lines = raw.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    lines = [_parse_line(i, line, audit_pk, key_id) for i, line in enumerate(raw_lines, 1)]
    report.entries = len(lines)
    report.signed = sum(1 for line in lines if line.authentic)

    authentic = [line for line in lines if line.authentic]
    seen: dict[int, _Line] = {}
    max_seen = 0
    good: dict[int, _Line] = {}
    for line in authentic:
        assert line.seq is not None
        if line.seq in seen:
            report.problems.append(
                f"entry {line.seq} (line {line.number}) inserted: "
                f"a copy of line {seen[line.seq].number}"
            )
            continue
        seen[line.seq] = line
        if line.seq < max_seen:
            report.problems.append(
                f"entry {line.seq} (line {line.number}) reordered: it comes after entry {max_seen}"
            )
        max_seen = max(max_seen, line.seq)
        good[line.seq] = line

    occupied = set(good)
    for index, line in enumerate(lines):
        if line.authentic:
            continue
        before = [x.seq for x in lines[:index] if x.authentic and x.seq is not None]
        after = [x.seq for x in lines[index + 1 :] if x.authentic and x.seq is not None]
        low = max(before) if before else 0
        high = min(after) if after else None
        label = f"line {line.number}"
        if line.why == "not signed" and line.seq is not None and line.seq not in occupied:
            report.problems.append(
                f"entry {line.seq} ({label}) is not signed (recorded before the audit key existed?)"
            )
            occupied.add(line.seq)
            continue
        if line.seq is not None and line.seq in occupied:
            report.problems.append(
                f"{label} inserted: claims entry {line.seq}, which another line holds ({line.why})"
            )
            continue
        fits = line.seq is not None and low < line.seq and (high is None or line.seq < high)
        if line.seq is None and (high is None or high - low >= 2):
            line.seq = low + 1
            fits = True
        if fits and line.seq is not None:
            report.problems.append(f"entry {line.seq} ({label}) changed: {line.why}")
            occupied.add(line.seq)
        else:
            report.problems.append(f"{label} inserted: {line.why}")

    head_seq = None
    head_file = head_path or path.with_name(path.stem + ".head.json")
    if audit_pk is not None:
        head_seq = _check_head(head_file, audit_pk, key_id, good, report)
    top_present = max(occupied, default=0)
    for text in _ranges([s for s in range(1, top_present + 1) if s not in occupied]):
        report.problems.append(f"{text} removed")
    if head_seq is not None and head_seq > top_present:
        tail = _ranges(list(range(top_present + 1, head_seq + 1)))[0]
        report.problems.append(
            f"{tail} removed from the end (the signed head names entry {head_seq})"
        )

    for seq, line in sorted(good.items()):
        assert line.entry is not None
        expected_prev = (
            GENESIS
            if seq == 1
            else (good[seq - 1].entry or {}).get("hash")
            if seq - 1 in good
            else None
        )
        if expected_prev is not None and line.entry["prev"] != expected_prev:
            report.problems.append(
                f"entry {seq} (line {line.number}) does not chain to entry {seq - 1}"
            )
    report.last_seq = max(good, default=0)
    return report


def _check_head(
    head_file: Path,
    audit_pk: bytes,
    key_id: str | None,
    good: dict[int, _Line],
    report: AuditReport,
) -> int | None:
    if not head_file.exists():
        if good:
            report.problems.append(
                f"{head_file.name} is missing: entries removed from the end cannot be ruled out"
            )
        return None
    try:
        head = json.loads(head_file.read_text(encoding="utf-8"))
        body = {"seq": int(head["seq"]), "hash": str(head["hash"])}
        signature = from_hex(head["signature"], "head signature", AuditError)
        valid = head.get("signer") == key_id and backend_for(
            "ML-DSA-65", prefer_seeded=False
        ).verify("ML-DSA-65", audit_pk, HEAD_DOMAIN + canonical_json(body), signature)
    except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError, AuditError):
        valid = False
    if not valid:
        report.problems.append(f"{head_file.name} is damaged or not signed by the audit key")
        return None
    seq = body["seq"]
    line = good.get(seq)
    if line is not None and line.entry is not None and line.entry["hash"] != body["hash"]:
        report.problems.append(
            f"entry {seq} (line {line.number}) is not the entry the signed head names"
        )
    return seq


def find_entry(path: Path, seq: int) -> dict[str, Any] | None:
    """The entry with sequence number ``seq`` (first match), or None."""
    try:
        with open(path, "rb") as handle:
            for raw in handle:
                try:
                    entry = json.loads(raw)
                except (ValueError, RecursionError):
                    continue
                if isinstance(entry, dict) and entry.get("seq") == seq:
                    return entry
    except FileNotFoundError:
        raise AuditError(f"{path} not found") from None
    except OSError as exc:
        raise AuditError(f"{path}: {exc.strerror}") from None
    return None


def entry_is_authentic(entry: dict[str, Any], identity: IdentityPublic) -> str | None:
    """None if ``entry`` is intact and signed by the identity's audit key, else why not."""
    if identity.audit_key_problems():
        return "the identity's audit-key certificate does not verify"
    assert identity.audit_key is not None
    line = _parse_line(
        0, canonical_json(entry), identity.audit_key.public_key, identity.audit_key.key_id
    )
    return None if line.authentic else line.why


# -- process-wide default log --------------------------------------------------
def keys_dir() -> Path:
    """The keys/ folder: $CHAOS_HOME/keys, else ./keys."""
    return data_dir() / "keys"


def default_log_path() -> Path:
    """logs/audit.jsonl under $CHAOS_HOME (or the current directory)."""
    return logs_dir() / "audit.jsonl"


def record_identity_created(identity: HostIdentity, path: Path | None = None) -> None:
    """Write the `identity_created` entry (fingerprint, algorithms, audit key) and sign it."""
    log = AuditLog(path or default_log_path(), identity.audit_signer)
    log.record(
        "identity_created",
        identity=identity.fingerprint,
        algorithms=[a for a, _ in identity.public.keys],
        audit_key=identity.public.audit_key.key_id if identity.public.audit_key else None,
    )
    log.sign_pending()


_default_lock = threading.Lock()
_default_logs: dict[tuple[Path, Path], AuditLog] = {}


def default_audit_log() -> AuditLog:
    """The AuditLog for logs/audit.jsonl, signing with keys/identity/audit-key.json when present."""
    key = (default_log_path(), keys_dir())
    with _default_lock:
        log = _default_logs.get(key)
        if log is None:
            log = _default_logs[key] = AuditLog(key[0])
        if log.signer is None:
            try:
                log.signer = load_audit_signer(key[1])
            except IdentityError:
                log.signer = None
        return log


def record(event: str, **fields: Any) -> dict[str, Any]:
    """Append ``event`` to the host's audit trail (logs/audit.jsonl); never pass secrets."""
    return default_audit_log().record(event, **fields)


_ENGINE_EVENTS = {"quarantined": "source_quarantined", "failed": "source_failed"}


def attach_to_engine(engine: Any, log: AuditLog | None = None) -> None:
    """Record an engine's quarantine, failure and clearing events in the audit trail."""
    target = log

    def listener(event: str, fields: dict[str, Any]) -> None:
        audit = target or default_audit_log()
        try:
            if event == "source_state" and fields.get("state") in _ENGINE_EVENTS:
                audit.record(
                    _ENGINE_EVENTS[fields["state"]],
                    source=fields.get("source"),
                    previous=fields.get("previous"),
                    reason=fields.get("reason", ""),
                )
            elif event == "health_cleared":
                audit.record("source_cleared", source=fields.get("source"))
        except (AuditError, UsageError, OSError) as exc:
            # The audit trail must not take a source down with it: say so and carry on.
            print(f"chaos-host: warning: audit trail not written: {exc}", file=sys.stderr)

    engine.add_listener(listener)
