"""`nodes list` shows every serial port like `mpremote devs` (ESP32-S3 boards marked, the
registered node each one is), and `nodes flash` writes at the board profile's offset and
checks the image even on --dry-run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from chaosmagnet.cli import app
from chaosmagnet.cli.nodes_commands import serial_ports
from chaosmagnet.nodes import ports as ports_module
from chaosmagnet.nodes.boards import boards_dir, load_board
from chaosmagnet.nodes.ports import PortInfo
from chaosmagnet.nodes.registry import NodeRecord, registry_transaction
from typer.testing import CliRunner

runner = CliRunner()
KEY = bytes(range(100, 132))


pytestmark = pytest.mark.usefixtures("home")  # every test in a private CHAOS_HOME


PORTS = [
    PortInfo("/dev/ttyACM0", "F412FA6B1C30", 0x303A, 0x4001, "Espressif", "ESP32-S3 CDC",
             "/dev/serial/by-id/usb-Espressif_ESP32-S3_F412FA6B1C30-if00"),
    PortInfo("/dev/ttyACM1", "D0CF5E0A", 0x303A, 0x80D1, "Unexpected Maker", "FeatherS3"),
    PortInfo("/dev/ttyUSB0", "A10K7Q2B", 0x0403, 0x6001, "FTDI", "FT232R USB UART"),
    PortInfo("/dev/ttyS0"),
]  # fmt: skip


def _node(label: str, node_id: int, link: str, **identity: object) -> NodeRecord:
    board = load_board("esp32_s3_devkitc_1")
    return NodeRecord(
        label, bytes([node_id]) * 8, KEY, board.name, link, False, board.node_sources_config(),
        **identity,  # type: ignore[arg-type]
    )  # fmt: skip


def test_serial_ports_marks_boards_and_names_their_nodes() -> None:
    records = [
        _node("desk", 1, "/dev/ttyACM7", serial_number="F412FA6B1C30"),  # moved: found by serial
        _node("uart", 2, "/dev/ttyUSB0"),  # path-bound (an older registry)
    ]
    rows = {r["device"]: r for r in serial_ports(records, lambda: PORTS)}
    acm0 = rows["/dev/ttyACM0"]
    assert acm0["esp32s3"] and acm0["vid_pid"] == "303a:4001" and acm0["node"] == "desk"
    assert "esp32_s3_devkitc_1" in acm0["boards"]  # from boards/*.toml usb_ids
    assert acm0["by_id"].endswith("F412FA6B1C30-if00")
    assert rows["/dev/ttyACM1"]["esp32s3"] and rows["/dev/ttyACM1"]["node"] is None
    assert not rows["/dev/ttyUSB0"]["esp32s3"] and rows["/dev/ttyUSB0"]["node"] == "uart"
    assert rows["/dev/ttyS0"]["vid_pid"] == "" and rows["/dev/ttyS0"]["node"] is None


def test_nodes_list_prints_every_port_like_mpremote_devs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports_module, "list_serial_ports", lambda: PORTS)
    with registry_transaction() as reg:
        reg.put(_node("desk", 1, "/dev/ttyACM0", serial_number="F412FA6B1C30"))
    result = runner.invoke(app, ["nodes", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("desk" in line and "(serial F412FA6B1C30)" in line for line in lines)
    (acm0,) = [line for line in lines if "/dev/ttyACM0" in line and "303a:4001" in line]
    assert acm0.lstrip().startswith("*") and "F412FA6B1C30" in acm0 and "-> node desk" in acm0
    assert "Espressif ESP32-S3 CDC" in acm0
    (ftdi,) = [line for line in lines if "/dev/ttyUSB0" in line]
    assert not ftdi.lstrip().startswith("*") and "0403:6001" in ftdi and "not registered" in ftdi
    assert any("/dev/ttyS0" in line and "0000:0000" in line for line in lines)
    with registry_transaction() as reg:
        reg.put(_node("gone", 3, "/dev/ttyACM9", serial_number="NOT-PLUGGED"))
    again = runner.invoke(app, ["nodes", "list"]).output
    assert "(not found: no serial port with serial number NOT-PLUGGED)" in again
    listing = json.loads(runner.invoke(app, ["nodes", "list", "--json"]).output)
    assert [n["present"] for n in listing["nodes"]] == [False, False]  # /dev/ttyACM0 is not here
    assert len(listing["ports"]) == 4 and listing["nodes"][0]["serial_number"] == "F412FA6B1C30"
    assert KEY.hex() not in result.output


def test_nodes_list_escapes_device_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from serial.tools import list_ports, list_ports_common

    hostile = list_ports_common.ListPortInfo("/dev/ttyACM5", skip_link_detection=True)
    hostile.vid, hostile.pid = 0x303A, 0x4001
    hostile.serial_number = "SN\x1b[2J"
    hostile.manufacturer = "Evil\nCorp"
    monkeypatch.setattr(list_ports, "comports", lambda: [hostile])
    (port,) = ports_module.list_serial_ports()
    assert "\x1b" not in port.serial_number and "\n" not in port.manufacturer


def _image(path: Path) -> Path:
    path.write_bytes(b"\xe9" + bytes(70_000))
    return path


def test_flash_uses_the_profile_offset(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = home / "checkout"
    shutil.copytree(boards_dir(), root / "boards")
    profile = root / "boards" / "esp32_s3_devkitc_1.toml"
    profile.write_text(profile.read_text().replace("flash_offset = 0\n", "flash_offset = 0x1000\n"))
    monkeypatch.setenv("CHAOS_SOURCE_ROOT", str(root))
    image = _image(home / "fw.bin")
    result = runner.invoke(
        app,
        ["nodes", "flash", "--port", "/dev/ttyACM0", "--firmware", str(image),
         "--board", "esp32_s3_devkitc_1", "--dry-run"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    write = next(line for line in result.output.splitlines() if "write-flash" in line)
    assert write.endswith(f"write-flash 0x1000 {image}")
    plain = runner.invoke(
        app, ["nodes", "flash", "--port", "/dev/ttyACM0", "--firmware", str(image), "--dry-run"]
    )
    assert f"write-flash 0x0 {image}" in plain.output


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.bin", "no such firmware file"),
        (lambda d: (d / "small.bin").write_bytes(b"\xe9") and d / "small.bin", "too small"),
    ],
)
def test_flash_dry_run_checks_the_image(home: Path, make, message: str) -> None:
    image = make(home)
    env = dict(os.environ, CHAOS_HOME=str(home))
    proc = subprocess.run(
        [sys.executable, "-m", "chaosmagnet", "nodes", "flash", "--port", "/dev/ttyACM0",
         "--firmware", str(image), "--board", "um_feathers3", "--dry-run"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stdout == ""  # nothing printed as if it would work
    (line,) = proc.stderr.splitlines()
    assert line.startswith("chaos-host: error: ") and message in line
