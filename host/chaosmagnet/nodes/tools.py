"""esptool and mpremote, as the node commands use them.

The command lines are built by pure functions (tested without a board) and
run by thin wrappers.  No secret ever appears on a command line.  The node
config (no key in it) is copied to the board's file system; the node key is
sent once, by ``mpremote run`` of a provisioning script staged as a 0600 file
in a private folder, which stores it in the board's NVS (never in a file the
board's file system holds) and is never copied to the board.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chaosmagnet.errors import ChaosError, UsageError
from chaosmagnet.nodes.boards import BoardProfile, firmware_dir

CHIP = "esp32s3"
FLASH_OFFSET = 0  # ESP32-S3 MicroPython images include the bootloader: written at 0x0 by default
CONFIG_NAME = "chaosnode.json"
PROVISION_NAME = "chaosnode_provision.py"  # staged only; run once, never copied to the board
NVS_NAMESPACE = "chaosnode"


class NodeToolError(ChaosError):
    """esptool or mpremote failed (the board is absent, busy or not in download mode)."""


def esptool_commands(
    port: str, firmware: Path, baud: int = 460800, offset: int = FLASH_OFFSET
) -> list[list[str]]:
    """The esptool invocations that erase the S3's flash and write a MicroPython image."""
    base = [sys.executable, "-m", "esptool", "--chip", CHIP, "--port", port]
    return [
        base + ["erase-flash"],
        base + ["--baud", str(baud), "write-flash", hex(offset), str(firmware)],
    ]


WIFI_SECRETS = ("wifi_psk", "mqtt_pw", "tls_key")  # NVS blobs of a Wi-Fi node (firmware chaosnode.mqtt)
WIFI_FILES = ("chaosnode_ca.pem", "chaosnode_cert.pem")  # public: the mesh CA, the node's certificate
MQTT_PACKAGE = "umqtt.simple"  # micropython-lib, installed by mpremote mip


def provision_script(key: bytes, secrets: dict[str, bytes] | None = None) -> str:
    """MicroPython code that stores the node key (and a Wi-Fi node's Wi-Fi passphrase, MQTT
    password and TLS key) in NVS; run on the board, never saved there."""
    if len(key) != 32:
        raise ValueError("a node key is 32 bytes")
    lines = [
        "import binascii, esp32",
        f"_nvs = esp32.NVS({NVS_NAMESPACE!r})",
        f"_nvs.set_blob('key', binascii.unhexlify({key.hex()!r}))",
    ]
    for name, value in (secrets or {}).items():
        if name not in WIFI_SECRETS or not value or len(value) > 4000:
            raise ValueError(f"unknown or oversized node secret {name!r}")
        lines.append(f"_nvs.set_blob({name!r}, binascii.unhexlify({value.hex()!r}))")
    lines += ["_nvs.commit()", "print('chaosnode: node key stored in NVS')"]
    return "\n".join(lines) + "\n"


def mpremote_deploy_command(port: str, send_key: bool = True, wifi: bool = False) -> list[str]:
    """The mpremote invocation run inside a staging folder (see stage_firmware); with
    send_key it also runs the provisioning script, which stores the key in NVS; with
    wifi it installs umqtt.simple (mpremote mip) and copies the mesh CA and the node's
    certificate."""
    provision = ["+", "run", PROVISION_NAME] if send_key else []
    extra: list[str] = []
    if wifi:
        extra += ["+", "mip", "install", MQTT_PACKAGE]
        for name in WIFI_FILES:
            extra += ["+", "fs", "cp", name, ":" + name]
    return [
        sys.executable,
        "-m",
        "mpremote",
        "connect",
        port,
        "fs",
        "cp",
        "-r",
        "lib",
        ":",
        "+",
        "fs",
        "cp",
        "boot.py",
        ":boot.py",
        "+",
        "fs",
        "cp",
        "main.py",
        ":main.py",
        "+",
        "fs",
        "cp",
        CONFIG_NAME,
        ":" + CONFIG_NAME,
        *extra,
        *provision,
        "+",
        "reset",
    ]


@contextmanager
def stage_firmware(
    config: dict[str, Any],
    key: bytes | None = None,
    secrets: dict[str, bytes] | None = None,
    files: dict[str, bytes] | None = None,
) -> Iterator[Path]:
    """A private folder holding firmware/ (sources only), the node config, public ``files``
    (a Wi-Fi node's CA and certificate) and, when key is given, the provisioning script that
    carries it and ``secrets`` (all mode 0600)."""
    if "key" in config:
        raise ValueError("the node config must not hold the key: it goes to NVS")
    source = firmware_dir()
    if not (source / "main.py").exists():
        raise UsageError(f"firmware not found at {source} (set CHAOS_SOURCE_ROOT to the checkout)")
    with tempfile.TemporaryDirectory(prefix="chaos-deploy-") as tmp:
        stage = Path(tmp)
        os.chmod(stage, 0o700)
        for path in sorted(source.rglob("*.py")):
            rel = path.relative_to(source)
            if "__pycache__" in rel.parts:
                continue
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, stage / rel)
        fd = os.open(stage / CONFIG_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(config, f, separators=(",", ":"))
        for name, content in (files or {}).items():
            fd = os.open(stage / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fb:
                fb.write(content)
        if key is not None:
            fd = os.open(stage / PROVISION_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(provision_script(key, secrets))
        yield stage


def download_mode_help(board: BoardProfile | None) -> str:
    """How to put the board into its ROM download mode."""
    if board is not None:
        for note in board.notes:
            if note.lower().startswith("download mode"):
                return note
    return "Download mode: hold BOOT, tap RESET, release BOOT, then run the command again."


def run_tool(argv: list[str], cwd: Path | None = None) -> int:
    """Run a tool with its output shown; return its exit status."""
    try:
        return subprocess.run(argv, cwd=cwd, check=False).returncode
    except FileNotFoundError:
        raise NodeToolError(f"cannot run {argv[0]}") from None


def check_image(firmware: Path) -> None:
    """UsageError unless firmware is a readable ESP32 flash image of plausible size."""
    try:
        if not firmware.is_file():
            raise UsageError(f"{firmware}: no such firmware file")
        if firmware.stat().st_size < 64 * 1024:
            raise UsageError(f"{firmware}: too small to be a MicroPython image")
        with firmware.open("rb") as f:
            if f.read(1) != b"\xe9":
                raise UsageError(f"{firmware}: not an ESP32 flash image (no 0xE9 header byte)")
    except OSError as exc:
        raise UsageError(f"{firmware}: cannot read the firmware file ({exc.strerror})") from None


def flash_offset(board: BoardProfile | None) -> int:
    """Where the image goes: the board profile's flash_offset, else 0x0."""
    return board.flash_offset if board is not None else FLASH_OFFSET


def flash(port: str, firmware: Path, board: BoardProfile | None, baud: int = 460800) -> None:
    """Erase and write a MicroPython image at the profile's offset with esptool;
    NodeToolError with guidance on failure."""
    check_image(firmware)
    for argv in esptool_commands(port, firmware, baud, flash_offset(board)):
        status = run_tool(argv)
        if status != 0:
            raise NodeToolError(
                f"esptool failed (exit {status}) on {port}. If the board is not in download mode: "
                f"{download_mode_help(board)}"
            )


def deploy(
    port: str,
    config: dict[str, Any],
    key: bytes | None = None,
    secrets: dict[str, bytes] | None = None,
    files: dict[str, bytes] | None = None,
) -> None:
    """Copy firmware/ and the node config to the board with mpremote; when key is given,
    store it (and a Wi-Fi node's secrets) in the board's NVS (sent this once); then reset."""
    if port.startswith("/") and not os.path.exists(port):
        raise NodeToolError(f"{port}: no such port (`chaos-host nodes list` shows the serial ports here)")
    if secrets and key is None:
        raise ValueError("a Wi-Fi node's secrets go to NVS together with its key")
    with stage_firmware(config, key, secrets, files) as stage:
        status = run_tool(mpremote_deploy_command(port, key is not None, bool(files)), cwd=stage)
    if status != 0:
        raise NodeToolError(
            f"mpremote failed (exit {status}) on {port}: is MicroPython flashed "
            "(chaos-host nodes flash) and the port free of other programs? A deployed node "
            "ignores Ctrl-C: tap RESET, then hold BOOT for 2 s (maintenance mode) and retry."
        )


BLE_ADDRESS_CODE = (
    "import bluetooth\n"
    "_b = bluetooth.BLE()\n"
    "_b.active(True)\n"
    "print('chaosnode-ble-address', ':'.join('%02X' % x for x in _b.config('mac')[1]))\n"
)


def mpremote_ble_address_command(port: str) -> list[str]:
    """The mpremote invocation that prints the board's Bluetooth LE address (switching BLE on)."""
    return [sys.executable, "-m", "mpremote", "connect", port, "exec", BLE_ADDRESS_CODE]


def parse_ble_address(output: str) -> str | None:
    """The address printed by BLE_ADDRESS_CODE, or None."""
    for line in output.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "chaosnode-ble-address" and len(words[1]) == 17:
            return words[1].upper()
    return None


def read_ble_address(port: str) -> str:
    """Ask the board on port for its BLE address (before deploy resets it into the node)."""
    try:
        proc = subprocess.run(
            mpremote_ble_address_command(port), capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NodeToolError(f"cannot ask {port} for its BLE address ({type(exc).__name__})") from None
    address = parse_ble_address(proc.stdout)
    if proc.returncode != 0 or address is None:
        raise NodeToolError(
            f"mpremote could not read the BLE address on {port} (exit {proc.returncode}): is MicroPython "
            "flashed and the port free? A deployed node ignores Ctrl-C: tap RESET, then hold BOOT for 2 s."
        )
    return address
