"""The signed audit trail: intact logs verify; changed, removed, reordered and inserted
entries are detected and named; concurrent writers keep the chain."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from chaosmagnet.audit import AuditLog, attach_to_engine, entry_hash, verify_audit_log
from chaosmagnet.errors import AuditError, ChaosError
from chaosmagnet.minting.canonical import canonical_json
from mint_helpers import make_minted


@pytest.fixture(scope="module")
def minted(tmp_path_factory: pytest.TempPathFactory):
    return make_minted(tmp_path_factory.mktemp("audit"))


@pytest.fixture
def log(minted, tmp_path: Path) -> AuditLog:
    """A fresh log with six signed entries."""
    audit = AuditLog(tmp_path / "logs" / "audit.jsonl", minted.identity.audit_signer)
    for i in range(1, 7):
        audit.record("config_change", key=f"k{i}", value=i, ratio=i / 3)
    return audit


def _lines(audit: AuditLog) -> list[str]:
    return audit.path.read_text().splitlines(keepends=True)


def _write(audit: AuditLog, lines: list[str]) -> None:
    audit.path.write_text("".join(lines))


def _problems(audit: AuditLog, minted) -> list[str]:
    return verify_audit_log(audit.path, minted.public).problems


def test_intact_log_verifies(log: AuditLog, minted) -> None:
    report = verify_audit_log(log.path, minted.public)
    assert report.ok, report.problems
    assert report.entries == report.signed == report.last_seq == 6
    first = json.loads(_lines(log)[0])
    assert first["prev"] == "0" * 64 and first["fields"]["ratio"] == 0.333


def test_changed_entry_keeping_its_hash(log: AuditLog, minted) -> None:
    lines = _lines(log)
    entry = json.loads(lines[2])
    entry["fields"]["value"] = 999
    lines[2] = canonical_json(entry).decode() + "\n"
    _write(log, lines)
    assert _problems(log, minted) == [
        "entry 3 (line 3) changed: its hash does not match its content"
    ]


def test_changed_entry_with_recomputed_hash(log: AuditLog, minted) -> None:
    lines = _lines(log)
    entry = json.loads(lines[3])
    entry["event"] = "nothing_happened"
    entry["hash"] = entry_hash(
        entry["seq"], entry["time"], entry["event"], entry["fields"], entry["prev"]
    )
    lines[3] = canonical_json(entry).decode() + "\n"
    _write(log, lines)
    problems = _problems(log, minted)
    assert "entry 4 (line 4) changed: its signature does not verify" in problems
    assert (
        "entry 5 (line 5) does not chain to entry 4" not in problems
    )  # entry 4 is not trusted at all


def test_changed_whitespace_is_detected(log: AuditLog, minted) -> None:
    lines = _lines(log)
    lines[0] = lines[0].replace('"seq":1', '"seq": 1')
    _write(log, lines)
    assert _problems(log, minted) == ["entry 1 (line 1) changed: not in canonical form"]


def test_garbled_entry(log: AuditLog, minted) -> None:
    lines = _lines(log)
    lines[1] = "this is not json\n"
    _write(log, lines)
    assert _problems(log, minted) == ["entry 2 (line 2) changed: not valid JSON"]


def test_removed_entry(log: AuditLog, minted) -> None:
    lines = _lines(log)
    del lines[2]
    _write(log, lines)
    assert _problems(log, minted) == ["entry 3 removed"]


def test_removed_entries_at_the_end(log: AuditLog, minted) -> None:
    _write(log, _lines(log)[:4])
    assert _problems(log, minted) == [
        "entries 5-6 removed from the end (the signed head names entry 6)"
    ]


def test_missing_head_is_reported(log: AuditLog, minted) -> None:
    log.head_path.unlink()
    assert any("audit.head.json is missing" in p for p in _problems(log, minted))


def test_reordered_entries(log: AuditLog, minted) -> None:
    lines = _lines(log)
    lines[2], lines[3] = lines[3], lines[2]
    _write(log, lines)
    assert _problems(log, minted) == ["entry 3 (line 4) reordered: it comes after entry 4"]


def test_inserted_copy_of_an_entry(log: AuditLog, minted) -> None:
    lines = _lines(log)
    lines.insert(4, lines[1])
    _write(log, lines)
    assert _problems(log, minted) == ["entry 2 (line 5) inserted: a copy of line 2"]


def test_inserted_forged_entry(log: AuditLog, minted) -> None:
    lines = _lines(log)
    forged_entry = json.loads(lines[2])
    forged_entry["fields"] = {"key": "forged"}
    forged_entry["hash"] = entry_hash(
        3, forged_entry["time"], forged_entry["event"], forged_entry["fields"], forged_entry["prev"]
    )
    lines.insert(3, canonical_json(forged_entry).decode() + "\n")
    _write(log, lines)
    problems = _problems(log, minted)
    assert problems == [
        "line 4 inserted: claims entry 3, which another line holds (its signature does not verify)"
    ]


def test_inserted_entry_with_new_number(log: AuditLog, minted) -> None:
    lines = _lines(log)
    forged = json.loads(lines[5])
    forged["seq"] = 42
    lines.insert(1, canonical_json(forged).decode() + "\n")
    _write(log, lines)
    problems = _problems(log, minted)
    assert problems == ["line 2 inserted: its hash does not match its content"]


def test_foreign_signer_is_not_trusted(log: AuditLog, minted, tmp_path: Path) -> None:
    stranger = make_minted(tmp_path / "other")
    problems = verify_audit_log(log.path, stranger.public).problems
    assert problems and all("not the certified audit key" in p or "head" in p for p in problems)


def test_unsigned_entries_then_sign_pending(minted, tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")  # no audit key yet (before the identity existed)
    audit.record("source_quarantined", source="cpu-jitter", reason="RCT")
    audit.record("source_cleared", source="cpu-jitter")
    problems = verify_audit_log(audit.path, minted.public).problems
    assert problems[0].startswith("entry 1 (line 1) is not signed")
    audit.signer = minted.identity.audit_signer
    assert audit.sign_pending() == 2
    audit.record("identity_created", identity=minted.identity.fingerprint)
    assert verify_audit_log(audit.path, minted.public).ok


def test_sign_pending_refuses_a_tampered_chain(minted, tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    audit.record("a")
    audit.record("b")
    lines = audit.path.read_text().splitlines(keepends=True)
    audit.path.write_text(lines[1] + lines[0])
    audit.signer = minted.identity.audit_signer
    with pytest.raises(AuditError, match="does not fit the chain"):
        audit.sign_pending()


def test_bytes_fields_refused(log: AuditLog) -> None:
    with pytest.raises(AuditError, match="raw bytes"):
        log.record("mint", secret=b"\x00" * 32)


def test_concurrent_writers_keep_one_chain(minted, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    writers = [
        AuditLog(path, minted.identity.audit_signer) for _ in range(3)
    ]  # separate locks, one file

    def work(audit: AuditLog, name: str) -> None:
        for i in range(8):
            audit.record("config_change", writer=name, i=i)

    threads = [threading.Thread(target=work, args=(w, str(n))) for n, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = verify_audit_log(path, minted.public)
    assert report.ok, report.problems
    assert report.entries == 24


def test_engine_events_are_recorded(minted, tmp_path: Path) -> None:
    class FakeEngine:
        def add_listener(self, listener):
            self.listener = listener

    engine = FakeEngine()
    audit = AuditLog(tmp_path / "audit.jsonl", minted.identity.audit_signer)
    attach_to_engine(engine, audit)
    engine.listener(
        "source_state", {"source": "adc", "previous": "ok", "state": "quarantined", "reason": "APT"}
    )
    engine.listener(
        "source_state", {"source": "adc", "previous": "quarantined", "state": "ok", "reason": ""}
    )
    engine.listener(
        "source_state",
        {"source": "adc", "previous": "quarantined", "state": "failed", "reason": "x"},
    )
    engine.listener("health_cleared", {"source": "adc"})
    events = [json.loads(line)["event"] for line in audit.path.read_text().splitlines()]
    assert events == ["source_quarantined", "source_failed", "source_cleared"]
    assert verify_audit_log(audit.path, minted.public).ok


def test_engine_listener_survives_an_unwritable_log(
    minted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class FakeEngine:
        def add_listener(self, listener):
            self.listener = listener

    engine = FakeEngine()
    folder_in_the_way = tmp_path / "audit.jsonl"
    folder_in_the_way.mkdir()
    attach_to_engine(engine, AuditLog(folder_in_the_way, minted.identity.audit_signer))
    engine.listener("source_state", {"source": "adc", "previous": "ok", "state": "failed"})
    assert "warning: audit trail not written" in capsys.readouterr().err


def test_reserved_entry_is_signed_and_headed(log: AuditLog, minted, tmp_path: Path) -> None:
    """reserve(): the caller writes its file between the entry's making and its append;
    the result is an ordinary signed entry and head, and the log verifies."""
    recorded = tmp_path / "recorded.txt"
    with log.reserve("mint", file=recorded.name) as pending:
        assert pending.entry["seq"] == 7 and pending.entry["hash"]
        recorded.write_text("made for entry 7")
        pending.written.append(recorded)
    entry = json.loads(_lines(log)[-1])
    assert entry["seq"] == 7 and entry["signature"] and entry["signer"]
    head = json.loads(log.head_path.read_text())
    assert head["seq"] == 7 and head["hash"] == entry["hash"]
    report = verify_audit_log(log.path, minted.public)
    assert report.ok, report.problems
    assert report.signed == 7


def test_reserved_entry_that_cannot_be_signed_leaves_nothing(minted, tmp_path: Path) -> None:
    """A signing failure (here: a broken audit key) appends nothing and removes the caller's file."""
    from dataclasses import replace

    broken = replace(minted.identity.audit_signer, secret=b"\x00" * 5)
    audit = AuditLog(tmp_path / "logs" / "audit.jsonl", broken)
    recorded = tmp_path / "recorded.txt"
    with pytest.raises(ChaosError), audit.reserve("mint", file=recorded.name) as pending:
        recorded.write_text("made for entry 1")
        pending.written.append(recorded)
    assert not recorded.exists()
    assert not audit.path.exists() or audit.path.read_bytes() == b""
    assert not audit.head_path.exists()


def test_replacing_the_head_does_not_sync_the_folder(minted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first head is synced into logs/; later heads replace it without a folder fsync
    (a crash can only leave the previous head, which verify accepts)."""
    import chaosmagnet.securefile as securefile

    synced: list[Path] = []
    real = securefile.fsync_dir
    monkeypatch.setattr(securefile, "fsync_dir", lambda folder: (synced.append(Path(folder)), real(folder))[1])
    audit = AuditLog(tmp_path / "logs" / "audit.jsonl", minted.identity.audit_signer)
    audit.record("config_change", key="first")
    assert synced == [audit.path.parent]
    synced.clear()
    audit.record("config_change", key="second")
    assert synced == []
    report = verify_audit_log(audit.path, minted.public)
    assert report.ok and report.entries == 2


def test_each_entry_is_fsynced_and_a_replaced_head_is_written_behind(
    minted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Safety needs the entry on disk before record() returns; the replaced head is written
    atomically (temporary file, rename) but not fsynced: a crash leaves a head behind the log,
    which verify accepts (docs/minting.md, "Write order")."""
    audit = AuditLog(tmp_path / "logs" / "audit.jsonl", minted.identity.audit_signer)
    audit.record("config_change", key="first")  # the first head is synced in, with logs/
    synced: list[str] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd))[1])
    audit.record("config_change", key="second")
    assert synced == [str(audit.path)]
    head = json.loads(audit.head_path.read_text())
    assert head["seq"] == 2
    assert not [p for p in audit.path.parent.iterdir() if p.name.endswith(".tmp")]
    report = verify_audit_log(audit.path, minted.public)
    assert report.ok and report.entries == 2


def test_the_audit_key_is_loaded_once_per_session(minted, monkeypatch: pytest.MonkeyPatch) -> None:
    """The signing key object is made from the seed on first use and kept: every later signature
    (entries, heads) reuses it, and every one of them verifies."""
    from dataclasses import replace

    from chaosmagnet.pqc.cryptography_backend import CryptographyBackend

    loads: list[str] = []
    real = CryptographyBackend._private
    monkeypatch.setattr(
        CryptographyBackend, "_private", lambda self, *args: (loads.append(args[0]), real(self, *args))[1]
    )
    handle = replace(minted.identity.audit_signer)  # same key, nothing loaded yet
    assert handle.backend == "cryptography"
    verifier = CryptographyBackend()
    for message in (b"one", b"two", b"three"):
        value = bytes.fromhex(handle.sign(message)["value"])
        assert verifier.verify(handle.algorithm, handle.public_key, message, value)
    assert loads == ["ML-DSA-65"]
    assert "secret" not in repr(handle).replace("secret=<hidden>", "")
