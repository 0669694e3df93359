"""The audit trail after torn writes and lost files (issue 16, D1, D2, D5, D10).

Appends are all or nothing; a torn tail (a partial line, a missing final
newline) is found before anything is appended and by `audit verify`;
`audit repair` moves it aside with a signed `repaired` entry and never
rewrites a complete entry; verify names every mint entry whose bundle is
missing and every bundle or identity without its entry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chaosmagnet import audit as audit_module
from chaosmagnet.audit import (
    AuditLog,
    record_identity_created,
    repair_audit_log,
    verify_audit_log,
)
from chaosmagnet.errors import AuditError
from chaosmagnet.minting.canonical import digest_hex
from chaosmagnet.minting.identity import identity_exists
from chaosmagnet.securefile import remove_stale_temporaries, stale_temporaries
from mint_helpers import Minted, make_minted


@pytest.fixture
def minted(tmp_path: Path) -> Minted:
    """A home (keys/, logs/) with an identity, its entry and one bundle."""
    return make_minted(tmp_path)


def _report(m: Minted):
    return verify_audit_log(m.log, m.public, keys_dir=m.keys)


def _entries(m: Minted) -> list[dict]:
    return [json.loads(line) for line in m.log.read_bytes().splitlines()]


def test_a_minted_home_is_consistent(minted: Minted) -> None:
    report = _report(minted)
    assert report.ok, report.problems
    entry = _entries(minted)[-1]
    assert entry["event"] == "mint" and entry["fields"]["file"] == f"keys/{minted.bundle.path.name}"


def test_missing_final_newline_is_reported_refused_and_restored(minted: Minted) -> None:
    """D5: the next append would glue itself onto the last line."""
    raw = minted.log.read_bytes()
    minted.log.write_bytes(raw[:-1])
    assert _report(minted).problems == [
        "entry 2 (line 2) has no final newline: run `chaos-host audit repair`"
    ]
    with pytest.raises(AuditError, match="torn entry .*audit repair"):
        minted.audit.record("config_change", key="x")
    assert minted.log.read_bytes() == raw[:-1]  # nothing appended
    actions = repair_audit_log(minted.audit, minted.public, minted.keys)
    assert actions == [{"action": "newline_restored", "subject": "entry 2"}]
    assert minted.log.read_bytes().startswith(raw)  # completed, not rewritten
    assert _report(minted).ok
    minted.audit.record("config_change", key="x")
    assert _report(minted).ok


def test_torn_tail_is_moved_aside_with_a_signed_record(minted: Minted) -> None:
    """D2: a partial line (a full disk during an append) no longer locks minting for good."""
    raw = minted.log.read_bytes()
    torn = raw.splitlines(keepends=True)[-1][:1068]
    minted.log.write_bytes(raw + torn)
    problems = _report(minted).problems
    assert problems == [
        "line 3 is a torn entry (1068 bytes without a final newline): run `chaos-host audit repair`"
    ]
    with pytest.raises(AuditError, match="ends in a torn entry \\(1068 bytes"):
        minted.audit.record("config_change", key="x")
    actions = repair_audit_log(minted.audit, minted.public, minted.keys)
    (action,) = actions
    assert action["action"] == "torn_tail_moved_aside" and action["bytes"] == 1068
    assert action["sha3_256"] == digest_hex(torn)
    aside = minted.log.with_name(action["subject"])
    assert aside.read_bytes() == torn and aside.name.startswith("audit.torn-")
    assert oct(aside.stat().st_mode & 0o777) == "0o600"
    after = minted.log.read_bytes()
    assert after.startswith(raw)  # every complete entry kept byte for byte
    last = _entries(minted)[-1]
    assert last["event"] == "repaired" and last["fields"]["actions"] == actions
    assert last["seq"] == 3 and last["signature"]
    assert _report(minted).ok
    minted.audit.record("config_change", key="after the repair")
    assert _report(minted).ok


def test_repair_never_touches_a_tampered_log(minted: Minted) -> None:
    lines = minted.log.read_bytes().splitlines(keepends=True)
    changed = json.loads(lines[0])
    changed["fields"]["identity"] = "f" * 64
    lines[0] = json.dumps(changed, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    minted.log.write_bytes(b"".join(lines) + b"torn")
    before = minted.log.read_bytes()
    with pytest.raises(AuditError, match="problems repair does not touch .*entry 1"):
        repair_audit_log(minted.audit, minted.public, minted.keys)
    assert minted.log.read_bytes() == before


def test_append_is_all_or_nothing(minted: Minted, monkeypatch: pytest.MonkeyPatch) -> None:
    """A short write (what a full disk gives) is cut back: no torn entry is left behind."""
    before = minted.log.read_bytes()
    real_write = os.write

    def short_write(fd: int, data: bytes) -> int:
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(audit_module.os, "write", short_write)
    with pytest.raises(AuditError, match="No space left on device; nothing was appended"):
        minted.audit.record("config_change", key="x")
    monkeypatch.undo()
    assert minted.log.read_bytes() == before
    assert _report(minted).ok


def test_a_bundle_without_its_entry_is_named_and_moved_aside(minted: Minted) -> None:
    """D1: what a kill between the bundle and its entry leaves."""
    orphan = minted.keys / "bundle-00000000-0000-4000-8000-000000000000.json"
    orphan.write_bytes(minted.bundle.path.read_bytes())
    assert _report(minted).problems == [
        f"{orphan} has no mint entry (a mint stopped before its entry was written?)"
    ]
    (action,) = repair_audit_log(minted.audit, minted.public, minted.keys)
    assert action == {
        "action": "bundle_moved_aside",
        "subject": "00000000-0000-4000-8000-000000000000",
        "from": f"keys/{orphan.name}",
        "to": f"keys/unrecorded/{orphan.name}",
    }
    assert not orphan.exists() and (minted.keys / "unrecorded" / orphan.name).exists()
    assert _report(minted).ok


def test_an_entry_whose_bundle_is_missing_is_named_and_recorded(minted: Minted) -> None:
    """D1 in old logs (entry first, bundle never written), or a bundle deleted since."""
    minted.bundle.path.unlink()
    assert _report(minted).problems == [
        f"entry 2 (mint) names {minted.bundle.path}, which is missing"
    ]
    (action,) = repair_audit_log(minted.audit, minted.public, minted.keys)
    assert action["action"] == "bundle_missing" and action["entry"] == 2
    assert action["subject"] == minted.bundle.bundle_id
    assert _report(minted).ok


def test_bundles_of_another_host_are_not_ours_to_account_for(minted: Minted, tmp_path: Path) -> None:
    other = make_minted(tmp_path / "other")
    (minted.keys / other.bundle.path.name).write_bytes(other.bundle.path.read_bytes())
    assert _report(minted).ok


def test_an_identity_without_its_entry(minted: Minted) -> None:
    """D10: killed after identity.json, before identity_created."""
    lines = minted.log.read_bytes().splitlines(keepends=True)
    log = AuditLog(minted.root / "logs2" / "audit.jsonl", minted.identity.audit_signer)
    log.record("config_change", key="first")
    assert verify_audit_log(log.path, minted.public, keys_dir=minted.keys).problems[-1] == (
        f"the host identity {minted.public.fingerprint[:16]} in {minted.keys / 'identity'} "
        "has no identity_created entry"
    )
    assert lines  # the original log is untouched
    actions = repair_audit_log(log, minted.public, minted.keys)
    assert {"action": "identity_recorded", "subject": minted.public.fingerprint} in actions
    events = [json.loads(line)["event"] for line in log.path.read_bytes().splitlines()]
    assert events[-2:] == ["identity_created", "repaired"]


def test_an_identity_that_cannot_be_recorded_is_removed_again(
    minted: Minted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """D10: a full disk during the identity_created append leaves no working identity behind."""
    log_path = minted.root / "elsewhere" / "audit.jsonl"

    def full_disk(self: AuditLog, entry: dict) -> None:
        raise AuditError(f"cannot append to {self.path}: No space left on device")

    monkeypatch.setattr(AuditLog, "_append", full_disk)
    with pytest.raises(AuditError, match="the new identity was removed again"):
        record_identity_created(minted.identity, log_path, keys=minted.keys)
    assert not identity_exists(minted.keys)
    assert not list((minted.keys / "identity").iterdir())


def test_missing_head_is_rewritten_by_repair(minted: Minted) -> None:
    minted.audit.head_path.unlink()
    assert any("audit.head.json is missing" in p for p in _report(minted).problems)
    (action,) = repair_audit_log(minted.audit, minted.public, minted.keys)
    assert action == {"action": "head_rewritten", "subject": "audit.head.json", "was": "missing"}
    assert _report(minted).ok


def test_nothing_to_repair_writes_nothing(minted: Minted) -> None:
    before = minted.log.read_bytes()
    assert repair_audit_log(minted.audit, minted.public, minted.keys) == []
    assert minted.log.read_bytes() == before


def test_stale_temporaries_are_found_and_removed(minted: Minted) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    stale = minted.keys / f".bundle-x.json.{dead_pid}.0123abcd.tmp"
    stale.write_bytes(b"{}")
    ours = minted.keys / f".bundle-y.json.{os.getpid()}.0123abcd.tmp"
    ours.write_bytes(b"{}")
    assert stale_temporaries(minted.keys) == [stale]
    assert remove_stale_temporaries([minted.keys]) == [stale]
    assert not stale.exists() and ours.exists()
    stale.write_bytes(b"{}")
    (action,) = repair_audit_log(minted.audit, minted.public, minted.keys)
    assert action["action"] == "temporary_files_removed" and action["files"] == [f"keys/{stale.name}"]


def test_a_folder_where_the_lock_belongs_is_an_audit_error(minted: Minted) -> None:
    """D6: the lock file's os.open was not wrapped."""
    (minted.log.parent / "audit.jsonl.lock").unlink()
    (minted.log.parent / "audit.jsonl.lock").mkdir()
    with pytest.raises(AuditError, match="cannot lock .*audit.jsonl.lock: Is a directory"):
        minted.audit.record("config_change", key="x")
    with pytest.raises(AuditError, match="cannot lock"):
        minted.audit.check_writable()
