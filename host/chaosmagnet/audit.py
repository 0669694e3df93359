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
import errno
import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosmagnet.errors import AuditError, AuditHeadError, IdentityError, UsageError
from chaosmagnet.eventlog import data_dir, logs_dir
from chaosmagnet.minting.canonical import canonical_json, digest_hex, file_json, from_hex
from chaosmagnet.minting.identity import (
    IDENTITY_FILE,
    HostIdentity,
    IdentityPublic,
    SecretKeyHandle,
    identity_dir,
    load_audit_signer,
    remove_identity_files,
    utc_now,
)
from chaosmagnet.pqc import backend_for
from chaosmagnet.securefile import (
    PRIVATE_FILE_MODE,
    check_writable_dir,
    ensure_private_dir,
    fsync_dir,
    remove_stale_temporaries,
    write_boundary,
    write_private_file,
)

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


def _remove_written(paths: list[Path]) -> None:
    """Remove files written for an entry that was not appended (best effort)."""
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)
            fsync_dir(path.parent)


@dataclass
class PendingEntry:
    """The next audit entry, not yet appended, and the files written for it."""

    entry: dict[str, Any]
    written: list[Path] = field(default_factory=list)


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
            try:
                fd = os.open(
                    lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE_MODE
                )
            except OSError as exc:
                raise AuditError(f"cannot lock {lock_path}: {exc.strerror}") from None
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except OSError as exc:
                    raise AuditError(f"cannot lock {lock_path}: {exc.strerror}") from None
                yield
            finally:
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def _sign(self, entry_hash_hex: str) -> tuple[str | None, str | None]:
        if self.signer is None:
            return None, None
        value = self.signer.sign(SIGNATURE_DOMAIN + bytes.fromhex(entry_hash_hex))["value"]
        return digest_hex(self.signer.public_key)[:16], value

    def _last(self) -> dict[str, Any] | None:
        """The last entry in the file (read from the end), or None if the log is empty.

        AuditError when the file ends in a torn entry (no final newline) or its
        last line is damaged: appending after either would corrupt the chain.
        """
        try:
            with open(self.path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                chunk = min(size, 1 << 14)  # an entry is about 7 KiB (its ML-DSA-65 signature)
                while True:  # only as much of the end as the last line needs (1 MiB at most)
                    handle.seek(size - chunk)
                    tail = handle.read(chunk)
                    if chunk >= min(size, 1 << 20) or tail.rstrip(b"\n").count(b"\n") >= 1:
                        break
                    chunk = min(chunk * 4, size, 1 << 20)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuditError(f"{self.path}: {exc.strerror}") from None
        if tail and not tail.endswith(b"\n"):
            torn = len(tail) - (tail.rfind(b"\n") + 1)
            raise AuditError(
                f"{self.path} ends in a torn entry ({torn} bytes without a final newline); "
                "run `chaos-host audit repair`"
            )
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

    def _next_entry(self, event: str, clean: dict[str, Any]) -> dict[str, Any]:
        last = self._last()
        seq = 1 if last is None else int(last["seq"]) + 1
        prev = GENESIS if last is None else str(last["hash"])
        stamp = utc_now()
        digest = entry_hash(seq, stamp, event, clean, prev)
        signer, signature = self._sign(digest)
        return {
            "seq": seq,
            "time": stamp,
            "event": event,
            "fields": clean,
            "prev": prev,
            "hash": digest,
            "signer": signer,
            "signature": signature,
        }

    def _append(self, entry: dict[str, Any]) -> None:
        """Append one whole line in one write on an O_APPEND file, fsynced; all or nothing.

        A short or failed write (a full disk) is cut back to the previous size,
        so the log never keeps a torn entry that this process could undo.
        """
        data = canonical_json(entry) + b"\n"
        try:
            fd = os.open(
                self.path,
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                PRIVATE_FILE_MODE,
            )
        except OSError as exc:
            raise AuditError(f"cannot append to {self.path}: {exc.strerror}") from None
        try:
            size = os.fstat(fd).st_size
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                os.fsync(fd)
            except OSError as exc:
                try:
                    os.ftruncate(fd, size)
                    os.fsync(fd)
                    outcome = "nothing was appended"
                except OSError:
                    outcome = "the log may end in a torn entry: run `chaos-host audit repair`"
                raise AuditError(
                    f"cannot append to {self.path}: {exc.strerror}; {outcome}"
                ) from None
        finally:
            os.close(fd)
        write_boundary("audit entry appended")

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one entry for ``event`` with ``fields``; returns the entry (seq, hash, ...)."""
        clean = _clean(fields, event)
        with self._locked():
            entry = self._next_entry(event, clean)
            self._append(entry)
            self._update_head(entry)
        return entry

    @contextlib.contextmanager
    def reserve(self, event: str, **fields: Any) -> Iterator[PendingEntry]:
        """Hold the lock, build the next entry, let the caller write its file(s), then append.

        This is the write order that cannot lie: whatever the entry records
        (a bundle) is written and fsynced before the entry exists.  Files the
        caller lists in ``pending.written`` are removed again if the entry
        cannot be appended, so a failure leaves neither.
        """
        clean = _clean(fields, event)
        with self._locked():
            pending = PendingEntry(self._next_entry(event, clean))
            yield pending
            try:
                self._append(pending.entry)
            except AuditError as exc:
                _remove_written(pending.written)
                removed = ", ".join(p.name for p in pending.written)
                raise AuditError(f"{exc}{f' ({removed} removed again)' if removed else ''}") from None
            self._update_head(pending.entry)

    def check_writable(self) -> None:
        """Before anything is made: AuditError/UsageError unless entries can be appended here.

        Checks that logs/ exists (creating it 0700) and takes files, that the
        log, its head and its lock are files (not folders), and that the log
        does not end in a torn or damaged entry.
        """
        with self._locked():
            for path in (self.path, self.head_path):
                if path.is_dir():
                    raise AuditError(f"{path} is a folder, not a file")
            check_writable_dir(self.path.parent)
            self._last()

    def _update_head(self, entry: dict[str, Any]) -> None:
        try:
            self._write_head(entry["seq"], entry["hash"])
        except UsageError as exc:
            raise AuditHeadError(
                f"entry {entry['seq']} was recorded, but {exc}; "
                "`chaos-host audit repair` rewrites the head"
            ) from None

    def _write_head(self, seq: int, digest: str) -> None:
        """Rewrite the signed head.  A replaced head is written behind: atomically (temporary
        file, rename), but neither it nor the folder is fsynced, since its entry already is
        (docs/minting.md, "Write order").  A kill leaves the old head or the new one; a power
        loss may leave the previous head, which verify accepts (a head behind the log), or,
        on a file system that does not order a replacing rename after the data (ext4 does),
        a damaged one, which verify names and `audit repair` rewrites.  A first head is
        fsynced with its folder."""
        if self.signer is None:
            return
        body = {"seq": seq, "hash": digest}
        value = self.signer.sign(HEAD_DOMAIN + canonical_json(body))["value"]
        head = {**body, "signer": digest_hex(self.signer.public_key)[:16], "signature": value}
        replacing = self.head_path.is_file()
        write_private_file(
            self.head_path, file_json(head), sync_folder=not replacing, sync_file=not replacing
        )

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
            self._update_head(entries[-1])
        return len(pending)


# -- verification ------------------------------------------------------------
@dataclass
class AuditReport:
    """Result of verifying an audit log: ok when ``problems`` is empty."""

    entries: int = 0
    signed: int = 0
    last_seq: int = 0
    problems: list[str] = field(default_factory=list)
    repairable: list[str] = field(default_factory=list)  # the problems `audit repair` fixes
    torn_tail: int = 0  # bytes after the last newline
    head_state: str = "ok"  # ok, missing or damaged
    authentic: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)

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
    path: Path,
    identity: IdentityPublic,
    *,
    head_path: Path | None = None,
    keys_dir: Path | None = None,
) -> AuditReport:
    """Check every entry, the chain and the head; with ``keys_dir`` also the files.

    Names each entry that was changed, removed, reordered or inserted, and a
    torn last line.  With ``keys_dir`` (the folder holding identity/ and the
    bundles) it also names every mint entry whose bundle is missing, every
    bundle of this identity without its mint entry, and an identity without
    its identity_created entry (a missing log then counts as empty).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if keys_dir is None:
            raise AuditError(f"{path} not found") from None
        raw = b""
    except OSError as exc:
        raise AuditError(f"{path}: {exc.strerror}") from None
    report = _verify_bytes(raw, identity, head_path or path.with_name(path.stem + ".head.json"))
    if keys_dir is not None:
        for finding in file_findings(path, identity, Path(keys_dir), report.authentic):
            report.problems.append(finding.message)
            report.repairable.append(finding.message)
    return report


def _verify_bytes(raw: bytes, identity: IdentityPublic, head_file: Path) -> AuditReport:
    report = AuditReport()
    cert_problems = identity.audit_key_problems()
    report.problems += cert_problems
    audit_pk = key_id = None
    if not cert_problems and identity.audit_key is not None:
        audit_pk = identity.audit_key.public_key
        key_id = identity.audit_key.key_id
    raw_lines = raw.split(b"\n")
    torn: bytes | None = None
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    elif raw_lines:
        torn = raw_lines[-1]  # no final newline: a write that did not finish, or an edit
    lines = [_parse_line(i, line, audit_pk, key_id) for i, line in enumerate(raw_lines, 1)]
    if torn is not None:
        last = lines[-1]
        if last.authentic:
            message = (
                f"entry {last.seq} (line {last.number}) has no final newline: "
                "run `chaos-host audit repair`"
            )
        else:
            lines.pop()
            message = (
                f"line {last.number} is a torn entry ({len(torn)} bytes without a final "
                "newline): run `chaos-host audit repair`"
            )
        report.problems.append(message)
        report.repairable.append(message)
        report.torn_tail = len(torn)
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
    report.authentic = {seq: line.entry for seq, line in good.items() if line.entry is not None}
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
            message = (
                f"{head_file.name} is missing: entries removed from the end cannot be ruled out"
            )
            report.problems.append(message)
            report.repairable.append(message)
            report.head_state = "missing"
        return None
    try:
        head = json.loads(head_file.read_text(encoding="utf-8"))
        body: dict[str, Any] = {"seq": int(head["seq"]), "hash": str(head["hash"])}
        signature = from_hex(head["signature"], "head signature", AuditError)
        valid = head.get("signer") == key_id and backend_for(
            "ML-DSA-65", prefer_seeded=False
        ).verify("ML-DSA-65", audit_pk, HEAD_DOMAIN + canonical_json(body), signature)
    except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError, AuditError):
        valid = False
    if not valid:
        message = f"{head_file.name} is damaged or not signed by the audit key"
        report.problems.append(message)
        report.repairable.append(message)
        report.head_state = "damaged"
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


# -- the files the trail records -------------------------------------------------
@dataclass(frozen=True)
class FileFinding:
    """A disagreement between the audit trail and the files it records (``kind`` to branch on)."""

    kind: str  # bundle_missing, bundle_unrecorded, identity_unrecorded, identity_missing
    message: str
    path: Path
    subject: str  # bundle id or identity fingerprint
    seq: int | None = None


def home_of(log_path: Path) -> Path:
    """The folder that holds logs/ (and usually keys/): relative file names in entries start here."""
    return Path(os.path.abspath(log_path)).parent.parent


def recorded_file(log_path: Path, file: Path) -> str:
    """How an entry names ``file``: relative to the home when inside it, else absolute."""
    home, absolute = home_of(log_path), Path(os.path.abspath(file))
    try:
        return str(absolute.relative_to(home))
    except ValueError:
        return str(absolute)


def _bundle_location(log_path: Path, keys: Path, fields: dict[str, Any]) -> Path:
    named = fields.get("file")
    if isinstance(named, str) and named:
        path = Path(named)
        return path if path.is_absolute() else home_of(log_path) / path
    return keys / f"bundle-{fields['bundle_id']}.json"


def _bundle_host(path: Path) -> str | None:
    try:
        doc = json.loads(path.read_bytes())
        host = doc["host"]["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    return host if isinstance(host, str) else None


def _acknowledged(authentic: dict[int, dict[str, Any]]) -> set[tuple[str, str]]:
    """(action, subject) pairs that signed `repaired` entries already account for."""
    out: set[tuple[str, str]] = set()
    for entry in authentic.values():
        actions = entry["fields"].get("actions") if entry["event"] == "repaired" else None
        for action in actions if isinstance(actions, list) else []:
            if isinstance(action, dict):
                out.add((str(action.get("action")), str(action.get("subject"))))
    return out


def file_findings(
    log_path: Path, identity: IdentityPublic, keys: Path, authentic: dict[int, dict[str, Any]]
) -> list[FileFinding]:
    """Where the signed entries and the files under ``keys`` disagree (see verify_audit_log)."""
    acknowledged = _acknowledged(authentic)
    findings: list[FileFinding] = []
    minted: dict[str, int] = {}
    folders = {Path(keys)}
    for seq, entry in sorted(authentic.items()):
        fields = entry["fields"]
        if entry["event"] != "mint" or not isinstance(fields, dict):
            continue
        if not isinstance(fields.get("bundle_id"), str):
            continue
        bundle_id = fields["bundle_id"]
        minted[bundle_id] = seq
        location = _bundle_location(log_path, Path(keys), fields)
        folders.add(location.parent)
        if not location.exists() and ("bundle_missing", bundle_id) not in acknowledged:
            findings.append(
                FileFinding(
                    "bundle_missing",
                    f"entry {seq} (mint) names {location}, which is missing",
                    location,
                    bundle_id,
                    seq,
                )
            )
    for folder in sorted(folders):
        try:
            candidates = sorted(folder.glob("bundle-*.json"))
        except OSError:
            continue
        for path in candidates:
            bundle_id = path.name[len("bundle-") : -len(".json")]
            if bundle_id in minted or not path.is_file():
                continue
            host = _bundle_host(path)
            if host is not None and host != identity.fingerprint:
                continue  # another host's bundle, kept here by someone: not ours to account for
            findings.append(
                FileFinding(
                    "bundle_unrecorded",
                    f"{path} has no mint entry (a mint stopped before its entry was written?)",
                    path,
                    bundle_id,
                )
            )
    identity_file = identity_dir(Path(keys)) / IDENTITY_FILE
    fingerprint = identity.fingerprint
    recorded = sorted(
        seq
        for seq, entry in authentic.items()
        if entry["event"] == "identity_created"
        and isinstance(entry["fields"], dict)
        and entry["fields"].get("identity") == fingerprint
    )
    if identity_file.exists():
        if not recorded and _identity_file_fingerprint(identity_file) in (fingerprint, None):
            findings.append(
                FileFinding(
                    "identity_unrecorded",
                    f"the host identity {fingerprint[:16]} in {identity_file.parent} has no "
                    "identity_created entry",
                    identity_file,
                    fingerprint,
                )
            )
    elif recorded and ("identity_missing", fingerprint) not in acknowledged:
        findings.append(
            FileFinding(
                "identity_missing",
                f"entry {recorded[0]} (identity_created) records identity {fingerprint[:16]}, "
                f"but {identity_file} is missing",
                identity_file,
                fingerprint,
                recorded[0],
            )
        )
    return findings


def _identity_file_fingerprint(path: Path) -> str | None:
    try:
        value = json.loads(path.read_bytes()).get("fingerprint")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def identity_fields(public: IdentityPublic) -> dict[str, Any]:
    """What the identity_created entry records: fingerprint, algorithms, audit key id."""
    return {
        "identity": public.fingerprint,
        "algorithms": [a for a, _ in public.keys],
        "audit_key": public.audit_key.key_id if public.audit_key else None,
    }


def repair_audit_log(log: AuditLog, identity: IdentityPublic, keys: Path) -> list[dict[str, Any]]:
    """Bring the trail and its files back into agreement; returns the actions, [] if none.

    A torn last line is moved aside into ``audit.torn-<UTC time>.jsonl`` (or,
    when it is a whole signed entry that only lacks its newline, completed);
    bundles without a mint entry are moved into ``unrecorded/`` beside them;
    an identity without its identity_created entry gets one; a missing or
    damaged head is rewritten; stale temporary files are removed.  What was
    done is recorded in one signed ``repaired`` entry.  A complete signed
    entry is never rewritten, and nothing is touched while the log has
    problems repair cannot account for (changed, removed, unsigned entries).
    """
    if log.signer is None:
        raise AuditError("no audit key to sign the repair with (keys/identity/audit-key.json)")
    if identity.audit_key is None or log.signer.public_key != identity.audit_key.public_key:
        raise AuditError("the audit key is not the one this identity certifies; not repairing")
    head_file = log.head_path
    with log._locked():
        try:
            raw = log.path.read_bytes()
        except FileNotFoundError:
            raw = b""
        except OSError as exc:
            raise AuditError(f"{log.path}: {exc.strerror}") from None
        cut = raw.rfind(b"\n") + 1 if raw and not raw.endswith(b"\n") else len(raw)
        report = _verify_bytes(raw, identity, head_file)
        blocking = [p for p in report.problems if p not in report.repairable]
        if blocking:
            raise AuditError(
                f"{log.path} has problems repair does not touch ({blocking[0]}"
                f"{f' and {len(blocking) - 1} more' if len(blocking) > 1 else ''}); "
                "nothing was repaired: see `chaos-host audit verify`"
            )
        actions: list[dict[str, Any]] = []
        torn = raw[cut:]
        if torn:
            actions.append(_repair_tail(log, torn, cut, report, identity))
        if report.head_state != "ok":
            actions.append(
                {"action": "head_rewritten", "subject": head_file.name, "was": report.head_state}
            )
        late_identity = False
        folders = [Path(keys), identity_dir(Path(keys)), log.path.parent]
        for finding in file_findings(log.path, identity, Path(keys), report.authentic):
            if finding.kind == "bundle_unrecorded":
                actions.append(_move_bundle_aside(log.path, finding))
            elif finding.kind == "identity_unrecorded":
                late_identity = True
                actions.append({"action": "identity_recorded", "subject": finding.subject})
            else:  # a recorded file that is gone: nothing to restore, so say so, signed
                actions.append(
                    {
                        "action": finding.kind,
                        "subject": finding.subject,
                        "entry": finding.seq,
                        "file": recorded_file(log.path, finding.path),
                    }
                )
            folders.append(finding.path.parent)
        removed = remove_stale_temporaries(sorted(set(folders)))
        if removed:
            actions.append(
                {
                    "action": "temporary_files_removed",
                    "subject": f"{len(removed)} file(s)",
                    "files": [recorded_file(log.path, p) for p in removed],
                }
            )
        if not actions:
            return []
        if late_identity:
            entry = log._next_entry(
                "identity_created",
                _clean({**identity_fields(identity), "recorded_by": "audit repair"}, "repair"),
            )
            log._append(entry)
        entry = log._next_entry("repaired", _clean({"actions": actions}, "repaired"))
        log._append(entry)
        log._update_head(entry)
    return actions


def _repair_tail(
    log: AuditLog, torn: bytes, cut: int, report: AuditReport, identity: IdentityPublic
) -> dict[str, Any]:
    """Complete a whole signed last entry that lacks its newline, else move the torn bytes aside."""
    audit_key = identity.audit_key
    assert audit_key is not None
    line = _parse_line(0, torn, audit_key.public_key, audit_key.key_id)
    # A whole signed entry that verify already counted as the last link of the chain.
    fits = (
        line.authentic
        and line.entry is not None
        and line.seq == report.last_seq
        and report.authentic.get(report.last_seq, {}).get("hash") == line.entry["hash"]
    )
    try:
        if fits:
            assert line.entry is not None
            fd = os.open(log.path, os.O_WRONLY | os.O_APPEND)
            try:
                if os.write(fd, b"\n") != 1:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                os.fsync(fd)
            finally:
                os.close(fd)
            return {"action": "newline_restored", "subject": f"entry {line.seq}"}
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = log.path.with_name(f"{log.path.stem}.torn-{stamp}.jsonl")
        number = 1
        while aside.exists():
            number += 1
            aside = log.path.with_name(f"{log.path.stem}.torn-{stamp}-{number}.jsonl")
        write_private_file(aside, torn, overwrite=False)
        fd = os.open(log.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, cut)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise AuditError(f"cannot repair {log.path}: {exc.strerror}") from None
    write_boundary("torn tail moved aside")
    return {
        "action": "torn_tail_moved_aside",
        "subject": aside.name,
        "bytes": len(torn),
        "sha3_256": digest_hex(torn),
    }


def _move_bundle_aside(log_path: Path, finding: FileFinding) -> dict[str, Any]:
    folder = ensure_private_dir(finding.path.parent / "unrecorded")
    target = folder / finding.path.name
    if target.exists():
        target = folder / f"{finding.path.stem}.{os.urandom(4).hex()}.json"
    try:
        os.rename(finding.path, target)
    except OSError as exc:
        raise AuditError(f"cannot move {finding.path} aside: {exc.strerror}") from None
    fsync_dir(folder)
    fsync_dir(finding.path.parent)
    write_boundary("unrecorded bundle moved aside")
    return {
        "action": "bundle_moved_aside",
        "subject": finding.subject,
        "from": recorded_file(log_path, finding.path),
        "to": recorded_file(log_path, target),
    }


# -- process-wide default log --------------------------------------------------
def keys_dir() -> Path:
    """The keys/ folder: $CHAOS_HOME/keys, else ./keys."""
    return data_dir() / "keys"


def default_log_path() -> Path:
    """logs/audit.jsonl under $CHAOS_HOME (or the current directory)."""
    return logs_dir() / "audit.jsonl"


def record_identity_created(
    identity: HostIdentity, path: Path | None = None, *, keys: Path | None = None
) -> None:
    """Write the `identity_created` entry (fingerprint, algorithms, audit key) and sign it.

    With ``keys`` (the folder the identity was just created in): when the
    entry cannot be written, the new identity's files are removed again, so
    no identity exists without its entry.
    """
    log = AuditLog(path or default_log_path(), identity.audit_signer)
    try:
        log.record("identity_created", **identity_fields(identity.public))
    except AuditError as exc:
        if keys is None or isinstance(exc, AuditHeadError):
            raise
        remove_identity_files(keys)
        raise AuditError(f"{exc}; the new identity was removed again") from None
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
