"""Node management: registry file (0600, keys never shown), board profiles, the
esptool/mpremote commands built for a port and board, and the nodes CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from chaosmagnet.cli import app
from chaosmagnet.nodes.boards import list_boards, load_board
from chaosmagnet.nodes.registry import NodeRecord, NodeRegistry, registry_transaction
from chaosmagnet.nodes.simulator import node_config
from chaosmagnet.nodes.tools import esptool_commands, mpremote_deploy_command, stage_firmware
from typer.testing import CliRunner

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("home")  # every test in a private CHAOS_HOME


def _record(label: str = "n1", link: str = "/dev/ttyACM0") -> NodeRecord:
    board = load_board("um_feathers3")
    return NodeRecord(
        label,
        bytes(range(8)),
        bytes(range(100, 132)),
        board.name,
        link,
        False,
        board.node_sources_config(),
    )


def test_boards_cover_the_issue_list() -> None:
    boards = {b.name: b for b in list_boards()}
    assert boards["um_feathers3"].micropython_build == "UM_FEATHERS3"
    assert boards["adafruit_feather_esp32s3"].micropython_build == "ESP32_GENERIC_S3"
    assert boards["esp32_s3_devkitc_1"].micropython_build == "ESP32_GENERIC_S3"
    assert "seeed_xiao_esp32s3" in boards
    for b in boards.values():
        assert 1 <= b.adc_pin <= 10  # ADC1 only: ADC2 dies with the radio on
        assert b.chip == "esp32s3" and b.flash_offset == 0
        assert set(b.sources) == {"adc", "rng", "jitter"}


def test_registry_file_is_0600_and_round_trips(home: Path) -> None:
    with registry_transaction() as reg:
        reg.put(_record())
    path = home / "keys" / "nodes.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = NodeRegistry().get("n1")
    assert again.key == bytes(range(100, 132)) and again.node_id == bytes(range(8))
    assert bytes(range(100, 132)).hex() not in repr(again)


def test_registry_rejects_duplicate_node_id() -> None:
    with registry_transaction() as reg:
        reg.put(_record("a"))
    with pytest.raises(Exception, match="already registered"), registry_transaction() as reg:
        reg.put(_record("b"))
    assert [n.label for n in NodeRegistry().nodes()] == ["a"]  # failed transaction saved nothing


def test_corrupt_registry_is_one_clear_error(home: Path) -> None:
    (home / "keys").mkdir()
    (home / "keys" / "nodes.json").write_text("{not json")
    result = runner.invoke(app, ["nodes", "list"])
    assert result.exit_code != 0
    assert "node registry" in str(result.exception)


def test_esptool_commands_for_s3() -> None:
    erase, write = esptool_commands("/dev/ttyACM3", Path("/fw/ESP32_GENERIC_S3.bin"), 921600)
    assert erase == [
        sys.executable,
        "-m",
        "esptool",
        "--chip",
        "esp32s3",
        "--port",
        "/dev/ttyACM3",
        "erase-flash",
    ]
    assert write[-4:] == ["921600", "write-flash", "0x0", "/fw/ESP32_GENERIC_S3.bin"]
    assert "--chip" in write and write[write.index("--chip") + 1] == "esp32s3"


def test_esptool_accepts_the_built_commands() -> None:
    """esptool's own argument parser accepts what we build (no board needed for --help)."""
    import subprocess

    _, write = esptool_commands("/dev/null", Path("fw.bin"))
    sub = write.index("write-flash")
    proc = subprocess.run(write[: sub + 1] + ["--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "ADDRESS" in proc.stdout.upper()


def test_mpremote_command_and_staging_keep_the_key_off_argv_and_off_the_file_system() -> None:
    board = load_board("seeed_xiao_esp32s3")
    key = bytes(range(32))
    config = node_config(bytes(8), None, board, "x1")
    argv = mpremote_deploy_command("/dev/ttyACM1")
    assert argv[:5] == [sys.executable, "-m", "mpremote", "connect", "/dev/ttyACM1"]
    assert key.hex() not in " ".join(argv)
    segments = " ".join(argv[5:]).split(" + ")
    assert segments == [
        "fs cp -r lib :",
        "fs cp boot.py :boot.py",
        "fs cp main.py :main.py",
        "fs cp chaosnode.json :chaosnode.json",
        "run chaosnode_provision.py",  # the key, into NVS; the script is never copied
        "reset",
    ]
    assert "run chaosnode_provision.py" not in " ".join(mpremote_deploy_command("p", False))
    with pytest.raises(ValueError), stage_firmware(node_config(bytes(8), key, board, "x1")):
        pass
    with stage_firmware(config, key) as stage:
        cfg = stage / "chaosnode.json"
        assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
        assert "key" not in json.loads(cfg.read_text())
        assert json.loads(cfg.read_text())["adc_pin"] == 1
        provision = stage / "chaosnode_provision.py"
        assert stat.S_IMODE(provision.stat().st_mode) == 0o600
        assert key.hex() in provision.read_text() and "esp32.NVS" in provision.read_text()
        assert (stage / "main.py").exists() and (stage / "lib" / "chaosnode" / "node.py").exists()
        assert not list(stage.rglob("__pycache__"))
    assert not stage.exists()


def test_mpremote_parses_the_built_command() -> None:
    """mpremote knows every command in our chain (checked without a device)."""
    from mpremote import main as mp_main

    argv = mpremote_deploy_command("/dev/ttyACM1")[3:]
    chained = []
    current: list[str] = []
    for word in argv:
        if word == "+":
            chained.append(current)
            current = []
        else:
            current.append(word)
    chained.append(current)
    assert all(
        c[0] in mp_main._COMMANDS or c[0] in mp_main._BUILTIN_COMMAND_EXPANSIONS for c in chained
    )


def test_cli_add_list_status_remove(home: Path) -> None:
    key_file = home / "k.hex"
    key_file.write_text(bytes(range(32)).hex() + "\n")
    result = runner.invoke(
        app,
        [
            "nodes",
            "add",
            "--label",
            "bench",
            "--node-id",
            "0011223344556677",
            "--board",
            "um_feathers3",
            "--port",
            str(home / "no-such-port"),
            "--key-file",
            str(key_file),
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["nodes", "list", "--json"])
    listing = json.loads(result.output)
    assert listing["nodes"][0]["label"] == "bench" and listing["nodes"][0]["present"] is False
    assert "key" not in listing["nodes"][0]
    assert bytes(range(32)).hex() not in result.output
    result = runner.invoke(app, ["nodes", "status", "bench", "--timeout", "0.3"])
    assert result.exit_code == 1 and "no status" in result.output
    result = runner.invoke(app, ["nodes", "remove", "bench"])
    assert result.exit_code == 0
    assert NodeRegistry().nodes() == []


@pytest.mark.parametrize(
    "args, message",
    [
        (
            [
                "nodes",
                "add",
                "--label",
                "Bad Label",
                "--node-id",
                "00",
                "--board",
                "um_feathers3",
                "--port",
                "p",
                "--key-file",
                "k",
            ],
            "bad node label",
        ),
        (["nodes", "deploy", "--port", "p", "--board", "nope", "--label", "a"], "unknown board"),
        (["nodes", "remove", "ghost"], "no node labelled"),
        (["nodes", "flash", "--port", "p", "--firmware", "/nonexistent.bin"], "no such firmware"),
    ],
)
def test_cli_bad_input_is_one_clear_error(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert message in str(result.exception)


def test_simulate_offers_the_faults_as_a_choice(capsys: pytest.CaptureFixture[str]) -> None:
    from chaosmagnet.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["nodes", "simulate", "--fault", "melt", "--seconds", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'melt' is not one of" in err and "'correlated'" in err
    result = runner.invoke(app, ["nodes", "simulate", "--help"])
    assert "stuck|bias|garbage|replay|correlated|drift|periodic|sag" in result.output
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "melt"], "'melt' is not one of 'stuck', 'bias', 'garbage', 'replay', 'correlated', 'drift', 'periodic', 'sag'"),
        (["--fault-after", "5"], "--fault-after and --fault-for go with --fault"),
        (["--fault", "sag", "--fault-for", "0"], "--fault-for"),
        (["--fault", "sag", "--fault-after", "5", "--link", "ble"], "go with a pty node"),
    ],
)
def test_simulate_fault_options_are_checked(home: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chaosmagnet", "nodes", "simulate", "--seconds", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_flash_refuses_a_file_that_is_not_an_image(home: Path) -> None:
    bogus = home / "fw.bin"
    bogus.write_bytes(b"\x00" * 100_000)
    result = runner.invoke(app, ["nodes", "flash", "--port", "/dev/null", "--firmware", str(bogus)])
    assert "not an ESP32 flash image" in str(result.exception)


def test_deploy_dry_run_keeps_or_rotates_key(home: Path) -> None:
    with registry_transaction() as reg:
        reg.put(_record("n1"))
    kept = runner.invoke(
        app,
        [
            "nodes",
            "deploy",
            "--port",
            "/dev/ttyACM0",
            "--board",
            "um_feathers3",
            "--label",
            "n1",
            "--dry-run",
        ],
    )
    assert "kept key" in kept.output and bytes(range(8)).hex() in kept.output
    rotated = runner.invoke(
        app,
        [
            "nodes",
            "deploy",
            "--port",
            "/dev/ttyACM0",
            "--board",
            "um_feathers3",
            "--label",
            "n1",
            "--rotate-key",
            "--dry-run",
        ],
    )
    assert "rotated key" in rotated.output
    new = runner.invoke(
        app,
        [
            "nodes",
            "deploy",
            "--port",
            "/dev/ttyACM0",
            "--board",
            "um_feathers3",
            "--label",
            "n2",
            "--dry-run",
        ],
    )
    assert "new node" in new.output
    for out in (kept.output, rotated.output, new.output):
        assert bytes(range(100, 132)).hex() not in out
        assert "mpremote connect /dev/ttyACM0" in out
    assert "key is not sent" in kept.output and "run chaosnode_provision.py" not in kept.output
    for out in (rotated.output, new.output):
        assert "sent once over USB into the board's NVS" in out
        assert "run chaosnode_provision.py" in out
    assert NodeRegistry().get("n1").key == bytes(range(100, 132))  # dry run changed nothing


def test_deploy_failure_leaves_registry_untouched(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mpremote against a port that is not a board fails; nothing is registered."""
    missing = str(home / "ttyNONE")
    result = runner.invoke(
        app, ["nodes", "deploy", "--port", missing, "--board", "um_feathers3", "--label", "x"]
    )
    assert result.exit_code != 0
    assert "no such port" in str(result.exception)  # refused before mpremote runs
    assert NodeRegistry().nodes() == []
    assert not os.path.exists(missing)


def test_simulate_refuses_a_link_another_simulator_serves(home: Path) -> None:
    """A second simulator must not take over (and later delete) a live simulator's port link."""
    import pty

    from chaosmagnet.nodes.simulator import PtyEndpoint

    master, slave = pty.openpty()
    try:
        link = home / "busy.tty"
        os.symlink(os.ttyname(slave), link)
        result = runner.invoke(app, ["nodes", "simulate", "--label", "sim2", "--link", str(link), "--seconds", "0"])
        assert result.exit_code != 0
        assert "already points to a live pty" in str(result.exception)
        assert os.readlink(link) == os.ttyname(slave)  # left alone
        assert NodeRegistry().find("sim2") is None  # nothing registered
    finally:
        os.close(master)
        os.close(slave)
    # An endpoint whose link was taken over leaves the newcomer's link in place when it closes.
    endpoint = PtyEndpoint(home / "shared.tty")
    other_master, other_slave = pty.openpty()
    try:
        os.unlink(home / "shared.tty")
        os.symlink(os.ttyname(other_slave), home / "shared.tty")
        endpoint.close()
        assert os.readlink(home / "shared.tty") == os.ttyname(other_slave)
    finally:
        os.close(other_master)
        os.close(other_slave)
