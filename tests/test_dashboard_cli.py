"""`chaos-host run --dashboard` end to end: the link printed at start, the API served
from the running aggregator (with a simulated node's link and frame counters), the
token kept out of logs/, and the bad invocations refused with one line."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any

import pytest

CHAOS_HOST = [sys.executable, "-m", "chaosmagnet"]
URL = re.compile(r"dashboard: (http://127\.0\.0\.1:(\d+)/)\?token=([A-Za-z0-9_-]+)")


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CHAOS_PASSPHRASE"}
    env.update(
        CHAOS_HOME=str(home),
        CHAOS_CONTROL_SOCKET=str(home / "control.sock"),
        CHAOS_NODES=str(home / "keys" / "nodes.json"),
        COLUMNS="200",
    )
    return env


class LineReader:
    """Collects a child's output lines in a thread so a test can wait for one."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = pattern.search(line)
                if match:
                    return match
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern.pattern!r} in {self.lines!r}")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def poll(url: str, predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        data = get_json(url)
        if predicate(data):
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: condition not reached; last answer {str(data)[:2000]}")
        time.sleep(0.3)


def test_run_dashboard_with_a_simulated_node(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    simulator = subprocess.Popen(
        [
            *CHAOS_HOST,
            "nodes",
            "simulate",
            "--label",
            "sim1",
            "--fault",
            "garbage",
            "--seconds",
            "90",
            "--link",
            str(tmp_path / "sim1.tty"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = None
    try:
        LineReader(simulator.stdout).wait_for(re.compile(r"^port: "))  # type: ignore[arg-type]
        run = subprocess.Popen(
            [
                *CHAOS_HOST,
                "run",
                "--dashboard",
                "--listen",
                "127.0.0.1:0",
                "--seconds",
                "300",
                "--json",
                "--node",
                "sim1",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        err = LineReader(run.stderr)  # type: ignore[arg-type]
        match = err.wait_for(URL)
        base, token = match.group(1), match.group(3)
        status = poll(
            base + "api/status",
            lambda s: s["nodes"] and s["nodes"][0].get("frames_accepted", 0) > 0,
        )
        (node,) = status["nodes"]
        assert node["label"] == "sim1" and node["link"] == "linked" and node["connected"] is True
        assert node["link_state"] == "linked" and node["link_reason"] == ""
        assert {s["name"] for s in node["sources"]} == {
            "node:sim1:adc",
            "node:sim1:rng",
            "node:sim1:jitter",
        }
        names = {s["name"] for s in status["sources"]}
        assert {"cpu-jitter", "node:sim1:adc"} <= names
        # the garbage fault makes the host drop bytes with reasons; they show up by reason
        node = poll(
            base + "api/status", lambda s: sum(s["nodes"][0]["frames_dropped"].values()) > 0
        )["nodes"][0]
        with urllib.request.urlopen(base + "metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert re.search(
            r'^chaosmagnet_node_frames_accepted_total\{node="sim1"\} [1-9]', metrics, re.M
        )
        assert re.search(
            r'^chaosmagnet_node_frames_dropped_total\{node="sim1",reason="[a-z_]+"\} [1-9]',
            metrics,
            re.M,
        )
        assert re.search(r"^chaosmagnet_nodes_connected 1$", metrics, re.M)
        assert re.search(
            r'^chaosmagnet_node_link_state\{node="sim1",state="linked"\} 1$', metrics, re.M
        )
        # a switch with the token from the printed link, on one of the node's sources:
        # a state change that lands in logs/, while the node's other sources go on
        request = urllib.request.Request(
            base + "api/sources/" + urllib.parse.quote("node:sim1:jitter", safe=""),
            data=b'{"enabled": false}',
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Chaos-Token": token,
                "Origin": base.rstrip("/"),
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["state"] == "stopped"
        adc = lambda s: next(r for r in s["sources"] if r["name"] == "node:sim1:adc")["samples"]  # noqa: E731
        seen = adc(get_json(base + "api/status"))
        status = poll(base + "api/status", lambda s: adc(s) > seen)
        assert status["nodes"][0]["link"] == "linked"
        run.send_signal(signal.SIGTERM)  # `run` stops cleanly on SIGTERM, dashboard and all
        assert run.wait(timeout=60) == 0
    finally:
        for proc in (run, simulator):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
    health = (tmp_path / "logs" / "health.jsonl").read_text()
    assert any(
        json.loads(line).get("source") == "node:sim1:jitter"
        and json.loads(line).get("state") == "stopped"
        for line in health.splitlines()
    )
    # the control token never reaches logs/, keys/ or any other file
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def _free_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--dashboard", "--listen", "0.0.0.0:0"], "--allow-remote"),
        (["--dashboard", "--listen", "192.0.2.7:8765"], "--allow-remote"),
        (["--dashboard", "--listen", "nonsense"], "--listen must be HOST:PORT"),
        (["--listen", "127.0.0.1:0"], "need --dashboard"),
        (["--allow-remote"], "need --dashboard"),
        (["--dashboard", "--listen", "127.0.0.1:{busy}"], "cannot listen on 127.0.0.1:"),
    ],
)
def test_bad_dashboard_invocations(tmp_path: Path, args: list[str], words: str) -> None:
    busy = _free_port()
    try:
        args = [a.replace("{busy}", str(busy.getsockname()[1])) for a in args]
        proc = subprocess.run(
            [*CHAOS_HOST, "run", "--seconds", "30", "--json", "--source", "os-rng", *args],
            cwd=tmp_path,
            env=env_for(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        busy.close()
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("chaos-host")]
    assert len(errors) == 1 and words in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
