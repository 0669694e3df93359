"""Wi-Fi nodes over MQTT against a real mosquitto on loopback (the mesh's fixtures).

The node is the firmware's Node and MQTT link (chaosnode.mqtt) over paho-mqtt,
in a thread; the host is a real Engine whose node sources read through the
MQTT transport into the one parser and handshake.  The broker's ACL is
checked by mosquitto itself.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from chaosmagnet.config import Config
from chaosmagnet.engine import Engine
from chaosmagnet.mesh.setup import add_client, assign_node
from chaosmagnet.mqtt.url import parse_broker_url
from chaosmagnet.nodes.boards import load_board
from chaosmagnet.nodes.mqtt import MqttLink, MqttNodeBus, node_topic
from chaosmagnet.nodes.mqtt_sim import MqttNodeSim
from chaosmagnet.nodes.registry import NodeRecord, new_key, new_node_id
from chaosmagnet.nodes.simulator import node_config
from chaosmagnet.nodes.sources import NodeConnection, NodeSource, build_node_sources
from mesh_helpers import MESH, Broker, start_broker

pytestmark = pytest.mark.slow

HOSTS = ["alice", "bob"]
NODES = {"wifi1": "alice", "wifi2": "alice", "wifi3": "bob"}
REPLAY_REASONS = {"stale_handshake", "other_session", "no_session"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    root = tmp_path_factory.mktemp("broker")
    running = start_broker(root, HOSTS, ["collector"])
    for label, owner in NODES.items():
        add_client(running.setup, label, "node", owner=owner)
    running.process.send_signal(1)  # SIGHUP: mosquitto reloads passwd and acl
    time.sleep(0.5)
    yield running
    running.stop()


class SimThread(threading.Thread):
    """A simulated Wi-Fi node running in this process until stop()."""

    def __init__(self, broker: Broker, label: str, fault: str | None = None) -> None:
        super().__init__(daemon=True)
        board = load_board("um_feathers3")
        self.node_id, self.key = new_node_id(), new_key()
        config = node_config(self.node_id, self.key, board, label)
        self.sim = MqttNodeSim(config, broker.client(label), parse_broker_url(broker.url), fault=fault)
        self.record = NodeRecord(
            label, self.node_id, self.key, board.name, f"mqtt:{label}", True, board.node_sources_config()
        )
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                wait = self.sim.step()
                if wait > 0:
                    time.sleep(wait)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.sim.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


@pytest.fixture
def node(broker: Broker) -> Iterator[SimThread]:
    thread = SimThread(broker, "wifi1")
    thread.start()
    yield thread
    thread.stop()
    assert thread.error is None


def _bus(broker: Broker, host: str) -> MqttNodeBus:
    return MqttNodeBus(broker.client(host), parse_broker_url(broker.url))


def _factory(bus: MqttNodeBus, tap: Callable[[bytes], None] | None = None) -> Callable[..., Any]:
    def make(address: str, on_bytes: Callable[[bytes], None], **kw: Any) -> MqttLink:
        def tapped(data: bytes) -> None:
            if tap is not None:
                tap(data)
            on_bytes(data)

        return MqttLink(address, tapped, bus=bus, **kw)

    return make


def _engine(record: NodeRecord, factory: Callable[..., Any]) -> Engine:
    sources = build_node_sources(record, link_factory=factory, boot_store=None)
    return Engine(sources, Config(assessment_enabled=False, min_samples=512, recovery_samples=10**5))


def _connection(engine: Engine) -> NodeConnection:
    for runtime in engine._runtimes.values():
        if isinstance(runtime.source, NodeSource):
            return runtime.source.connection
    raise AssertionError("no node source")


def _credit(engine: Engine, label: str) -> float:
    states = engine.source_states()
    return sum(states[f"node:{label}:{s}"]["credited_bits"] for s in ("adc", "jitter", "rng"))


def _samples(engine: Engine, label: str) -> int:
    states = engine.source_states()
    return sum(states[f"node:{label}:{s}"]["samples"] for s in ("adc", "jitter", "rng"))


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_wifi_node_is_credited_by_its_host_through_mosquitto(broker: Broker, node: SimThread) -> None:
    """End to end: firmware node -> umqtt-style client -> mosquitto (TLS, ACL) -> MqttLink ->
    the one parser and handshake -> the engine credits it; an authenticated command is answered."""
    recording = bytearray()

    async def main() -> None:
        bus = _bus(broker, "alice")
        engine = _engine(node.record, _factory(bus, recording.extend))
        await engine.start()
        try:
            connection = _connection(engine)
            await _until(lambda: connection.verified, "the handshake over MQTT")
            assert connection.link.state == "linked" and connection.link_state == "linked"
            await _until(lambda: _credit(engine, "wifi1") > 300, "credit from the Wi-Fi node")
            assert connection.send_command("status")
            await _until(lambda: connection.status is not None and connection.status.get("label") == "wifi1", "STATUS")
            assert connection.send_command("stop jitter")
            await _until(lambda: any("ok stop jitter" in r for r in connection.replies), "the command's reply")
            summary = connection.summary()
            assert summary["drops"] == {} and summary["verified"] and summary["port"] == "mqtt:wifi1"
            assert bus.drops | {"unlinked": 0} == {"wrong_topic": 0, "oversized": 0, "bad_state": 0, "unlinked": 0}
        finally:
            await engine.stop()

    asyncio.run(main())
    assert len(recording) > 4000


def test_recorded_mqtt_session_replayed_into_a_new_connection_credits_nothing(broker: Broker, node: SimThread) -> None:
    """Record the frames payloads of one host's session; play them, message by message, into a
    fresh host connection (its own hello, its own challenge): 0 bits, every frame dropped."""
    recording: list[bytes] = []

    async def record() -> None:
        engine = _engine(node.record, _factory(_bus(broker, "alice"), recording.append))
        await engine.start()
        try:
            await _until(lambda: _credit(engine, "wifi1") > 200, "the recorded session's credit")
        finally:
            await engine.stop()

    asyncio.run(record())

    async def live() -> None:
        """The recording spliced into a live session (as a broker operator could): dropped,
        the live session never displaced, credit keeps rising."""
        bus = _bus(broker, "alice")
        engine = _engine(node.record, _factory(bus))
        await engine.start()
        try:
            connection = _connection(engine)
            await _until(lambda: _credit(engine, "wifi1") > 100, "live credit")
            live_key = connection.session.session_key
            before = _credit(engine, "wifi1")
            for payload in recording:
                bus.dispatch(node_topic(MESH, "wifi1", "frames"), payload)
            await _until(lambda: _credit(engine, "wifi1") > before + 300, "credit to keep rising")
            drops = connection.summary()["drops"]
            assert drops.get("stale_handshake", 0) >= 1 and drops.get("other_session", 0) >= 1, drops
            assert connection.session.handshakes == 1 and connection.session.session_key == live_key
        finally:
            await engine.stop()

    asyncio.run(live())
    node.stop()  # the real node goes away; the attacker plays its recording instead
    assert len(b"".join(recording)) > 2000

    async def replay() -> None:
        bus = _bus(broker, "alice")
        engine = _engine(replace(node.record, boot_counter=0), _factory(bus))
        await engine.start()
        try:
            connection = _connection(engine)
            link = connection.link
            await _until(lambda: bus.state == "linked", "the bus")
            link.on_state(b"online replayed")  # as if the node announced a new connection
            await _until(lambda: connection.hellos >= 1, "the host's hello")
            for payload in recording:
                bus.dispatch(node_topic(MESH, "wifi1", "frames"), payload)
            await asyncio.sleep(0.5)
            assert _credit(engine, "wifi1") == 0 and _samples(engine, "wifi1") == 0
            assert not connection.verified
            drops = connection.summary()["drops"]
            assert drops.get("stale_handshake", 0) >= 1 and drops.get("no_session", 0) >= 1, drops
            assert set(drops) <= REPLAY_REASONS | {"bad_magic"}, drops
            assert connection.parser.frames_accepted == 0
        finally:
            await engine.stop()

    asyncio.run(replay())


def test_forged_wrong_topic_and_oversized_messages_are_dropped(broker: Broker, node: SimThread) -> None:
    """Messages on a topic the host reads for no node, on the cmd topic, too large, or
    garbage on the right topic: counted and dropped while the node's credit continues."""

    async def main() -> None:
        bus = _bus(broker, "alice")
        engine = _engine(node.record, _factory(bus))
        await engine.start()
        try:
            connection = _connection(engine)
            await _until(lambda: _credit(engine, "wifi1") > 100, "credit")
            before = _credit(engine, "wifi1")
            bus.dispatch(node_topic(MESH, "nobody", "frames"), b"x" * 100)
            bus.dispatch(node_topic(MESH, "wifi1", "cmd"), b"hello 00")
            bus.dispatch(f"chaosmagnet/{MESH}/host/bob/status", b"{}")
            bus.dispatch("not/a/topic/at/all", b"")
            bus.dispatch(node_topic(MESH, "wifi1", "frames"), b"\x00" * (70 * 1024))
            bus.dispatch(node_topic(MESH, "wifi1", "frames"), bytes(range(256)) * 3)
            bus.dispatch(node_topic(MESH, "wifi1", "state"), b"\xff" * 300)  # nonsense state: ignored
            assert bus.drops["wrong_topic"] == 4 and bus.drops["oversized"] == 1 and bus.drops["bad_state"] == 1
            await _until(lambda: connection.verified and _credit(engine, "wifi1") > before + 100, "credit after")
            assert connection.summary()["drops"]
        finally:
            await engine.stop()

    asyncio.run(main())


def test_garbage_from_the_node_is_dropped_with_reasons(broker: Broker) -> None:
    """The node's own wire faults (garbage between frames) through the broker: drops, credit continues."""
    thread = SimThread(broker, "wifi2", fault="garbage")
    thread.start()

    async def main() -> None:
        engine = _engine(thread.record, _factory(_bus(broker, "alice")))
        await engine.start()
        try:
            connection = _connection(engine)
            await _until(lambda: _credit(engine, "wifi2") > 200, "credit despite garbage")
            assert sum(connection.summary()["drops"].values()) > 0
        finally:
            await engine.stop()

    try:
        asyncio.run(main())
    finally:
        thread.stop()
    assert thread.error is None


def test_other_host_cannot_read_or_command_a_node(broker: Broker, node: SimThread) -> None:
    """bob holds no ACL for alice's node: he never sees its state or frames, so never links."""

    async def main() -> None:
        bus = _bus(broker, "bob")
        engine = _engine(node.record, _factory(bus))
        await engine.start()
        try:
            connection = _connection(engine)
            await _until(lambda: bus.state == "linked", "bob's bus")
            await asyncio.sleep(1.5)
            assert connection.link.state == "waiting" and connection.hellos == 0
            assert _samples(engine, "wifi1") == 0
        finally:
            await engine.stop()

    asyncio.run(main())


def _mosquitto(broker: Broker, label: str, *args: str) -> list[str]:
    client = broker.client(label)
    return [
        *args,
        "-h", "127.0.0.1", "-p", str(broker.port), "--cafile", str(client.ca_file),
        "--cert", str(client.cert_file), "--key", str(client.key_file),
        "-u", label, "-P", client.password, "-V", "mqttv5",
    ]  # fmt: skip


def test_acl_refuses_a_node_publishing_as_another(broker: Broker) -> None:
    """mosquitto drops wifi3's publish on wifi1's frames and state topics, and its subscription
    to wifi1's commands; wifi1's own publish arrives.  Checked with mosquitto's own clients."""
    sub = subprocess.Popen(
        _mosquitto(broker, "alice", "mosquitto_sub", "-t", node_topic(MESH, "wifi1", "frames"), "-v", "-W", "6"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    spy = subprocess.Popen(
        _mosquitto(broker, "wifi3", "mosquitto_sub", "-t", node_topic(MESH, "wifi1", "cmd"), "-v", "-W", "6"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)
    pub = ["mosquitto_pub", "-q", "1"]
    forged = subprocess.run(
        _mosquitto(broker, "wifi3", *pub, "-t", node_topic(MESH, "wifi1", "frames"), "-m", "forged-by-wifi3"),
        capture_output=True,
        timeout=20,
    )
    state = subprocess.run(
        _mosquitto(broker, "wifi3", *pub, "-t", node_topic(MESH, "wifi1", "state"), "-m", "offline"),
        capture_output=True,
        timeout=20,
    )
    own = subprocess.run(
        _mosquitto(broker, "wifi1", *pub, "-t", node_topic(MESH, "wifi1", "frames"), "-m", "from-wifi1"),
        capture_output=True,
        timeout=20,
    )
    command = subprocess.run(
        _mosquitto(broker, "alice", *pub, "-t", node_topic(MESH, "wifi1", "cmd"), "-m", "hello-from-alice"),
        capture_output=True,
        timeout=20,
    )
    bob_command = subprocess.run(
        _mosquitto(broker, "bob", *pub, "-t", node_topic(MESH, "wifi1", "cmd"), "-m", "hello-from-bob"),
        capture_output=True,
        timeout=20,
    )
    seen, _ = sub.communicate(timeout=20)
    spied, _ = spy.communicate(timeout=20)
    assert own.returncode == 0 and command.returncode == 0
    assert b"from-wifi1" in seen
    assert b"forged-by-wifi3" not in seen
    assert b"not authori" in (forged.stderr + forged.stdout).lower().replace(b"authoriz", b"authoris")
    assert b"not authori" in (state.stderr + state.stdout).lower().replace(b"authoriz", b"authoris")
    assert b"not authori" in (bob_command.stderr + bob_command.stdout).lower().replace(b"authoriz", b"authoris")
    assert b"hello-from-alice" not in spied and b"hello-from-bob" not in spied


def test_moving_a_node_to_another_host_moves_the_acl(broker: Broker, tmp_path: Path) -> None:
    """assign_node rewrites the ACL: the new owner reads the node, the old one no longer."""
    acl = (broker.setup.broker_dir / "acl").read_text()
    assert f"topic read chaosmagnet/{MESH}/node/wifi3/frames" in acl.split("user bob")[1].split("user ")[0]
    assign_node(broker.setup, "wifi3", "alice")
    try:
        acl = (broker.setup.broker_dir / "acl").read_text()
        alice_part = acl.split("user alice")[1].split("user ")[0]
        bob_part = acl.split("user bob")[1].split("user ")[0]
        assert "node/wifi3/frames" in alice_part and "node/wifi3" not in bob_part
        assert broker.client("wifi3").owner == "alice"
    finally:
        assign_node(broker.setup, "wifi3", "bob")


MQTT_MAIN = """
import sys
sys.path.append('/lib')
sys.path.append('/mp')
import mqtt_scenario
print(mqtt_scenario.main(open('/data/config.json').read(), {hello!r}, {hello2!r}))
"""


def test_firmware_mqtt_link_under_micropython_and_cpython(tmp_path: Path) -> None:
    """The firmware's MQTT link: last will, subscribe, online announcement, whole frames per
    message (<= MAX_MESSAGE), another topic ignored, a failed publish ends the session, a new
    connection announces a new nonce and needs a new hello; the host's one parser verifies both."""
    import json
    import sys

    from chaosmagnet.nodes.parser import Drop, FrameParser
    from chaosmagnet.nodes.protocol import FrameType
    from nodes_helpers import FIRMWARE_LIB, MP_DIR, run_micropython

    board = load_board("um_feathers3")
    node_id, key = bytes(range(8)), bytes(range(32))
    config = node_config(node_id, key, board, "n1")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "config.json").write_text(json.dumps(config))
    results = {}
    for interpreter in ("micropython", "cpython"):
        parser = FrameParser({node_id: key})
        session = parser.session(node_id)
        hello = session.hello(bytes(range(16)))
        hello2 = session.hello(bytes(range(1, 17)))
        if interpreter == "micropython":
            code = MQTT_MAIN.format(hello=hello.hex(), hello2=hello2.hex())
            out = run_micropython(code, tmp_path, {FIRMWARE_LIB: "/lib", MP_DIR: "/mp", data_dir: "/data"})
            result = json.loads(out.decode())
        else:
            sys.path[:0] = [str(FIRMWARE_LIB), str(MP_DIR)]
            try:
                import mqtt_scenario

                result = json.loads(mqtt_scenario.main(json.dumps(config), hello.hex(), hello2.hex()))
            finally:
                sys.path.remove(str(FIRMWARE_LIB))
                sys.path.remove(str(MP_DIR))
        results[interpreter] = result
        state = "chaosmagnet/m1/node/n1/state"
        assert result["calls"][:3] == [
            ["will", state, b"offline".hex(), True],
            ["connect"],
            ["subscribe", "chaosmagnet/m1/node/n1/cmd"],
        ]
        assert result["connected"] and result["reconnected"]
        assert result["states"] == ["offline", "online", "offline", "online", "offline"]
        assert result["after_loss"] == [True, False, 0]
        assert result["ignored"] == 1
        assert max(result["first_sizes"]) <= result["max_message"] and len(result["first_sizes"]) > 3
        assert result["first_state"] == [[state, "online " + "01" * 8, True]]
        assert result["state_messages"] == [[state, "online " + "02" * 8, True], [state, "offline", True]]
        # each connection's stream verifies under its own hello
        parser2 = FrameParser({node_id: key})
        parser2.session(node_id).hello(bytes(range(16)))
        first = bytes.fromhex(result["first_stream"])
        events = parser2.feed(first)
        assert not [e for e in events if isinstance(e, Drop)] and parser2.buffered == 0
        frames = [e for e in events if not isinstance(e, Drop)]
        assert frames[0].type is FrameType.HANDSHAKE and sum(f.type is FrameType.DATA for f in frames) >= 3
        parser3 = FrameParser({node_id: key})
        parser3.session(node_id).hello(bytes(range(1, 17)))
        events = parser3.feed(bytes.fromhex(result["second_stream"]))
        assert not [e for e in events if isinstance(e, Drop)]
        assert [e for e in events if not isinstance(e, Drop)][0].type is FrameType.HANDSHAKE
    assert results["micropython"]["first_sizes"] == results["cpython"]["first_sizes"]


def _cli(args: list[str], env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    import sys

    return subprocess.run(
        [sys.executable, "-m", "chaosmagnet", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_cli_simulate_link_mqtt_and_run_node_through_the_broker(broker: Broker, tmp_path: Path) -> None:
    """`nodes simulate --link mqtt` in one process and `run --node LABEL` in another: the
    host's mesh folder and the node's folder under one CHAOS_HOME, the broker by --mesh."""
    import json
    import os
    import shutil
    import signal
    import sys

    home = tmp_path / "home"
    (home / "mesh" / "clients").mkdir(parents=True)
    shutil.copytree(broker.setup.clients_dir / "alice", home / "mesh" / "client")
    shutil.copytree(broker.setup.clients_dir / "wifi2", home / "mesh" / "clients" / "wifi2")
    env = dict(os.environ, CHAOS_HOME=str(home))
    env.pop("CHAOS_NODES", None)
    sim = subprocess.Popen(
        [sys.executable, "-m", "chaosmagnet", "nodes", "simulate", "--link", "mqtt", "--label", "wifi2",
         "--mesh-url", broker.url],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        lines = [sim.stdout.readline() for _ in range(3)]
        assert "owner host alice" in "".join(lines), lines
        listed = json.loads(_cli(["nodes", "list", "--json"], env).stdout)
        assert [(n["link"], n["present"]) for n in listed["nodes"]] == [("mqtt:wifi2", None)]
        status = _cli(["nodes", "status", "wifi2"], env)
        # (probe_node's link summary is taken after it closed the link: the STATUS shows it worked)
        assert status.returncode == 0 and "on mqtt:wifi2" in status.stdout, status
        assert "board um_feathers3" in status.stdout and "drops none" in status.stdout, status
        run = _cli(["run", "--node", "wifi2", "--source", "os-rng", "--seconds", "5", "--json"], env)
        assert run.returncode == 0, run.stderr
        summary = json.loads(run.stdout.strip().splitlines()[-1])
        credited = {src["name"]: src["credited_bits"] for src in summary["sources"]}
        assert credited["node:wifi2:adc"] > 0 and credited["node:wifi2:jitter"] > 0
    finally:
        sim.send_signal(signal.SIGTERM)
        _, err = sim.communicate(timeout=20)
    assert "Traceback" not in err and "stopped" in err


def test_cli_refusals_are_one_line(broker: Broker, tmp_path: Path) -> None:
    import os

    env = dict(os.environ, CHAOS_HOME=str(tmp_path))
    env.pop("CHAOS_NODES", None)
    key_file = tmp_path / "key"
    key_file.write_text("ab" * 32)
    add = [
        "nodes",
        "add",
        "--label",
        "w9",
        "--node-id",
        "01" * 8,
        "--board",
        "um_feathers3",
        "--key-file",
        str(key_file),
    ]
    ok = _cli([*add, "--wifi"], env)
    assert ok.returncode == 0, ok.stderr
    run = _cli(["run", "--node", "w9", "--source", "os-rng", "--seconds", "1"], env)  # no mesh folder here
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "client.json" in run.stderr, run.stderr
    status = _cli(["nodes", "status", "w9"], env)
    assert status.returncode == 2 and status.stderr.count("\n") == 1 and "client.json" in status.stderr, status.stderr
    sim = _cli(["nodes", "simulate", "--link", "mqtt", "--label", "w9"], env)
    assert sim.returncode == 2 and sim.stderr.count("\n") == 1 and "Traceback" not in sim.stderr
    node_folder = str(broker.setup.clients_dir / "wifi1")
    wrong = _cli(["nodes", "simulate", "--link", "mqtt", "--label", "w9", "--mesh-client", node_folder], env)
    assert wrong.returncode == 2 and "not node 'w9'" in wrong.stderr
    host_folder = str(broker.setup.clients_dir / "alice")
    dry = ["nodes", "deploy", "--port", "/dev/null", "--board", "um_feathers3", "--dry-run", "--link", "wifi"]
    nossid = _cli([*dry, "--label", "wifi1", "--mesh-client", node_folder], env)
    assert nossid.returncode == 2 and "--ssid" in nossid.stderr
    notnode = _cli([*dry, "--label", "alice", "--ssid", "lab", "--mesh-client", host_folder], env)
    assert notnode.returncode == 2 and "not a node's" in notnode.stderr
    plan = _cli([*dry, "--label", "wifi1", "--ssid", "lab", "--mesh-client", node_folder], env)
    assert plan.returncode == 0, plan.stderr
    assert "mip install umqtt.simple" in plan.stdout and "chaosnode_ca.pem" in plan.stdout
    assert f"broker mqtts://127.0.0.1:{broker.port}" in plan.stdout
    assert broker.client("wifi1").password not in plan.stdout + plan.stderr
    mesh = ["mesh", "add", "--dir", str(broker.setup.root)]
    orphan = _cli([*mesh, "w10", "--node"], env)
    assert orphan.returncode == 2 and "--host" in orphan.stderr
    unknown = _cli([*mesh, "w10", "--node", "--host", "nobody"], env)
    assert unknown.returncode == 2 and "alice" in unknown.stderr


PROVISION_MAIN = """
import sys, json
sys.path.append('/lib')
sys.path.append('/mp')
from fake_board import FakeNVS, install_esp32
nvs = FakeNVS()
install_esp32(nvs)
exec(open('/stage/chaosnode_provision.py').read())
from chaosnode.mqtt import nvs_secret
from chaosnode.app import nvs_key
out = {n: nvs_secret(nvs, n).decode() for n in ('wifi_psk', 'mqtt_pw', 'tls_key')}
out['key'] = ''.join('%02x' % b for b in nvs_key(nvs))
out['missing'] = nvs_secret(FakeNVS(), 'wifi_psk')
print(json.dumps(out))
"""


def test_wifi_secrets_go_to_nvs_with_the_key(broker: Broker, tmp_path: Path) -> None:
    """deploy --link wifi: the provisioning script (run once, never copied) stores the Wi-Fi
    passphrase, MQTT password and TLS key in NVS next to the node key; the firmware reads them
    back under the MicroPython VM; the staged config and files hold none of them; mpy-cross
    compiles the script for the S3."""
    import json

    from chaosmagnet.nodes.mqtt import wifi_node_settings
    from chaosmagnet.nodes.tools import mpremote_deploy_command, stage_firmware
    from nodes_helpers import FIRMWARE_LIB, MP_DIR, mpy_cross, run_micropython

    client = broker.client("wifi1")
    config_extra, secrets, files = wifi_node_settings(
        client, parse_broker_url(broker.url), "lab-net", "correct horse battery"
    )
    key = bytes(range(32))
    config = node_config(bytes(8), None, load_board("um_feathers3"), "wifi1") | config_extra
    with stage_firmware(config, key, secrets, files) as stage:
        staged = {p.name: p.read_bytes() for p in stage.iterdir() if p.is_file()}
        modes = {p.name: p.stat().st_mode & 0o777 for p in stage.iterdir() if p.is_file()}
        out = run_micropython(PROVISION_MAIN, tmp_path, {FIRMWARE_LIB: "/lib", MP_DIR: "/mp", stage: "/stage"})
        compiled = subprocess.run(
            [mpy_cross(), "-march=xtensawin", "-o", str(tmp_path / "p.mpy"), str(stage / "chaosnode_provision.py")],
            capture_output=True, text=True,
        )  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["wifi_psk"] == "correct horse battery" and result["mqtt_pw"] == client.password
    assert result["tls_key"].startswith("-----BEGIN") and result["key"] == key.hex() and result["missing"] is None
    assert modes["chaosnode_provision.py"] == 0o600 and modes["chaosnode.json"] == 0o600
    public = staged["chaosnode.json"] + staged["chaosnode_ca.pem"] + staged["chaosnode_cert.pem"]
    for secret in (b"correct horse battery", client.password.encode(), b"PRIVATE KEY"):
        assert secret not in public
    assert json.loads(staged["chaosnode.json"])["link"] == "wifi"
    argv = " ".join(mpremote_deploy_command("/dev/ttyACM0", True, wifi=True))
    assert "mip install umqtt.simple" in argv and "fs cp chaosnode_cert.pem :chaosnode_cert.pem" in argv
    assert "chaosnode_provision.py :" not in argv  # run, never copied


def test_bench_mesh_nodes_runs_and_reports(tmp_path: Path) -> None:
    """scripts/bench-mesh-nodes' engine, tiny: every node verified, frames accepted, figures present
    (no wall-clock assertion)."""
    from chaosmagnet.mesh.node_bench import nodes_benchmark

    result = nodes_benchmark(nodes=3, hosts=2, rate=1024, feeders=1, seconds=2.0, warmup=1.0)
    assert result["verified_nodes"] == 3 and result["frames_per_s"] > 0
    assert result["drops"] == 0 and len(result["host_cpu_percent_of_one_core"]) == 2
    for name in ("latency_p50_ms", "latency_p99_ms", "broker_cpu_percent_of_one_core"):
        assert isinstance(result[name], float)


def test_broker_away_leaves_the_link_connecting_with_a_reason(broker: Broker) -> None:
    """No broker on the port: the Wi-Fi node's link stays `connecting` with the reason, retries,
    never crashes; the other sources of the engine are unaffected."""
    from chaosmagnet.mqtt.url import BrokerURL
    from mesh_helpers import free_port

    bus = MqttNodeBus(broker.client("alice"), BrokerURL("127.0.0.1", free_port()))
    board = load_board("um_feathers3")
    record = NodeRecord("wifi1", bytes(8), bytes(32), board.name, "mqtt:wifi1", True, board.node_sources_config())

    async def main() -> None:
        engine = _engine(record, _factory(bus))
        await engine.start()
        try:
            connection = _connection(engine)
            await _until(lambda: bus.last_error != "", "the connection error")
            await asyncio.sleep(1.0)
            summary = connection.summary()
            assert summary["link"] == "connecting" and summary["link_state"] == "connecting"
            assert summary["link_error"] and not summary["verified"]
        finally:
            await engine.stop()

    asyncio.run(main())
