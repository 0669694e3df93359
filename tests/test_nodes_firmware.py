"""The node firmware, run under a real MicroPython VM (WebAssembly port, by Node)
and under CPython, against the shared wire vectors: HMAC (RFC 4231), HKDF
(RFC 5869), frames, handshakes and session keys, authenticated commands,
cutoffs, health counters and a whole node session, byte for byte."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from nodes_helpers import (
    FIRMWARE,
    FIRMWARE_LIB,
    MP_DIR,
    ROOT,
    load_vectors,
    mpy_cross,
    run_micropython,
)

VECTORS = load_vectors()

SCENARIO_MAIN = """
import sys
sys.path.append('/lib')
sys.path.append('/mp')
import scenario
print(scenario.main(open('/data/wire-vectors.json').read()))
"""


@pytest.fixture(scope="module")
def micropython_result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("mp")
    out = run_micropython(
        SCENARIO_MAIN,
        tmp,
        {FIRMWARE_LIB: "/lib", MP_DIR: "/mp", ROOT / "tests" / "data": "/data"},
    )
    return json.loads(out.decode())


@pytest.fixture(scope="module")
def cpython_result() -> dict:
    sys.path[:0] = [str(FIRMWARE_LIB), str(MP_DIR)]
    try:
        import scenario

        return json.loads(
            scenario.main((ROOT / "tests" / "data" / "wire-vectors.json").read_text())
        )
    finally:
        sys.path.remove(str(FIRMWARE_LIB))
        sys.path.remove(str(MP_DIR))


@pytest.fixture(params=["micropython", "cpython"])
def result(request: pytest.FixtureRequest) -> dict:
    return request.getfixturevalue(f"{request.param}_result")


def test_micropython_result_came_from_micropython(tmp_path) -> None:
    out = run_micropython("import sys\nprint(sys.implementation.name)", tmp_path)
    assert out.strip() == b"micropython"


def test_hmac_matches_rfc4231(result: dict) -> None:
    assert result["hmac"] == [v["tag"] for v in VECTORS["hmac_sha256"]]


@pytest.mark.parametrize(
    "index", range(len(VECTORS["frames"])), ids=[v["name"] for v in VECTORS["frames"]]
)
def test_frame_bytes_match_host_vectors(result: dict, index: int) -> None:
    assert result["frames"][index] == VECTORS["frames"][index]["frame"]


def test_hkdf_matches_rfc5869(result: dict) -> None:
    assert result["hkdf"] == [v["okm"] for v in VECTORS["hkdf_sha256"]]


@pytest.mark.parametrize(
    "index", range(len(VECTORS["handshakes"])), ids=[v["name"] for v in VECTORS["handshakes"]]
)
def test_handshake_and_session_key_match_host_vectors(result: dict, index: int) -> None:
    """The HANDSHAKE frame, session key and id are the host's, byte for byte; the node's
    command gate accepts the host's command lines once and refuses a replay and a forgery."""
    vector = VECTORS["handshakes"][index]
    got = result["handshakes"][index]
    assert got["frame"] == vector["frame"]
    assert got["session_key"] == vector["session_key"]
    assert got["session_id"] == vector["session_id"]
    assert got["verdicts"] == vector["verdicts"]


def test_firmware_refuses_unauthenticated_commands_and_accepts_authenticated(
    result: dict,
) -> None:
    """stop and rate: ignored before a session, refused unauthenticated, forged or replayed;
    run when authenticated under the session key."""
    states = result["commands"]["states"]
    on = {"adc": True, "rng": True, "jitter": True}
    rates = {"adc": 160, "rng": 320, "jitter": 320}

    def table(state: list) -> tuple[dict, dict]:
        return {n: o for n, o, _ in state}, {n: r for n, _, r in state}

    expected_replies = [
        [],  # stop adc before hello: no session, nothing sent, nothing done
        [],  # hello: handshake + STATUS
        ["error unauthenticated"],
        ["error unauthenticated"],
        ["error bad command tag"],
        ["ok stop adc"],
        ["ok rate jitter 500"],
        ["error replayed command"],
        ["error replayed command"],  # a counter already used, even with a new command
        ["ok start adc"],
        ["ok reboot"],
    ]
    assert [replies for _, replies in states] == expected_replies
    for i in range(5):
        assert table(states[i][0]) == (on, rates)
    assert table(states[5][0]) == (on | {"adc": False}, rates)
    assert table(states[7][0]) == (on | {"adc": False}, rates | {"jitter": 500})
    assert table(states[9][0]) == (on, rates | {"jitter": 500})
    assert result["commands"]["refused"] == 6
    assert result["commands"]["reboot"] is True


def test_short_writes_are_finished_and_stalled_frames_counted(result: dict) -> None:
    assert result["short_write_session"] == result["session"]
    nbytes, frames, dropped = result["stalled"]
    assert nbytes == 0 and frames == 0 and dropped > 10


def test_cutoffs_match_host(result: dict) -> None:
    expected = [[v["rct"], v["apt_window"], v["apt"]] for v in VECTORS["cutoffs"]]
    assert result["cutoffs"] == expected


def test_health_counters_match_host_kernel(result: dict) -> None:
    assert result["health"] == [v["expect"] for v in VECTORS["health"]]


def test_node_session_stream(result: dict) -> None:
    assert result["session"] == VECTORS["node_session"]["stream"]
    assert result["stuck_session"] == VECTORS["node_session"]["stuck_stream"]


def test_node_session_parsed_by_host() -> None:
    """The session stream (made by the firmware) parses on the host into the expected frames."""
    from chaosmagnet.nodes.parser import Drop, FrameParser
    from chaosmagnet.nodes.protocol import FLAG_HEALTH_FAIL, FrameType, SourceId

    session = VECTORS["node_session"]
    config = session["config"]
    node_id, key = bytes.fromhex(config["node_id"]), bytes.fromhex(config["key"])
    challenge = bytes.fromhex("00112233445566778899aabbccddeeff")
    parser = FrameParser({node_id: key})
    parser.session(node_id).hello(challenge)
    events = parser.feed(bytes.fromhex(session["stream"]))
    assert not [e for e in events if isinstance(e, Drop)]
    assert events[0].type is FrameType.HANDSHAKE
    assert parser.session(node_id).boot_counter == 7
    events = events[1:]
    assert [e.sequence for e in events] == list(range(len(events)))
    status = json.loads(events[0].payload)
    assert events[0].type is FrameType.STATUS
    assert status["boot"] == 7 and status["proto"] == 2
    assert [s["name"] for s in status["sources"]] == ["adc", "rng", "jitter"]
    assert status["sources"][0]["rct_cutoff"] == 21 and status["sources"][0]["apt_cutoff"] == 311
    replies = [e.payload.decode() for e in events if e.type is FrameType.REPLY]
    assert replies == [
        "error unauthenticated",
        "error unauthenticated",
        "ok rate adc 320",
        "ok stop rng",
        "error unknown command",
        "error unknown source",
        "error bad rate",
        "error replayed command",
        "error bad command tag",
        "ok quiet",
        "ok reboot",
    ]
    statuses = [json.loads(e.payload) for e in events if e.type is FrameType.STATUS]
    assert statuses[-1]["refused_commands"] == 5 and statuses[-1]["dropped_frames"] == 0
    data = [e for e in events if e.type is FrameType.DATA]
    assert {e.source for e in data} == {SourceId.ADC, SourceId.RNG, SourceId.JITTER}
    adc = [e for e in data if e.source is SourceId.ADC]
    assert all(e.bits == 12 and len(e.payload) == 32 for e in adc)
    assert all(not e.flags & FLAG_HEALTH_FAIL for e in data)
    rng = [e for e in data if e.source is SourceId.RNG]
    assert all(e.flags & 0x02 for e in rng)
    # timestamps are ms since boot across the ticks_ms wrap: never decreasing
    stamps = [e.timestamp_ms for e in events]
    assert stamps == sorted(stamps) and stamps[-1] > 1000
    # the recording is worthless to any other connection: another challenge credits nothing
    replayed = FrameParser({node_id: key})
    replayed.session(node_id).hello(bytes(16))
    assert not [e for e in replayed.feed(bytes.fromhex(session["stream"])) if not isinstance(e, Drop)]
    stuck_parser = FrameParser({node_id: key})
    stuck_parser.session(node_id).hello(challenge)
    parser_events = stuck_parser.feed(bytes.fromhex(session["stuck_stream"]))
    stuck_adc = [e for e in parser_events if not isinstance(e, Drop) and e.source is SourceId.ADC]
    assert any(e.flags & FLAG_HEALTH_FAIL for e in stuck_adc)
    assert stuck_adc[-1].rct_failures > 0


def test_session_reboot_requested(result: dict) -> None:
    assert result["session_reboot"] is True


def test_every_firmware_file_compiles_for_esp32s3(tmp_path) -> None:
    """mpy-cross (MicroPython's own compiler) for the S3's Xtensa: viper/native included."""
    tool = mpy_cross()
    files = sorted(FIRMWARE.rglob("*.py"))
    assert len(files) >= 10
    for path in files:
        proc = subprocess.run(
            [tool, "-march=xtensawin", "-o", str(tmp_path / "out.mpy"), str(path)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, f"{path}: {proc.stderr}"


def test_portable_firmware_compiles_and_imports_under_micropython(tmp_path) -> None:
    """Every firmware file compiles in the MicroPython VM; the portable ones import
    (chaosnode.app imports the board's esp32 and machine modules only when it runs)."""
    sources = {}
    for path in sorted(FIRMWARE.rglob("*.py")):
        text = path.read_text()
        if "@micropython." in text:
            continue  # native code cannot be emitted by the WebAssembly port; mpy-cross checks it
        sources[str(path.relative_to(FIRMWARE))] = text
    code = (
        "import json, sys\nsys.path.append('/lib')\nsrc = json.loads("
        + repr(json.dumps(sources))
        + ")\n"
    )
    code += (
        "for name in sorted(src):\n"
        "    compile(src[name], name, 'exec')\n"
        "import chaosnode.node, chaosnode.config, chaosnode.session, chaosnode.app, chaosnode.mqtt\n"
        "print(len(src))\n"
    )
    out = run_micropython(code, tmp_path, {FIRMWARE_LIB: "/lib"})
    assert int(out.decode().strip()) == len(sources) and len(sources) >= 8


def test_key_provisioning_script_compiles_for_esp32s3(tmp_path) -> None:
    """The script deploy runs once to put the key into NVS is board code: mpy-cross checks it."""
    from chaosmagnet.nodes.tools import provision_script

    tool = mpy_cross()
    script = tmp_path / "chaosnode_provision.py"
    script.write_text(provision_script(bytes(range(32))))
    proc = subprocess.run(
        [tool, "-march=xtensawin", "-o", str(tmp_path / "out.mpy"), str(script)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


APP_MAIN = """
import sys, json
sys.path.append('/lib')
sys.path.append('/mp')
from fake_board import FakeNVS, KbdIntr, install_esp32
from fake_hal import FakeHal
nvs = FakeNVS()
esp32 = install_esp32(nvs)
exec(open('/stage/chaosnode_provision.py').read())  # what deploy runs once on the board
from chaosnode.app import prepare
config = json.loads(open('/stage/config.json').read())
kbd = KbdIntr()
out = bytearray()

def write(buf):
    out.extend(buf)
    return len(buf)

def make_hal(config, boots):
    return FakeHal(0, False, boots)

result = {'namespaces': esp32.namespaces}
result['maintenance'] = prepare(config, nvs, True, kbd, make_hal, write) is None
result['kbd_after_maintenance'] = list(kbd.calls)
result['no_key'] = prepare(config, FakeNVS(), False, kbd, make_hal, write) is None
node = prepare(config, nvs, False, kbd, make_hal, write)
node.feed_commands(b'hello ' + CHALLENGE + b'\\n')
node.feed_commands(b'stop adc\\n')
result['first'] = ''.join('%02x' % b for b in out)
out[:] = b''
again = prepare(config, nvs, False, kbd, make_hal, write)
again.feed_commands(b'hello ' + CHALLENGE + b'\\n')
result['second'] = ''.join('%02x' % b for b in out)
result['kbd'] = kbd.calls
result['boots'] = nvs.ints['boots']
result['key_in_config'] = 'key' in config
print(json.dumps(result))
"""


def test_deployed_node_key_from_nvs_repl_interrupt_off_boot_counted(tmp_path) -> None:
    """Under the MicroPython VM: deploy's provisioning script puts the key in NVS; the app
    (chaosnode.app.prepare) starts nothing in maintenance mode or without a key, otherwise
    counts the boot in NVS, disables the REPL interrupt and runs a node whose handshake
    verifies on the host with the key that never was in the config file."""
    from chaosmagnet.nodes.boards import load_board
    from chaosmagnet.nodes.parser import Drop, FrameParser
    from chaosmagnet.nodes.protocol import FrameType
    from chaosmagnet.nodes.simulator import node_config
    from chaosmagnet.nodes.tools import provision_script

    key, node_id = bytes(range(50, 82)), bytes.fromhex("0a0b0c0d0e0f1011")
    challenge = bytes(range(16))
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "chaosnode_provision.py").write_text(provision_script(key))
    config = node_config(node_id, None, load_board("um_feathers3"), "appnode")
    (stage / "config.json").write_text(json.dumps(config))
    code = APP_MAIN.replace("CHALLENGE", repr(challenge.hex().encode()))
    out = run_micropython(code, tmp_path, {FIRMWARE_LIB: "/lib", MP_DIR: "/mp", stage: "/stage"})
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["namespaces"] == ["chaosnode"]
    assert result["maintenance"] and result["kbd_after_maintenance"] == []
    assert result["no_key"]
    assert result["kbd"] == [-1, -1] and result["boots"] == 2
    assert result["key_in_config"] is False
    for stream, boot in ((result["first"], 1), (result["second"], 2)):
        parser = FrameParser({node_id: key}, {node_id: 1})
        parser.session(node_id).hello(challenge)
        events = parser.feed(bytes.fromhex(stream))
        frames = [e for e in events if not isinstance(e, Drop)]
        assert frames[0].type is FrameType.HANDSHAKE and frames[1].type is FrameType.STATUS
        assert parser.session(node_id).boot_counter == boot
        assert not [e for e in events if isinstance(e, Drop)]
        # the unauthenticated stop after the hello was refused
        if boot == 1:
            assert frames[-1].payload == b"error unauthenticated"
