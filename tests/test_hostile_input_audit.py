"""Hostile-input audit: bad files, garbage from peers and devices, bad numbers.

Each case gives one clear line and exit status 2 (CLI), a clean error answer
(control socket, dashboard) or is counted and dropped (devices) - never a
traceback, a crashed engine or a half-written file.  The deeply nested JSON
document (``[[[[...``) is the recurring villain: Python's parser raises
RecursionError for it, which no ``except ValueError`` catches.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chaosmagnet.audit import AuditLog, find_entry, verify_audit_log
from chaosmagnet.cli import main
from chaosmagnet.config import Config
from chaosmagnet.control import ControlServer
from chaosmagnet.engine import Engine
from chaosmagnet.errors import AuditError, BundleError, ConfigError
from chaosmagnet.eventlog import JsonLineLog
from chaosmagnet.minting.bundle import load_bundle, verify_bundle
from chaosmagnet.minting.canonical import file_json
from chaosmagnet.nodes.protocol import (
    FrameType,
    derive_session,
    encode_frame,
    encode_handshake,
)
from chaosmagnet.nodes.registry import NodeRecord, NodeRegistry, registry_transaction
from chaosmagnet.nodes.sources import build_node_sources
from mint_helpers import PASSPHRASE, ScriptedSource, make_minted, uniform

DEEP_JSON = "[" * 5000 + "\n"  # under every size limit, too deep for json.loads
DEEP_TOML = "x = " + "[" * 5000 + "\n"
NODE_KEY = bytes(range(32))


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="cmx-", dir="/tmp"))
    monkeypatch.setenv("CHAOS_HOME", str(root))
    monkeypatch.setenv("CHAOS_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("CHAOS_NODES", raising=False)
    monkeypatch.chdir(root)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def one_line_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run chaos-host in this process; it must exit 2 with one `chaos-host: error:` line."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]  # (a progress bar's blank line)
    assert len(lines) == 1 and lines[0].startswith("chaos-host: error: "), err
    return lines[0]


# -- files ----------------------------------------------------------------------
def test_deeply_nested_files_give_one_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = home / "deep.json"
    deep.write_text(DEEP_JSON)
    assert "not valid JSON" in one_line_error(capsys, "verify", str(deep), "--identity", str(deep))
    assert "not valid JSON" in one_line_error(capsys, "identity", "show", "--identity", str(deep))
    ident = make_minted(home / "m").keys  # a good identity: the bundle is what is deep
    assert "not valid JSON" in one_line_error(capsys, "verify", str(deep), "--identity", str(ident))
    assert "not valid JSON" in one_line_error(capsys, "export", str(deep))
    assert "not valid JSON" in one_line_error(capsys, "export", str(deep), "--secret")
    with pytest.raises(BundleError):
        load_bundle(deep)
    toml = home / "deep.toml"
    toml.write_text(DEEP_TOML)
    assert "nested too deeply" in one_line_error(capsys, "sources", "--config", str(toml))


@pytest.mark.parametrize(
    "content",
    [
        DEEP_JSON,
        "[1]\n",
        '"x"\n',
        '{"nodes": [{"label": "a", "node_id": "0011223344556677", '
        '"key": "' + "00" * 32 + '", "board": "b", "link": "l", "declared": {"adc": {"h": "x"}}}]}',
        '{"nodes": [{"label": "a", "node_id": "0011223344556677", '
        '"key": "' + "00" * 32 + '", "board": "b", "link": "l", "declared": {"adc": {"h": NaN}}}]}',
    ],
    ids=["deep", "list", "string", "declared-text", "declared-nan"],
)
def test_damaged_node_registry_gives_one_line(home: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    path = home / "keys" / "nodes.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(ConfigError):
        NodeRegistry(path)
    assert "node registry" in one_line_error(capsys, "nodes", "list")
    assert "node registry" in one_line_error(capsys, "run", "--seconds", "1", "--json")
    assert path.read_text() == content  # never rewritten


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[sources.cpu-jitter]\nrate = nan", "finite"),
        ("[sources.cpu-jitter]\nrate = inf", "finite"),
        ("[health]\nalpha_exponent = nan", "finite"),
        ("[health]\nfailure_period = inf", "finite"),
        ("[estimates]\nwindow = 100000000000000", "at most"),
        ("[assessment]\nsamples = 100000000000000", "at most"),
    ],
)
def test_config_numbers_must_be_finite_and_bounded(
    home: Path, capsys: pytest.CaptureFixture[str], table: str, message: str
) -> None:
    path = home / "chaos.toml"
    path.write_text(table + "\n")
    assert message in one_line_error(capsys, "run", "--seconds", "1", "--config", str(path))


def test_bundle_with_odd_secret_key_and_hostile_fingerprint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    minted = make_minted(tmp_path)
    doc = json.loads(minted.bundle.path.read_text())
    doc["kem"]["secret_key"] = 5
    odd = tmp_path / "odd.json"
    odd.write_bytes(file_json(doc))
    monkeypatch.setenv("CHAOS_PASSPHRASE", PASSPHRASE)
    assert "malformed" in one_line_error(
        capsys, "export", str(odd), "--secret", "--keys", str(minted.keys)
    )

    doc = json.loads(minted.bundle.path.read_text())
    doc["host"]["fingerprint"] = "\x1b]0;owned\x07\x1b[2J" + "0" * 50
    hostile = tmp_path / "hostile.json"
    hostile.write_bytes(file_json(doc))
    report = verify_bundle(hostile, minted.public, audit_log=None)
    assert not report.ok
    assert not any("\x1b" in p or "\x07" in p for p in report.problems)
    assert any("made by host \\x1b" in p for p in report.problems)


# -- the audit trail --------------------------------------------------------------
def test_damaged_audit_trail_never_raises_past_audit_error(tmp_path: Path) -> None:
    minted = make_minted(tmp_path)
    log = minted.log
    good = log.read_bytes()
    for bad in (DEEP_JSON.encode(), b'{"seq": 1e999, "hash": "x"}\n'):
        log.write_bytes(good + bad)
        report = verify_audit_log(log, minted.public)
        assert not report.ok and any("line 3" in p for p in report.problems)
        with pytest.raises(AuditError, match="last entry is damaged"):
            minted.audit.record("mint", bundle_id="x")
        with pytest.raises(AuditError, match="damaged; not signing"):
            AuditLog(log, minted.identity.audit_signer).sign_pending()
        assert find_entry(log, 2) is not None
    log.write_bytes(good)
    head = minted.audit.head_path
    head.write_text('{"seq": 1e999, "hash": "x", "signer": "x", "signature": "00"}')
    assert any("damaged" in p for p in verify_audit_log(log, minted.public).problems)
    head.write_text(DEEP_JSON)
    assert any("damaged" in p for p in verify_audit_log(log, minted.public).problems)


def test_audit_log_that_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    minted = make_minted(tmp_path)
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    with pytest.raises(AuditError):
        AuditLog(folder).record("config_change", key="x")
    with pytest.raises(AuditError):
        find_entry(folder, 1)
    report = verify_bundle(minted.bundle.path, minted.public, audit_log=folder)
    assert any(p.startswith("audit: ") for p in report.problems)
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "verify",
                str(minted.bundle.path),
                "--identity",
                str(tmp_path / "keys"),
                "--audit-log",
                str(folder),
            ]
        )
    assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


# -- CLI odds and ends ------------------------------------------------------------
def test_binary_key_file_gives_one_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = home / "key.bin"
    key_file.write_bytes(bytes(range(128, 256)))
    err = one_line_error(
        capsys, "nodes", "add", "--label", "n1", "--node-id", "0011223344556677",
        "--board", "um_feathers3", "--port", "/dev/null", "--key-file", str(key_file),
    )  # fmt: skip
    assert "64 hex digits" in err
    assert not (home / "keys" / "nodes.json").exists()


def test_simulator_port_link_problems_give_one_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = home / "no-such-folder" / "port"
    err = one_line_error(capsys, "nodes", "simulate", "--label", "s1", "--seconds", "1", "--link", str(missing))
    assert "cannot create the port link" in err
    assert NodeRegistry().find("s1") is None  # unregistered again
    precious = home / "notes.txt"
    precious.write_text("mine")
    err = one_line_error(capsys, "nodes", "simulate", "--label", "s2", "--seconds", "1", "--link", str(precious))
    assert "is not a port link" in err
    assert precious.read_text() == "mine" and not precious.is_symlink()


def test_write_failures_give_one_line_and_no_temporary_file(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = home / "samples.bin"
    out.write_bytes(b"earlier")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    err = one_line_error(capsys, "sample", "os-rng", "--count", "100", "--out", str(out))
    assert "No space left on device" in err
    assert out.read_bytes() == b"earlier"
    assert sorted(p.name for p in home.iterdir()) == ["samples.bin"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_random_to_a_full_device_gives_one_line(home: Path) -> None:
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [sys.executable, "-c", "from chaosmagnet.cli import main; main()"]
            + ["random", "--bytes", "4096", "--timeout", "60"],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert err.strip().splitlines()[-1] == (
        "chaos-host: error: cannot write to standard output: No space left on device"
    )
    assert "Traceback" not in err


# -- devices ----------------------------------------------------------------------
class _FakeLink:
    def __init__(self, port: str, on_bytes: Any, **_: Any) -> None:
        self.on_bytes = on_bytes
        self.state = "linked"
        self.connects = 1
        self.is_open = True

    def write(self, data: bytes) -> bool:
        return True


def test_hostile_node_status_frames_cannot_break_the_node_sources() -> None:
    record = NodeRecord("hostile", b"\x05" * 8, NODE_KEY, "um_feathers3", "/dev/null")
    sources = build_node_sources(record, link_factory=_FakeLink, boot_store=None)
    connection = sources[0].connection  # type: ignore[attr-defined]
    challenge, boot_nonce, link_nonce = b"\x09" * 16, b"\x06" * 8, b"\x08" * 8
    connection.session.hello(challenge)
    connection._on_bytes(
        encode_handshake(NODE_KEY, record.node_id, challenge, boot_nonce, link_nonce, 1)
    )
    assert connection.link_state == "linked"
    session_key, nonce = derive_session(
        NODE_KEY, record.node_id, challenge, boot_nonce, link_nonce, 1
    )
    payloads = [
        b"[" * 2000,  # too deep for the JSON parser
        b'{"sources": 5}',
        b'{"sources": [5, "x", {"name": "adc", "rate": "\\u001b[2J", "h": [[[[[[1]]]]]]}]}',
        b'{"fw": "\\u001b]0;owned\\u0007", "sources": [{"name": "jitter", "on": true}]}',
        b'{"a": ' + b"[" * 600 + b"]" * 600 + b"}",  # deep but parseable
    ]
    for seq, payload in enumerate(payloads, 1):
        frame = encode_frame(session_key, record.node_id, nonce, seq, FrameType.STATUS, 0, 0, 0, 0,
                             0, 0, 0, payload)  # fmt: skip
        connection._on_bytes(frame)
        for source in sources:
            details = source.details()
            text = json.dumps(details, default=str)
            assert "\x1b" not in text and "\\u001b" not in text, text
        assert connection.parser.frames_accepted == seq + 1  # and the handshake
        if b'"fw"' in payload:  # shown, escaped
            assert sources[0].details()["firmware"] == "\\x1b]0;owned\\x07"
    assert connection.status == {"a": [[[None]]]}  # kept at most four levels deep


def test_nodes_status_prints_hostile_status_safely(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import chaosmagnet.nodes.sources as node_sources

    with registry_transaction() as registry:
        registry.put(NodeRecord("n2", b"\x07" * 8, NODE_KEY, "um_feathers3", "/dev/null"))

    async def fake_probe(record: NodeRecord, timeout: float) -> dict[str, Any]:
        status = {
            "fw": "\x1b[31mred",
            "board": ["x"],
            "uptime_ms": "soon",
            "frames": "\x1b[2J",
            "sources": [5, {"name": "\x1b[1madc", "rate": "\x07", "on": True, "h": {"a": 1}}],
        }
        link = {"link": "linked", "verified": True, "frames": 3, "drops": {}, "lost_frames": 0}
        return {"link": link, "status": status, "replies": []}

    monkeypatch.setattr(node_sources, "probe_node", fake_probe)
    with pytest.raises(SystemExit) as exit_info:
        main(["nodes", "status", "n2"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert "uptime unknown" in out and "\\x1b[31mred" in out


# -- peers: control socket and dashboard --------------------------------------------
def _engine(tmp_path: Path) -> Engine:
    source = ScriptedSource("good", [uniform(4096, seed=i) for i in range(40)], declared_h=6.0)
    return Engine([source], Config(), health_log=JsonLineLog(tmp_path / "logs" / "health.jsonl"))


def test_control_socket_survives_garbage(tmp_path: Path) -> None:
    requests = [
        DEEP_JSON.encode(),
        b'{"op":"draw","n_bytes":1e400,"required_bits":1,"timeout":1,"purpose":"x"}\n',
        b'{"op":"draw","n_bytes":16,"required_bits":1e400,"timeout":1,"purpose":"x"}\n',
        b'{"op":"draw","n_bytes":16,"required_bits":"inf","timeout":1,"purpose":"x"}\n',
        b"\xff\xfe garbage\n",
        b"[1]\n",
    ]

    async def scenario() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        unhandled: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
        engine = _engine(tmp_path)
        await engine.start()
        server = ControlServer(engine, tmp_path / "ctl" / "control.sock")
        await server.start()
        answers = []
        try:
            for request in [*requests, b'{"op": "status"}\n']:
                reader, writer = await asyncio.open_unix_connection(str(server.path))
                writer.write(request)
                await writer.drain()
                answers.append(json.loads(await asyncio.wait_for(reader.readline(), 10)))
                writer.close()
                await writer.wait_closed()
        finally:
            await server.stop()
            await engine.stop()
        assert unhandled == [], unhandled
        return answers

    answers = asyncio.run(scenario())
    assert [a["ok"] for a in answers] == [False] * len(requests) + [True]
    assert all(a["error"] == "request" for a in answers[:-1])


def test_dashboard_refuses_deep_json_bodies_and_damaged_logs(tmp_path: Path) -> None:
    import aiohttp
    from chaosmagnet.dashboard import TOKEN_HEADER
    from dashboard_helpers import TOKEN, running_dashboard

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "health.jsonl").write_text('[1]\n"x"\n' + DEEP_JSON)
    (logs / "audit.jsonl").write_text('{"seq": 1e999, "time": "t", "event": "e"}\n' + DEEP_JSON)
    source = ScriptedSource("good", [uniform(4096, seed=i) for i in range(40)], declared_h=6.0)

    async def scenario() -> None:
        async with running_dashboard(tmp_path, sources=[source]) as (engine, server):
            base = server.url
            headers = {
                "Origin": base.rstrip("/"),
                "Content-Type": "application/json",
                TOKEN_HEADER: TOKEN,
            }
            async with aiohttp.ClientSession() as http:
                for path in ("api/sources/good", "api/mint", "api/sources/good/clear"):
                    async with http.post(base + path, data=DEEP_JSON, headers=headers) as r:
                        assert r.status == 400, path
                        assert (await r.json())["error"] == "the body is not valid JSON"
                (logs / "audit.jsonl").unlink()
                (logs / "audit.jsonl").mkdir()  # the tail must not choke on this either
                server.live.tick()
                async with http.get(base + "api/status") as r:
                    assert r.status == 200
                async with http.get(base + "api/audit") as r:
                    assert (await r.json())["entries"] == []
            assert server._ticker is not None and not server._ticker.done()

    asyncio.run(scenario())


def test_unwritable_health_log_never_takes_a_source_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """logs/ is a file: health events are dropped with one warning, and the stuck source
    is quarantined (then failed) as usual, not put in error by the failed log write."""
    (tmp_path / "logs").write_text("not a folder")
    log = JsonLineLog(tmp_path / "logs" / "health.jsonl")
    stuck = ScriptedSource("stuck", [np.zeros(4096, dtype=np.uint8)] * 4, declared_h=4.0)

    async def scenario() -> dict[str, Any]:
        engine = Engine([stuck], Config(), health_log=log)
        await engine.start()
        try:
            for _ in range(100):
                if engine.source_states()["stuck"]["state"] != "ok":
                    break
                await asyncio.sleep(0.05)
            return engine.source_states()["stuck"]
        finally:
            await engine.stop()

    state = asyncio.run(scenario())
    assert state["state"] in ("quarantined", "failed"), state  # the health verdict, not "error"
    err = capsys.readouterr().err
    assert err.count("cannot write") == 1 and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to serve a socket as another user")
def test_control_client_never_trusts_another_users_socket(tmp_path: Path) -> None:
    """A socket planted at the control path by another user (uid 65534 here) is not
    asked for seeds: probe() sees no `run`, and a draw fails with the reason."""
    from chaosmagnet.control import ControlSeedSource, probe
    from chaosmagnet.errors import ControlError

    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("needs a system python3 that another user can run")
    top = Path(tempfile.mkdtemp(prefix="cm-planted-", dir="/tmp"))  # pytest's tmp is root-only
    os.chmod(top, 0o755)
    folder = top / "planted"
    folder.mkdir()
    os.chown(folder, 65534, 65534)
    path = folder / "control.sock"
    fake_seed = "ab" * 64
    answer = json.dumps({"ok": True, "seed": fake_seed, "pid": 1})
    server = subprocess.Popen(
        [
            python,
            "-c",
            "import os, socket, sys\n"
            "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777)\n"
            "s.listen(); print('ready', flush=True)\n"
            "while True:\n"
            "    c, _ = s.accept()\n"
            "    try:\n"
            "        c.recv(65536); c.sendall(sys.argv[2].encode() + b'\\n')\n"
            "    except OSError:\n"
            "        pass  # the client hung up first\n"
            "    c.close()\n",
            str(path),
            answer,
        ],
        user=65534,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        assert asyncio.run(probe(path)) is None
        with pytest.raises(ControlError, match="served by another user"):
            asyncio.run(ControlSeedSource(path).draw(64, required_bits=1, purpose=b"x", timeout=5))
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(top, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_control_socket_folder_modes_are_never_changed(tmp_path: Path) -> None:
    """A socket put straight into a shared sticky folder (as $CHAOS_CONTROL_SOCKET=/tmp/x.sock
    does) leaves the folder's mode alone - it used to chmod /tmp to 0700, locking every
    other user out; a folder others can write to (not sticky) is refused, unchanged; and
    the process umask is never left changed while other tasks run."""
    from chaosmagnet.errors import ControlError

    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    os.chmod(open_folder, 0o777)
    seen: set[int] = set()

    async def scenario() -> None:
        engine = _engine(tmp_path)
        done = asyncio.Event()

        async def watch_umask() -> None:
            while not done.is_set():
                seen.add(_umask())
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch_umask())
        await asyncio.sleep(0)
        server = ControlServer(engine, shared / "control.sock")
        await server.start()
        try:
            assert os.stat(shared).st_mode & 0o7777 == 0o1777
            assert os.stat(server.path).st_mode & 0o777 == 0o600
            assert (await asyncio.wait_for(_status(server.path), 10))["ok"] is True
        finally:
            await server.stop()
            done.set()
            await watcher
        with pytest.raises(ControlError, match="writable by other users"):
            await ControlServer(engine, open_folder / "control.sock").start()
        assert os.stat(open_folder).st_mode & 0o777 == 0o777

    before = _umask()
    asyncio.run(scenario())
    assert seen == {before}


async def _status(path: Path) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(b'{"op": "status"}\n')
    await writer.drain()
    answer = json.loads(await reader.readline())
    writer.close()
    await writer.wait_closed()
    return answer
