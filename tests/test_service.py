"""Running as a service (issue 14): the unit passes systemd-analyze verify, READY and the
watchdog reach a socket standing in for systemd's NOTIFY_SOCKET, SIGTERM stops with the
summary, SIGHUP reloads chaos.toml."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from chaosmagnet.service import plan_unit, unit_text


def _verify(unit: Path, scope: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (scripts/test installs systemd)")
    env = dict(os.environ)
    args = [tool]
    if scope == "user":
        runtime = tmp_path / "xdg-runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)
        args.append("--user")
    return subprocess.run(args + ["verify", str(unit)], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize(("scope", "feed"), [("system", True), ("system", False), ("user", False)])
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path, scope: str, feed: bool) -> None:
    plan = plan_unit(scope, feed_kernel=feed)
    unit = tmp_path / "chaos-host.service"
    unit.write_text(plan.text)
    result = _verify(unit, scope, tmp_path)
    assert result.returncode == 0, result.stderr
    # verify exits 0 on settings it ignores: any complaint about our file is a failure
    assert str(unit) not in result.stderr, result.stderr
    text = plan.text
    assert "Type=notify" in text and "Restart=on-failure" in text and "NoNewPrivileges=yes" in text
    assert "ProtectSystem=strict" in text and "StateDirectory=chaosmagnet" in text
    if scope == "system":
        assert f"CapabilityBoundingSet={'CAP_SYS_ADMIN' if feed else ''}\n" in text
    assert ("--feed-kernel" in text) is feed


def test_a_broken_unit_is_caught_by_the_check(tmp_path: Path) -> None:
    unit = tmp_path / "chaos-host.service"
    unit.write_text(unit_text("system", ["/bin/true"], feed_kernel=False).replace("Type=notify", "Type=notifyy"))
    result = _verify(unit, "system", tmp_path)
    assert str(unit) in result.stderr  # the check the test above relies on can fail


def test_a_user_unit_cannot_feed_the_kernel() -> None:
    from chaosmagnet.errors import UsageError

    with pytest.raises(UsageError, match="system service"):
        plan_unit("user", feed_kernel=True)


def test_install_and_uninstall_write_and_remove_the_unit(tmp_path: Path) -> None:
    env = dict(os.environ, CHAOS_SYSTEMD_DIR=str(tmp_path / "units"), CHAOS_HOME=str(tmp_path))
    chaos = [sys.executable, "-m", "chaosmagnet", "service"]
    done = subprocess.run(chaos + ["install", "--system", "--no-feed-kernel", "--source", "cpu-jitter"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    unit = tmp_path / "units" / "chaos-host.service"
    assert unit.is_file() and oct(unit.stat().st_mode & 0o777) == "0o644"
    assert "run --source cpu-jitter" in unit.read_text()
    status = subprocess.run(chaos + ["status", "--system"], env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "installed" in status.stdout
    gone = subprocess.run(chaos + ["uninstall", "--system"], env=env, capture_output=True, text=True, timeout=60)
    assert gone.returncode == 0, gone.stderr
    assert not unit.exists()
    again = subprocess.run(chaos + ["uninstall", "--system"], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and again.stderr.startswith("chaos-host: error: no unit at")


class NotifySocket:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="cm-notify-", dir="/tmp"))
        self.path = self.folder / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.5)
        self.messages: list[str] = []

    def wait_for(self, line: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line in m.splitlines() for m in self.messages):
                return True
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        return any(line in m.splitlines() for m in self.messages)

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _start_run(tmp_path: Path, *args: str, env_extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ, CHAOS_HOME=str(tmp_path), **(env_extra or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "chaosmagnet", "run", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ready_watchdog_and_stopping_reach_notify_socket_and_sigterm_stops_cleanly(tmp_path: Path) -> None:
    notify = NotifySocket()
    try:
        proc = _start_run(
            tmp_path, "--source", "cpu-jitter",
            env_extra={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"},
        )
        try:
            assert notify.wait_for("READY=1", 60), notify.messages
            status = [m for m in notify.messages if "READY=1" in m][0]
            assert "STATUS=" in status and "pool" in status
            assert notify.wait_for("WATCHDOG=1", 10), notify.messages
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert "ran " in out and "cpu-jitter" in out  # the summary, for the journal
        assert notify.wait_for("STOPPING=1", 5), notify.messages
    finally:
        notify.close()


def test_sighup_reloads_chaos_toml(tmp_path: Path) -> None:
    config = tmp_path / "chaos.toml"
    config.write_text("[sources.os-rng]\ncredit_h = 0\n")
    proc = _start_run(tmp_path, "--source", "os-rng", "--json")
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["sources"][0]["credit_h"] == 0
        config.write_text("[sources.os-rng]\ncredit_h = 6\n")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while True:
            line = json.loads(proc.stdout.readline())
            if line["sources"][0]["credit_h"] == 6:
                break
            assert time.monotonic() < deadline, line
        config.write_text("[sources.os-rng]\ncredit_h = \n")  # broken: the running settings stay
        proc.send_signal(signal.SIGHUP)
        for _ in range(3):
            line = json.loads(proc.stdout.readline())
        assert line["sources"][0]["credit_h"] == 6
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "configuration reloaded: os-rng: credit_h 0 -> 6" in err
    assert "reload refused, keeping the running settings" in err
