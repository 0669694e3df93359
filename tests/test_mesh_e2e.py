"""End to end, all real: mosquitto, two `chaos-host run --mesh` processes with their own
CHAOS_HOME, a Wi-Fi node (`nodes simulate --link mqtt`) read by alice, and `chaos-host
collector` serving the fleet page, checked over HTTP and in headless Chromium.  Killing a
host makes the broker publish its last will: offline."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mesh_helpers import Broker, env_for, free_port, make_host_home, start_broker

HOSTS = ("alice", "bob")
WIFI_NODE = "wifi1"
NODE_SOURCES = {f"node:{WIFI_NODE}:{s}" for s in ("adc", "rng", "jitter")}
FAST_MESH = "[mesh]\nstatus_interval = 0.5\nseed_interval = 0.5\nseed_bytes = 40\n"


@dataclass
class Fleet:
    """A broker, two host processes and a collector process."""

    broker: Broker
    root: Path
    collector: subprocess.Popen[bytes]
    collector_log: Path
    web: str
    hosts: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    token: str = ""
    node: subprocess.Popen[bytes] | None = None

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.web + path, timeout=10) as response:
            return json.loads(response.read())

    def fleet(self) -> dict[str, Any]:
        return self.get("/api/fleet")


def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (urllib.error.URLError, ConnectionError, KeyError, IndexError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _chaos(*args: str) -> list[str]:
    return [sys.executable, "-m", "chaosmagnet", *args]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    broker = start_broker(root, list(HOSTS), ["collector"])
    from chaosmagnet.mesh.setup import add_client

    add_client(broker.setup, WIFI_NODE, "node", owner="alice")
    broker.process.send_signal(signal.SIGHUP)  # mosquitto rereads passwd and acl
    time.sleep(0.5)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        collector_home = root / "collector-home"
        shutil.copytree(broker.client("collector").folder, collector_home / "mesh" / "client")
        port = free_port()
        log = root / "collector.log"
        env = env_for(collector_home)
        with open(log, "wb") as out:
            collector = subprocess.Popen(
                _chaos(
                    "collector",
                    "--mesh",
                    broker.url,
                    "--db",
                    str(root / "fleet.db"),
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--offline-after",
                    "5",
                ),
                env=env,
                cwd=collector_home,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes.append(collector)
        running = Fleet(broker, root, collector, log, f"http://127.0.0.1:{port}")
        for label in HOSTS:
            home = root / label
            make_host_home(home)
            shutil.copytree(broker.client(label).folder, home / "mesh" / "client")
            (home / "chaos.toml").write_text(FAST_MESH)
            env = env_for(home)
            env["CHAOS_CONTROL_SOCKET"] = str(home / "control.sock")
            node_args: list[str] = []
            if label == "alice":  # alice holds the Wi-Fi node's key: the simulator registers it in her home
                shutil.copytree(broker.client(WIFI_NODE).folder, home / "mesh" / "clients" / WIFI_NODE)
                with open(home / "node.log", "wb") as out:
                    running.node = subprocess.Popen(
                        _chaos("nodes", "simulate", "--link", "mqtt", "--label", WIFI_NODE, "--mesh-url", broker.url),
                        env=env,
                        cwd=home,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                processes.append(running.node)
                node_log = home / "node.log"
                wait_for(lambda log=node_log: "harvest it" in log.read_text(), 30, "the Wi-Fi node")
                node_args = ["--node", WIFI_NODE]
            with open(home / "run.log", "wb") as out:
                process = subprocess.Popen(
                    _chaos(
                        "run", "--mesh", broker.url, "--source", "os-rng", "--source", "cpu-jitter",
                        *node_args, "--json",
                    ),  # fmt: skip
                    env=env,
                    cwd=home,
                    stdout=subprocess.DEVNULL,
                    stderr=out,
                )
            running.hosts[label] = process
            processes.append(process)
        token_line = wait_for(lambda: re.search(r"\?token=([\w-]+)", log.read_text()), 30, "the collector's link")
        running.token = token_line.group(1)
        yield running
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        broker.stop()


def test_collector_shows_both_hosts_with_verified_status(fleet: Fleet) -> None:
    def both_online() -> bool:
        hosts = {h["label"]: h for h in fleet.fleet()["hosts"]}
        return all(hosts.get(label, {}).get("shown_state") == "online" and hosts[label]["sources"] for label in HOSTS)

    wait_for(both_online, 60, "both hosts online")
    data = fleet.fleet()
    for host in data["hosts"]:
        extra = NODE_SOURCES if host["label"] == "alice" else set()
        assert {s["name"] for s in host["sources"]} == {"os-rng", "cpu-jitter"} | extra
        assert 0 <= host["pool"]["fill"] <= 1
        assert "state" not in host["pool"] and "fingerprint" not in host["pool"]  # never the pool state
        own = json.loads((fleet.root / host["label"] / "keys" / "identity" / "identity.pub.json").read_text())
        assert host["fingerprint"] == own["fingerprint"]
    db = sqlite3.connect(fleet.root / "fleet.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = dict(db.execute("SELECT label, count(*) FROM status GROUP BY label").fetchall())
    assert set(rows) == set(HOSTS) and min(rows.values()) >= 1
    assert db.execute("SELECT count(*) FROM source_status").fetchone()[0] >= 2
    history = fleet.get("/api/hosts/alice/history?seconds=600")
    assert history["pool"] and set(history["sources"]) >= {"os-rng", "cpu-jitter"}


def test_wifi_node_is_credited_by_its_host_and_shown_by_the_collector(fleet: Fleet) -> None:
    """The simulated Wi-Fi node publishes through mosquitto; alice (holding its key and the
    ACL) credits it; bob never reads it; the collector shows its sources under alice."""

    def node_credited() -> bool:
        hosts = {h["label"]: h for h in fleet.fleet()["hosts"]}
        sources = {s["name"]: s for s in hosts["alice"]["sources"]}
        credited = NODE_SOURCES - {f"node:{WIFI_NODE}:rng"}  # rng is conditioned: credit 0 by default
        return all(sources.get(name, {}).get("credited_bits", 0) > 0 for name in credited)

    wait_for(node_credited, 90, "alice crediting the Wi-Fi node")
    bob = {h["label"]: h for h in fleet.fleet()["hosts"]}["bob"]
    assert not [s for s in bob["sources"] if s["name"].startswith("node:")]
    assert fleet.node is not None and fleet.node.poll() is None


def test_peer_shares_arrive_with_credit_zero(fleet: Fleet) -> None:
    def shared() -> bool:
        hosts = {h["label"]: h for h in fleet.fleet()["hosts"]}
        return all(hosts[label]["mesh"]["seeds_received"] >= 2 for label in HOSTS)

    wait_for(shared, 60, "peer seeds both ways")
    for host in fleet.fleet()["hosts"]:
        mesh = host["mesh"]
        assert mesh["peer_credited_bits"] == 0
        assert mesh["peer_bytes_absorbed"] == 40 * mesh["seeds_received"]
        assert mesh["drops"] == {}
        assert mesh["peers"] == [p for p in HOSTS if p != host["label"]]
    assert fleet.fleet()["collector"]["dropped"] == {}


def test_metrics_cover_the_fleet(fleet: Fleet) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(fleet.web + "/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    up = {s.labels["host"]: s.value for s in families["chaosmagnet_fleet_host_up"].samples}
    assert up == {"alice": 1.0, "bob": 1.0}
    states = families["chaosmagnet_fleet_source_state"].samples
    assert {(s.labels["host"], s.labels["source"]) for s in states} >= {("alice", "cpu-jitter"), ("bob", "os-rng")}
    assert families["chaosmagnet_fleet_messages_accepted"].samples


def test_forget_needs_the_token(fleet: Fleet) -> None:
    def post(path: str, token: str | None) -> int:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["X-Chaos-Token"] = token
        request = urllib.request.Request(fleet.web + path, data=b"{}", method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert post("/api/hosts/alice/forget", None) == 403
    assert post("/api/hosts/alice/forget", "wrong" * 10) == 403
    assert post("/api/hosts/nobody/forget", fleet.token) == 404
    request = urllib.request.Request(fleet.web + "/api/fleet", headers={"Host": "evil.example:80"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403


def test_killing_a_host_shows_it_offline(fleet: Fleet) -> None:
    fleet.hosts["bob"].kill()  # SIGKILL: no goodbye; the broker publishes bob's last will
    fleet.hosts["bob"].wait(10)

    def bob_offline() -> bool:
        hosts = {h["label"]: h for h in fleet.fleet()["hosts"]}
        return hosts["bob"]["shown_state"] == "offline" and hosts["alice"]["shown_state"] == "online"

    wait_for(bob_offline, 60, "bob offline")
    alerts = fleet.fleet()["alerts"]
    assert any(
        a["kind"] == "host-offline" and a["label"] == "bob" and "connection lost" in a["message"] for a in alerts
    )
    # alice notices too and stops sending seeds to bob
    wait_for(
        lambda: {h["label"]: h for h in fleet.fleet()["hosts"]}["alice"]["mesh"]["peers"] == [],
        30,
        "alice sees bob gone",
    )


CHROMIUM = Path("/usr/bin/chromium")


def test_fleet_page_in_chromium(fleet: Fleet, tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is in the test extra")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/test installs it)")
    from test_dashboard_browser import CHROMIUM_ARGS, painted_pixels

    screenshot = Path(os.environ.get("CHAOS_FLEET_SCREENSHOT", tmp_path / "fleet.png"))

    async def scenario() -> None:
        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            page = await browser.new_page(viewport={"width": 1440, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            await page.goto(f"{fleet.web}/?token={fleet.token}")
            # Waits are selectors or functions, never bare expressions: Playwright evals a bare
            # expression again on every poll, which the page's CSP (no 'unsafe-eval') refuses
            # whenever the first look is not yet true (a slow machine).
            await page.wait_for_selector('body[data-ready="1"]', timeout=30_000)
            await page.wait_for_selector('#hosts-table tr[data-host="alice"][data-state="online"]', timeout=30_000)
            await page.wait_for_selector('#hosts-table tr[data-host="bob"]', timeout=30_000)
            bob_state = await page.text_content('#hosts-table tr[data-host="bob"] .pill')
            assert bob_state in ("offline", "stale")
            alerts = await page.text_content("#alerts-list")
            assert "bob went offline" in (alerts or "")
            await page.wait_for_selector(
                'section.host-card[data-host="alice"] tr[data-source="cpu-jitter"] .timeline span'
            )
            await page.wait_for_function(
                "() => document.querySelectorAll('section.host-card[data-host=\"alice\"] canvas')[0].width > 0"
            )
            await asyncio.sleep(2.5)  # a second poll so the charts hold a line
            assert await painted_pixels(page, 'section.host-card[data-host="alice"] canvas') > 100
            await page.screenshot(path=str(screenshot), full_page=True)
            assert not errors, errors
            await browser.close()

    asyncio.run(scenario())
    assert screenshot.stat().st_size > 10_000
