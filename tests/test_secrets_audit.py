"""Secrets audit: pool output, seeds, secret keys, passphrases, node keys and the
dashboard token never reach a log, a screen, a metric, an API answer or an error,
and the files that hold secrets are written privately and atomically.

The end-to-end test runs an engine with a dashboard, a control socket, a
registered node and a source that gets quarantined; mints through the API
(server passphrase) and through the control socket; then greps every file
under logs/ and every API answer for each secret it knows.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from chaosmagnet.audit import AuditLog, attach_to_engine
from chaosmagnet.control import ControlSeedSource, ControlServer
from chaosmagnet.dashboard import TOKEN_HEADER
from chaosmagnet.errors import UsageError
from chaosmagnet.minting.export import export_secret_key
from chaosmagnet.minting.identity import identity_dir, load_identity, load_identity_public
from chaosmagnet.minting.sealing import Unsealer
from chaosmagnet.nodes.registry import NodeRecord, NodeRegistry, registry_transaction
from chaosmagnet.nodes.sources import build_node_sources
from chaosmagnet.securefile import write_private_file
from dashboard_helpers import TOKEN, local_sources, running_dashboard
from mint_helpers import ScriptedSource

PASS = "audit-passphrase-Quokka-7731"
NODE_KEY = bytes(range(32))


class _IdleLink:
    """A link that never connects (the node is registered but not plugged in)."""

    def __init__(self, port: str, on_bytes: Any, **_: Any) -> None:
        self.state = "waiting"
        self.connects = 0
        self.is_open = False
        self._closed = asyncio.Event()

    def write(self, data: bytes) -> bool:
        return False

    async def run(self) -> None:
        await self._closed.wait()

    def close(self) -> None:
        self._closed.set()


def _files_text(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in sorted(folder.rglob("*")) if p.is_file())


def test_no_secret_in_logs_api_metrics_or_streams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    monkeypatch.delenv("CHAOS_NODES", raising=False)
    with registry_transaction() as registry:
        registry.put(NodeRecord("audited", b"\x01" * 8, NODE_KEY, "um_feathers3", "/nonexistent"))
    record = NodeRegistry().get("audited")
    stuck = ScriptedSource("stuck", [np.zeros(4096, dtype=np.uint8)] * 4, declared_h=4.0)
    sources = [*local_sources(), stuck, *build_node_sources(record, link_factory=_IdleLink)]
    answers: list[str] = []
    seeds: list[bytes] = []

    async def scenario() -> str:
        env = {"CHAOS_PASSPHRASE": PASS}
        async with running_dashboard(tmp_path, environ=env, sources=sources) as (engine, server):
            attach_to_engine(engine, AuditLog(tmp_path / "logs" / "audit.jsonl"))
            control = ControlServer(engine, tmp_path / "ctl" / "control.sock")
            await control.start()
            try:
                draw = await ControlSeedSource(control.path).draw(
                    32, required_bits=64, purpose=b"audit-test", timeout=60
                )
                seeds.append(draw.data)
                assert draw.data.hex() not in repr(draw) + str(draw)
            finally:
                await control.stop()
            base = server.url
            headers = {
                "Origin": base.rstrip("/"),
                "Content-Type": "application/json",
                TOKEN_HEADER: TOKEN,
            }
            async with aiohttp.ClientSession() as http:
                async with http.post(
                    base + "api/mint",
                    json={"kem": "ML-KEM-768", "sign_keypair": "ML-DSA-65"},
                    headers=headers,
                ) as r:
                    assert r.status == 201, await r.text()
                    minted = await r.json()
                    answers.append(json.dumps(minted))
                async with http.post(base + "api/mint", json={"passphrase": "a wrong one"}, headers=headers) as r:
                    assert r.status == 400
                    answers.append(await r.text())
                for path in (
                    "api/status",
                    "api/sources",
                    "api/history",
                    "api/log",
                    "api/audit",
                    "api/mint",
                    "api/bundles",
                    minted["public_url"].lstrip("/"),
                    "metrics",
                ):
                    async with http.get(base + path) as r:
                        assert r.status == 200, path
                        answers.append(await r.text())
                async with http.get(base + "api/events") as r:
                    answers.append((await r.content.readuntil(b"\n\n")).decode())
            assert engine.source_states()["stuck"]["state"] != "ok"  # events were logged
            return minted["file"]

    bundle_name = asyncio.run(scenario())
    bundle = tmp_path / "keys" / bundle_name
    unsealer = Unsealer(PASS)
    public = load_identity_public(tmp_path / "keys")
    kem_seed, _ = export_secret_key(bundle, unsealer, "kem", "raw", identity=public)
    sign_seed, _ = export_secret_key(bundle, unsealer, "signing", "raw", identity=public)
    identity = load_identity(tmp_path / "keys", unsealer)
    identity_secrets = [s.secret for s in identity._signers]
    secrets_hex = [kem_seed.hex(), sign_seed.hex(), NODE_KEY.hex()]
    secrets_hex += [s.hex() for s in seeds + identity_secrets]
    logs = _files_text(tmp_path / "logs")
    assert (tmp_path / "logs" / "health.jsonl").exists() and "stuck" in logs
    assert (tmp_path / "logs" / "audit.jsonl").exists()
    everything = "\n".join(answers)
    for text, where in ((logs, "logs/"), (everything, "API answers")):
        assert PASS not in text, where
        assert TOKEN not in text, where
        for secret in secrets_hex:
            assert secret[:32] not in text, where
    # the keys folder and everything secret in it is private
    keys = tmp_path / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for path in [keys / "nodes.json", bundle, *identity_dir(keys).iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert PASS not in _files_text(keys)
    assert not [p for p in keys.rglob("*") if p.name.endswith(".tmp")]


def test_reprs_hide_secrets(tmp_path: Path) -> None:
    """Objects holding a secret show neither the secret nor a passphrase in repr/str."""
    from chaosmagnet.minting.sealing import ScryptParams, Sealer
    from chaosmagnet.pool import EntropyPool
    from chaosmagnet.pqc import backend_for

    pool = EntropyPool()
    pool.absorb("s", os.urandom(128), 512.0)
    draw = pool.draw(32, purpose=b"t")
    pair = backend_for("ML-KEM-768").generate_keypair("ML-KEM-768", os.urandom(64))
    record = NodeRecord("n", b"\x02" * 8, NODE_KEY, "b", "/dev/null")
    sealer = Sealer(PASS, ScryptParams(n=2**10))
    unsealer = Unsealer(PASS)
    for obj, secret in (
        (draw, draw.data.hex()),
        (pair, pair.secret.hex()),
        (record, NODE_KEY.hex()),
        (sealer, PASS),
        (unsealer, PASS),
    ):
        for text in (repr(obj), str(obj)):
            assert secret not in text and secret[:16] not in text


def test_export_secret_refuses_a_terminal(tmp_path: Path) -> None:
    """`export --secret` never shows a secret key on a screen (PEM or raw), and says so
    before asking for a passphrase; to a file it writes mode 0600."""
    import pty

    from mint_helpers import make_minted

    minted = make_minted(tmp_path)
    bundle = str(minted.bundle.path)
    env = {**os.environ, "CHAOS_PASSPHRASE": "correct horse battery staple", "CHAOS_HOME": str(tmp_path)}
    for fmt in ("pem", "raw"):
        master, slave = pty.openpty()
        try:
            proc = subprocess.run(
                [sys.executable, "-c", "from chaosmagnet.cli import main; main()"]
                + ["export", bundle, "--secret", "--format", fmt],
                stdout=slave,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
                timeout=120,
            )
            os.set_blocking(master, False)
            try:
                shown = os.read(master, 65536)
            except BlockingIOError:
                shown = b""
        finally:
            os.close(master)
            os.close(slave)
        assert proc.returncode == 2
        assert b"PRIVATE KEY" not in shown and shown == b""
        assert proc.stderr.decode().strip() == (
            "chaos-host: error: refusing to show a secret key on a terminal: use --out FILE or a pipe"
        )
    out = tmp_path / "kem.pem"
    proc = subprocess.run(
        [sys.executable, "-c", "from chaosmagnet.cli import main; main()"]
        + ["export", bundle, "--secret", "--out", str(out)],
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_node_registry_is_private_and_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nodes.json (it holds node keys) is written 0600 in a 0700 folder, through a
    temporary file that never outlives a failed save."""
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    monkeypatch.delenv("CHAOS_NODES", raising=False)
    old = os.umask(0o022)  # a usual umask: the code, not the umask, makes the files private
    try:
        with registry_transaction() as registry:
            registry.put(NodeRecord("a", b"\x03" * 8, NODE_KEY, "um_feathers3", "/dev/null"))
    finally:
        os.umask(old)
    path = tmp_path / "keys" / "nodes.json"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    registry = NodeRegistry(path)
    registry.put(NodeRecord("b", b"\x04" * 8, NODE_KEY, "um_feathers3", "/dev/null"))
    with pytest.raises(UsageError, match="No space left on device"):
        registry.save()
    assert path.read_bytes() == before  # the old registry is intact
    assert sorted(p.name for p in path.parent.iterdir()) == ["nodes.json", "nodes.json.lock"]


def test_private_write_leaves_no_temporary_file_on_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the middle of writing a key file: the old file stays, no temporary file."""
    target = tmp_path / "keys" / "bundle.json"
    write_private_file(target, b"old")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_private_file(target, b"new secret material")
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["bundle.json"]
