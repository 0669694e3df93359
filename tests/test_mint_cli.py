"""The key commands end to end through `chaos-host` (real local sources, default scrypt)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaosmagnet.cli import main
from chaosmagnet.control import probe

PASS = "cli test passphrase"


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="cmh-", dir="/tmp"))
    monkeypatch.setenv("CHAOS_HOME", str(root))
    monkeypatch.setenv("CHAOS_PASSPHRASE", PASS)
    monkeypatch.setenv(
        "CHAOS_CONTROL_SOCKET", str(root / "ctl" / "control.sock")
    )  # never a real run's
    monkeypatch.chdir(root)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def run_cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return int(exit_info.value.code or 0)


def test_mint_verify_export_audit(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("mint", "--timeout", "120") == 0
    out = capsys.readouterr()
    assert "creating the host identity" in out.err
    assert PASS not in out.out + out.err
    (bundle,) = sorted((home / "keys").glob("bundle-*.json"))
    assert "seeded from the pool" in out.out and str(bundle) in out.out
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    doc = json.loads(bundle.read_text())
    assert doc["provenance"]["keys"]["kem"]["draw"]["via"] == "engine"

    assert run_cli("verify", str(bundle)) == 0
    assert "OK" in capsys.readouterr().out
    assert run_cli("audit", "verify") == 0
    assert "2 entries" in capsys.readouterr().out

    tampered = home / "tampered.json"
    raw = bytearray(bundle.read_bytes())
    position = raw.index(doc["kem"]["public_key"].encode()) + 10
    raw[position] = ord("0") if raw[position] != ord("0") else ord("1")
    tampered.write_bytes(bytes(raw))
    assert run_cli("verify", str(tampered)) == 2
    err = capsys.readouterr().err
    assert (
        "signature does not verify" in err
        and "chaos-host: error: 1 of 1 bundle(s) failed verification" in err
    )

    assert run_cli("export", str(bundle)) == 0
    assert capsys.readouterr().out.startswith("-----BEGIN PUBLIC KEY-----")
    secret_file = home / "kem.pem"
    assert run_cli("export", str(bundle), "--secret", "--out", str(secret_file)) == 0
    assert secret_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600

    os.environ["CHAOS_PASSPHRASE"] = "wrong"
    assert run_cli("export", str(bundle), "--secret") == 2
    assert "chaos-host: error: wrong passphrase" in capsys.readouterr().err

    assert run_cli("identity", "show") == 0
    shown = capsys.readouterr().out
    assert "fingerprint" in shown and doc["host"]["fingerprint"] in shown and "certified" in shown

    log = home / "logs" / "audit.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text(lines[1] + lines[0])
    assert run_cli("audit", "verify") == 2
    assert "reordered" in capsys.readouterr().err


def test_backends_lists_algorithms(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("backends", "--json") == 0
    table = json.loads(capsys.readouterr().out)
    rows = {r["algorithm"]: r for r in table["algorithms"]}
    assert rows["ML-KEM-768"]["backend"] == "cryptography" and rows["ML-KEM-768"]["seeded"] is True
    assert (
        rows["Falcon-512"]["backend"] in ("pqcrypto", "liboqs")
        and rows["Falcon-512"]["seeded"] is False
    )
    assert {b["name"] for b in table["backends"]} == {"liboqs", "pqclean", "cryptography", "pqcrypto"}
    assert rows["ML-DSA-65"]["backend"] == "cryptography" and rows["ML-DSA-65"]["seeded"] is True


def test_bad_input_is_one_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("mint", "--kem", "ML-DSA-65") == 2
    assert (
        capsys.readouterr().err.strip()
        == "chaos-host: error: ML-DSA-65 is not a KEM (try ML-KEM-768)"
    )
    assert (
        run_cli("verify", str(home / "nope.json"), "--identity", str(home / "nope.pub.json")) == 2
    )
    assert capsys.readouterr().err.count("\n") == 1
    assert not (home / "keys").exists()


def test_mint_draws_from_a_running_pool(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`chaos-host run` in another process serves the pool; `mint` draws from it."""
    env = dict(os.environ)
    run = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from chaosmagnet.cli import main; main()",
            "run",
            "--seconds",
            "120",
            "--json",
        ],
        env=env,
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        socket_path = Path(env["CHAOS_CONTROL_SOCKET"])
        deadline = time.monotonic() + 60
        while asyncio.run(probe(socket_path)) is None:
            assert run.poll() is None, run.stderr.read().decode() if run.stderr else ""
            assert time.monotonic() < deadline, "chaos-host run never opened its control socket"
            time.sleep(0.2)
        assert run_cli("mint", "--timeout", "120", "--sign-keypair", "ML-DSA-65") == 0
        out = capsys.readouterr()
        assert "drawing from the running" in out.err
        (bundle,) = sorted((home / "keys").glob("bundle-*.json"))
        keys = json.loads(bundle.read_text())["provenance"]["keys"]
        assert keys["kem"]["draw"]["via"] == keys["signing_key"]["draw"]["via"] == "control-socket"
    finally:
        run.send_signal(signal.SIGTERM)
        try:
            run.wait(timeout=30)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
    assert not Path(env["CHAOS_CONTROL_SOCKET"]).exists()
