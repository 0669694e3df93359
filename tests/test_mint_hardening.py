"""Clean failures and enforced formats around minting (issue 16, D6-D9 and the rest).

Every OSError on logs/ and keys/ is one line and exit 2 with nothing written;
export verifies a bundle before it unseals; scrypt parameters are bounded
before anything is allocated; signatures must come in the documented order;
sealing needs a 12-character passphrase; the headline credited bits count
healthy sources only; logs/ is 0700 and its files 0600.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from chaosmagnet.errors import BundleError, SealError
from chaosmagnet.eventlog import JsonLineLog
from chaosmagnet.minting.bundle import verify_bundle
from chaosmagnet.minting.canonical import file_json
from chaosmagnet.minting.export import export_secret_key
from chaosmagnet.minting.mint import MintOptions, mint_bundle
from chaosmagnet.minting.sealing import (
    MIN_PASSPHRASE_LENGTH,
    ScryptParams,
    Sealer,
    Unsealer,
)
from chaosmagnet.minting.seeds import PoolSeedSource
from chaosmagnet.pool import EntropyPool
from chaosmagnet.quorum import Quorum
from mint_helpers import FAST_SCRYPT, PASSPHRASE, Minted, make_minted


@pytest.fixture(scope="module")
def minted(tmp_path_factory: pytest.TempPathFactory) -> Minted:
    return make_minted(tmp_path_factory.mktemp("hardening"))


def chaos_process(home: Path, *args: str, passphrase: str | None = PASSPHRASE) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CHAOS_PASSPHRASE", "CHAOS_TEST_CRASH_AT")}
    env["CHAOS_HOME"] = str(home)
    if passphrase is not None:
        env["CHAOS_PASSPHRASE"] = passphrase
    return subprocess.run(
        [sys.executable, "-m", "chaosmagnet", *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("chaos-host: error:")]
    assert len(errors) == 1 and errors == lines[-1:], result.stderr
    return errors[0]


def _snapshot(home: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(home.rglob("*")):
        if path.is_file() and not path.name.endswith(".lock"):
            out[str(path.relative_to(home))] = path.read_bytes()
    return out


def _make_file(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    path.write_text("in the way\n")


def _make_folder(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.mkdir()


BROKEN_HOMES = {
    "logs is a file": (lambda h: _make_file(h / "logs"), "logs"),
    "audit.jsonl is a folder": (lambda h: _make_folder(h / "logs" / "audit.jsonl"), "audit.jsonl"),
    "the lock is a folder": (
        lambda h: _make_folder(h / "logs" / "audit.jsonl.lock"),
        "audit.jsonl.lock",
    ),
    "audit.head.json is a folder": (
        lambda h: _make_folder(h / "logs" / "audit.head.json"),
        "audit.head.json",
    ),
    "identity.json is a folder": (
        lambda h: _make_folder(h / "keys" / "identity" / "identity.json"),
        "identity.json",
    ),
    "keys is a file": (lambda h: _make_file(h / "keys"), "keys"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_HOMES))
def test_mint_on_a_broken_home_is_one_line(case: str, minted: Minted, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(minted.root, home)
    (home / "logs" / "audit.jsonl.lock").touch()
    breaking, named = BROKEN_HOMES[case]
    breaking(home)
    before = _snapshot(home)
    error = _one_line_error(chaos_process(home, "mint", "--timeout", "60"))
    assert named in error, error
    assert _snapshot(home) == before  # nothing written, nothing half-written


def _read_only_mount(folder: Path) -> None:
    """Bind ``folder`` onto itself read-only (skips when mounting is not permitted)."""
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.strip()}")
    ro = subprocess.run(
        ["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True, text=True
    )
    if ro.returncode != 0:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        pytest.skip(f"cannot remount read-only here: {ro.stderr.strip()}")


@pytest.mark.parametrize("folder", ["logs", "keys"])
def test_mint_with_a_read_only_folder_is_one_line(folder: str, minted: Minted, tmp_path: Path) -> None:
    """D6: with logs/ read-only, mint printed a traceback and exited 1."""
    home = tmp_path / "home"
    shutil.copytree(minted.root, home)
    before = _snapshot(home)
    _read_only_mount(home / folder)
    try:
        error = _one_line_error(chaos_process(home, "mint", "--timeout", "60"))
    finally:
        subprocess.run(["umount", "-l", str(home / folder)], capture_output=True)
    assert "Read-only file system" in error, error
    assert _snapshot(home) == before


def test_identity_init_with_unwritable_logs_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("in the way\n")
    error = _one_line_error(chaos_process(tmp_path, "identity", "init", "--timeout", "60"))
    assert "logs" in error
    assert not (tmp_path / "keys" / "identity" / "identity.json").exists()


# -- D9: passphrases -------------------------------------------------------------
def test_short_passphrases_do_not_seal() -> None:
    with pytest.raises(SealError, match=f"at least {MIN_PASSPHRASE_LENGTH} characters"):
        Sealer("x" * (MIN_PASSPHRASE_LENGTH - 1), FAST_SCRYPT)
    Sealer("x" * MIN_PASSPHRASE_LENGTH, FAST_SCRYPT)


def test_cli_refuses_a_short_passphrase_before_anything(tmp_path: Path) -> None:
    result = chaos_process(tmp_path, "identity", "init", passphrase="x")
    assert _one_line_error(result) == (
        "chaos-host: error: a passphrase that seals keys must be at least 12 characters long"
    )
    assert not (tmp_path / "keys").exists() and not (tmp_path / "logs").exists()
    assert _one_line_error(chaos_process(tmp_path, "mint", passphrase="short")).endswith(
        "at least 12 characters long"
    )


# -- D7: export checks before it unseals; scrypt bounds ------------------------------
class _MustNotOpen(Unsealer):
    def open(self, blob, context):  # type: ignore[no-untyped-def]
        raise AssertionError("unsealed before the bundle was verified")


def _tampered_signature(minted: Minted, target: Path) -> Path:
    doc = json.loads(minted.bundle.path.read_text())
    value = bytearray(bytes.fromhex(doc["signatures"][1]["value"]))
    value[5] ^= 1
    doc["signatures"][1]["value"] = value.hex()
    target.write_bytes(file_json(doc))
    return target


def test_export_verifies_before_it_unseals(minted: Minted, tmp_path: Path) -> None:
    forged = _tampered_signature(minted, tmp_path / "forged.json")
    with pytest.raises(BundleError, match="not exporting a secret key: .*ML-DSA-65 signature does not verify"):
        export_secret_key(forged, _MustNotOpen(PASSPHRASE), "kem", "raw", identity=minted.public)
    stranger = make_minted(tmp_path / "stranger")
    with pytest.raises(BundleError, match="not exporting a secret key: made by host"):
        export_secret_key(
            minted.bundle.path, _MustNotOpen(PASSPHRASE), "kem", "raw", identity=stranger.public
        )


def test_cli_export_refuses_a_forged_bundle_before_asking(minted: Minted, tmp_path: Path) -> None:
    forged = _tampered_signature(minted, tmp_path / "forged.json")
    result = chaos_process(
        minted.root, "export", str(forged), "--secret", "--out", str(tmp_path / "kem.pem"), passphrase=None
    )
    assert "not exporting a secret key" in _one_line_error(result)
    assert not (tmp_path / "kem.pem").exists()


@pytest.mark.parametrize(
    ("n", "r", "p"),
    [(2**22, 32, 16), (2**21, 8, 1), (2**20, 16, 1), (2**14, 17, 1), (2**14, 8, 5), (2**14, 8.0, 1)],
)
def test_scrypt_parameters_from_a_blob_are_bounded(n: int, r: int, p: int) -> None:
    """D7: n=2^22, r=32, p=16 (16 GiB) got through; now refused before any allocation."""
    blob = Sealer(PASSPHRASE, FAST_SCRYPT).seal(b"\x01" * 32, b"ctx")
    blob["kdf"].update(n=n, r=r, p=p)
    with pytest.raises(SealError, match="scrypt|malformed"):
        Unsealer(PASSPHRASE).open(blob, b"ctx")


def test_the_largest_allowed_scrypt_is_one_gib() -> None:
    ScryptParams(n=2**20, r=8, p=4).validate()
    assert ScryptParams(n=2**20, r=8, p=1).memory_bytes == 2**30
    with pytest.raises(SealError, match="1 GiB"):
        ScryptParams(n=2**20, r=9, p=1).validate()


def test_out_of_memory_in_scrypt_is_a_seal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Exhausted:
        def __init__(self, **_: object) -> None:
            pass

        def derive(self, _: bytes) -> bytes:
            raise MemoryError

    import cryptography.hazmat.primitives.kdf.scrypt as scrypt_module  # sealing imports it when it stretches

    monkeypatch.setattr(scrypt_module, "Scrypt", Exhausted)
    with pytest.raises(SealError, match="not enough memory for scrypt"):
        Sealer(PASSPHRASE, FAST_SCRYPT)


# -- D8: signature order ---------------------------------------------------------------
def test_signatures_out_of_the_documented_order_fail(minted: Minted, tmp_path: Path) -> None:
    doc = json.loads(minted.bundle.path.read_text())
    doc["signatures"].reverse()
    swapped = tmp_path / "swapped.json"
    swapped.write_bytes(file_json(doc))  # canonical layout: only the order differs
    problems = verify_bundle(swapped, minted.public, audit_log=None).problems
    assert problems and all("out of order" in p or "no " in p for p in problems), problems
    assert (
        "bundle: signature 1: ML-DSA-65 is out of order "
        "(signatures must be listed Falcon-512, ML-DSA-65)"
    ) in problems


# -- headline credited bits ----------------------------------------------------------------
def test_headline_bits_count_only_healthy_sources(minted: Minted, tmp_path: Path) -> None:
    pool = EntropyPool()
    pool.absorb("healthy", os.urandom(64), 400.0)
    pool.absorb("sick", os.urandom(64), 112.0)
    # one healthy source: the key quorum is lowered to 1 (this test is about the headline figure)
    source = PoolSeedSource(pool, {"healthy": {"state": "ok"}, "sick": {"state": "quarantined"}}, quorum=Quorum(k=1))
    options = MintOptions(out_dir=tmp_path / "out", timeout=5.0)
    options.validate()
    bundle = asyncio.run(
        mint_bundle(
            options,
            seed_source=source,
            identity=minted.identity,
            sealer=Sealer(PASSPHRASE, FAST_SCRYPT),
            audit=minted.audit,
        )
    )
    draw = json.loads(bundle.path.read_text())["provenance"]["keys"]["kem"]["draw"]
    assert draw["sources"]["sick"]["credited_bits"] > 0  # it was debited, and says so
    healthy = draw["sources"]["healthy"]["credited_bits"]
    assert bundle.credited_bits_drawn == pytest.approx(healthy, abs=0.01)
    assert bundle.credited_bits_drawn < draw["credited_bits_drawn"]


# -- logs/ like keys/ ------------------------------------------------------------------------
def test_logs_folder_and_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        log = JsonLineLog(tmp_path / "home" / "logs" / "health.jsonl")
        log.write("rct_failure", source="x")
        log.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "home" / "logs").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "home" / "logs" / "health.jsonl").stat().st_mode) == 0o600


# -- leftovers of killed processes ------------------------------------------------------------
def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


@pytest.mark.parametrize("command", [("mint", "--timeout", "120"), ("run", "--seconds", "1", "--json")])
def test_next_start_removes_temporary_files_of_killed_writes(
    command: tuple[str, ...], minted: Minted, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(minted.root, home)
    pid = _dead_pid()
    leftovers = [
        home / "keys" / f".bundle-x.json.{pid}.0123abcd.tmp",
        home / "keys" / "identity" / f".identity.json.{pid}.0123abcd.tmp",
        home / "logs" / f".audit.head.json.{pid}.0123abcd.tmp",
    ]
    for path in leftovers:
        path.write_bytes(b"{}")
    result = chaos_process(home, *command)
    assert result.returncode == 0, result.stderr
    assert "removed 3 temporary file(s) left by an interrupted write" in result.stderr
    assert not any(path.exists() for path in leftovers)


def test_identity_init_on_a_full_disk_leaves_no_identity_files(tmp_path: Path) -> None:
    """Whatever part of the identity fitted is removed again when the rest does not."""
    home = tmp_path / "home"
    home.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32k,mode=0700", "tmpfs", str(home)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        error = _one_line_error(chaos_process(home, "identity", "init", "--timeout", "120"))
        assert "No space left on device" in error, error
        assert list((home / "keys" / "identity").iterdir()) == []
        assert not list((home / "logs").glob("*.tmp")) and not list((home / "logs").glob(".*.tmp"))
    finally:
        subprocess.run(["umount", "-l", str(home)], capture_output=True)
