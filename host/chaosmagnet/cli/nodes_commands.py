"""`chaos-host nodes ...`: register, flash, deploy, query and simulate ESP32-S3 nodes;
and the `run --node` hook that adds node sources to a running engine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from chaosmagnet.cli.app import app
from chaosmagnet.errors import UsageError, escape_device_text
from chaosmagnet.nodes.boards import list_boards, load_board
from chaosmagnet.nodes.faults import FaultName, FaultWindow, fault_help
from chaosmagnet.nodes.ports import PortInfo, PortLister
from chaosmagnet.nodes.registry import (
    NodeRecord,
    NodeRegistry,
    check_label,
    new_key,
    new_node_id,
    registry_path,
    registry_transaction,
)

nodes_app = typer.Typer(
    help="ESP32-S3 feather nodes: list, add, remove, status, flash, deploy, simulate.",
    no_args_is_help=True,
)
app.add_typer(nodes_app, name="nodes")

KeyFileOpt = typer.Option(
    ..., "--key-file", help="File holding the node's 64-hex-digit key ('-': stdin)."
)
FirmwareOpt = typer.Option(
    ..., "--firmware", help="MicroPython .bin for the board (see boards/*.toml)."
)
LinkOpt = typer.Option(
    None,
    "--link",
    help="Path for the port symlink (default under /tmp); 'ble' for a BLE peripheral, 'mqtt' for a Wi-Fi node.",
)


def serial_ports(
    records: list[NodeRecord], lister: PortLister | None = None
) -> list[dict[str, Any]]:
    """Every serial port, like `mpremote devs`, with ESP32-S3 boards marked and the
    registered node each one is (by USB serial number, else by path)."""
    from chaosmagnet.nodes.ports import ESPRESSIF_VID, list_serial_ports

    board_ids: dict[tuple[int, int], list[str]] = {}
    for board in list_boards():
        for usb_id in board.usb_ids:
            board_ids.setdefault(usb_id, []).append(board.name)
    rows = []
    for port in (lister or list_serial_ports)():
        boards = board_ids.get((port.vid or 0, port.pid or 0), [])
        node = next((r.label for r in records if _is_node_port(r, port)), None)
        rows.append(
            {
                "device": port.device,
                "serial_number": port.serial_number,
                "vid_pid": port.vid_pid,
                "manufacturer": port.manufacturer,
                "description": port.description,
                "by_id": port.by_id,
                "esp32s3": port.vid == ESPRESSIF_VID or bool(boards),
                "boards": boards,
                "node": node,
            }
        )
    return rows


def _is_node_port(record: NodeRecord, port: PortInfo) -> bool:
    if record.simulated:
        return False
    if record.serial_number:
        return record.serial_number == port.serial_number and (
            record.usb_vid is None or (record.usb_vid, record.usb_pid) == (port.vid, port.pid)
        )
    return os.path.realpath(record.link) == os.path.realpath(port.device)


@nodes_app.command("list")
def list_nodes(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Registered nodes, and every serial port (ESP32-S3 boards marked), like `mpremote devs`."""
    from chaosmagnet.nodes.ports import PortGuard

    registry = NodeRegistry()
    nodes = []
    for record in registry.nodes():
        if record.link.startswith(("ble:", "mqtt:")):  # no port to check
            where = "Bluetooth LE: see `chaos-host nodes scan`" if record.link.startswith("ble:") else "Wi-Fi (MQTT)"
            nodes.append(record.public() | {"present": None, "port_check": where})
            continue
        check = PortGuard(record).check()  # what `run` would find now (nothing is opened)
        nodes.append(record.public() | {"present": check.ok, "port_check": check.reason})
    ports = serial_ports(registry.nodes())
    if as_json:
        print(
            json.dumps({"registry": str(registry.path), "nodes": nodes, "ports": ports}, indent=2)
        )
        return
    print(f"registered nodes ({registry.path}):")
    if not nodes:
        print("  none (chaos-host nodes deploy, or nodes simulate)")
    for n in nodes:
        kind = "simulated" if n["simulated"] else n["board"]
        ident = (
            "Bluetooth LE"
            if str(n["link"]).startswith("ble:")
            else "Wi-Fi (MQTT)"
            if str(n["link"]).startswith("mqtt:")
            else "pty of its simulator"
            if n["simulated"]
            else f"serial {n['serial_number']}"
            if n.get("serial_number")
            else "by path"
        )
        print(
            f"  {n['label']:<16} {n['node_id']}  {kind:<26} {n['link']} ({ident})"
            f"{'' if n['present'] is not False else '  (' + n['port_check'] + ')'}"
        )
    print("serial ports (* = ESP32-S3 board):")
    if not ports:
        print("  none found")
    for p in ports:
        mark = "*" if p["esp32s3"] else " "
        what = " ".join(x for x in (p["manufacturer"], p["description"]) if x) or "-"
        boards = f" [{', '.join(p['boards'])}]" if p["boards"] else ""
        node = f"  -> node {p['node']}" if p["node"] else "  (not registered)"
        print(
            f" {mark}{p['device']:<16} {p['serial_number'] or '-':<20} "
            f"{p['vid_pid'] or '0000:0000'}  {what}{boards}{node}"
        )


def _port_identity(port: str) -> dict[str, Any]:
    """The serial number, VID:PID and by-id link of the device at port (empty if none)."""
    from chaosmagnet.nodes.ports import identity_of, is_pty

    if is_pty(port):
        print(
            f"note: {port} is a pty: the host opens it only for a node `nodes simulate` registered",
            file=sys.stderr,
        )
        return {}
    info = identity_of(port)
    if info is None or not info.serial_number:
        why = "is not a serial port now" if info is None else "has no USB serial number"
        print(
            f"note: {port} {why}: the node is bound to this path (register it again while "
            "plugged in to bind it to its serial number)",
            file=sys.stderr,
        )
        return {}
    return {
        "serial_number": info.serial_number,
        "usb_vid": info.vid,
        "usb_pid": info.pid,
        "by_id": info.by_id,
    }


@nodes_app.command("add")
def add_node(
    label: str = typer.Option(..., "--label", help="Name for the node (a-z 0-9 - _)."),
    node_id: str = typer.Option(..., "--node-id", help="The node's id, 16 hex digits."),
    board: str = typer.Option(..., "--board", help="Board profile name (boards/*.toml)."),
    port: str | None = typer.Option(None, "--port", help="Serial port the node is on."),
    key_file: Path = KeyFileOpt,
    ble: str | None = typer.Option(
        None, "--ble", metavar="ADDRESS", help="The node's Bluetooth LE address (see `nodes scan`)."
    ),
    wifi: bool = typer.Option(False, "--wifi", help="A Wi-Fi node, read through the mesh's broker (mqtt:LABEL)."),
) -> None:
    """Register a node that was deployed elsewhere (its key is read from a file, never argv),
    on a serial port (--port), over Bluetooth LE (--ble ADDRESS) or Wi-Fi (--wifi)."""
    check_label(label)
    if [port is not None, ble is not None, wifi].count(True) != 1:
        raise UsageError("give exactly one of --port PORT, --ble ADDRESS and --wifi")
    if wifi:
        port = f"mqtt:{label}"
    if ble is not None:
        from chaosmagnet.nodes.ble import LINK_PREFIX, check_ble_address

        try:
            port = LINK_PREFIX + check_ble_address(ble)
        except ValueError as exc:
            raise UsageError(f"--ble {escape_device_text(ble)!s}: {exc}") from None
    assert port is not None
    profile = load_board(board)
    try:
        nid = bytes.fromhex(node_id)
    except ValueError:
        nid = b""
    if len(nid) != 8:
        raise UsageError("--node-id must be 16 hex digits")
    try:
        text = sys.stdin.read() if str(key_file) == "-" else key_file.read_text()
    except OSError as exc:
        raise UsageError(f"{key_file}: cannot read key file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError("the key file must hold 64 hex digits (a 256-bit key)") from None
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise UsageError("the key file must hold 64 hex digits (a 256-bit key)")
    identity = _port_identity(port)
    with registry_transaction() as registry:
        registry.put(
            NodeRecord(
                label, nid, key, profile.name, port, False, profile.node_sources_config(), **identity
            )
        )
    by = f" (USB serial number {identity['serial_number']})" if identity else ""
    print(f"registered node {label} on {port}{by}")


@nodes_app.command("remove")
def remove_node(
    label: str = typer.Argument(..., metavar="LABEL", help="The node's label."),
) -> None:
    """Forget a node (its key is deleted from the registry)."""
    with registry_transaction() as registry:
        registry.remove(label)
    print(f"removed node {label}")


@nodes_app.command("status")
def node_status(
    label: str = typer.Argument(..., metavar="LABEL", help="The node's label (or its port)."),
    timeout: float = typer.Option(3.0, "--timeout", min=0.1, help="Seconds to wait for the node."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Ask a node for its status: firmware, board, uptime, rates, on-device health."""
    from chaosmagnet.nodes.sources import device_scalar, probe_node

    registry = NodeRegistry()
    record = registry.find(label) or registry.get(label)
    import asyncio

    result = asyncio.run(probe_node(record, timeout))
    if as_json:
        print(json.dumps({"label": record.label, **result}, indent=2, default=str))
        return
    link = result["link"]
    why = f" ({link['link_reason']})" if link.get("link_reason") else ""
    print(
        f"node {record.label} ({record.node_id.hex()}) on {link.get('port', record.link)}: "
        f"link {link.get('link_state', link.get('link'))}{why}, "
        f"{'verified' if link['verified'] else 'NO verified reply'}"
    )
    status = result["status"]
    if not status:
        print(
            f"  no status within {timeout:g} s (is the node plugged in and deployed, "
            "and its port free? a running `chaos-host run` holds it)"
        )
        raise typer.Exit(1)
    uptime = device_scalar(status.get("uptime_ms"))
    uptime_text = (
        f"{uptime / 1000:.1f} s"
        if isinstance(uptime, (int, float)) and not isinstance(uptime, bool)
        else "unknown"
    )
    print(
        f"  firmware {device_scalar(status.get('fw'))}, "
        f"board {device_scalar(status.get('board'))}, "
        f"uptime {uptime_text}, frames {device_scalar(status.get('frames'))}"
    )
    entries = status.get("sources")
    for s in entries if isinstance(entries, list) else []:
        if not isinstance(s, dict):
            continue
        f = {key: device_scalar(value) for key, value in s.items()}  # numbers, or escaped text
        verdict = "FAILING" if f.get("failing") else "ok"
        print(
            f"  {f.get('name')!s:<7} {'on ' if f.get('on') else 'off'} "
            f"rate {f.get('rate')}/s h {f.get('h')} cutoffs RCT {f.get('rct_cutoff')} "
            f"APT {f.get('apt_cutoff')}/{f.get('apt_window')}  samples {f.get('samples')} "
            f"RCT fails {f.get('rct_failures')} APT fails {f.get('apt_failures')}  "
            f"node says {verdict}"
        )
    drops = ", ".join(f"{reason} {count}" for reason, count in link["drops"].items()) or "none"
    print(f"  host: {link['frames']} frames, drops {drops}, lost {link['lost_frames']}")


@nodes_app.command("scan")
def scan_ble(
    seconds: float = typer.Option(5.0, "--seconds", min=0.5, max=120.0, help="How long to listen."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """ChaosMagnet nodes advertising over Bluetooth LE: label, address, RSSI, registered or not."""
    from chaosmagnet.nodes.ble import LINK_PREFIX, scan_nodes

    found = asyncio.run(scan_nodes(seconds))
    registry = NodeRegistry()
    rows = []
    for adv in found:
        record = registry.find(LINK_PREFIX + adv.address)
        rows.append(
            {
                "label": adv.label,
                "address": adv.address,
                "rssi": adv.rssi,
                "registered": record.label if record else None,
            }
        )
    if as_json:
        print(json.dumps({"nodes": rows}, indent=2))
        return
    if not rows:
        print(f"no ChaosMagnet node advertising within {seconds:g} s")
        return
    for row in rows:
        note = f"registered as {row['registered']}" if row["registered"] else "not registered"
        print(f"  {row['label'] or '?':<16} {row['address']}  RSSI {row['rssi']:>4} dBm  {note}")


@nodes_app.command("flash")
def flash_node(
    port: str = typer.Option(..., "--port", help="Serial port of the board (in download mode)."),
    firmware: Path = FirmwareOpt,
    board: str | None = typer.Option(
        None, "--board", help="Board profile: its flash offset and download-mode guidance."
    ),
    baud: int = typer.Option(460800, "--baud", min=9600, help="Baud rate for writing."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the esptool commands instead of running them."
    ),
) -> None:
    """Erase the ESP32-S3 and write MicroPython with esptool at the board profile's
    flash offset (0x0 without --board)."""
    from chaosmagnet.nodes.tools import check_image, esptool_commands, flash, flash_offset

    profile = load_board(board) if board else None
    check_image(firmware)
    if profile is not None:
        print(
            f"{profile.title}: flash the {profile.micropython_build} build "
            f"({profile.firmware_page}) at {hex(profile.flash_offset)}"
        )
    if dry_run:
        for argv in esptool_commands(port, firmware, baud, flash_offset(profile)):
            print(" ".join(argv))
        return
    flash(port, firmware, profile, baud)
    print(
        "flashed; now: chaos-host nodes deploy --port",
        port,
        "--board",
        profile.name if profile else "BOARD",
        "--label LABEL",
    )


@nodes_app.command("deploy")
def deploy_node(
    port: str = typer.Option(..., "--port", help="Serial port of the board running MicroPython."),
    board: str = typer.Option(..., "--board", help="Board profile name (boards/*.toml)."),
    label: str = typer.Option(..., "--label", help="Name for the node (a-z 0-9 - _)."),
    rotate_key: bool = typer.Option(
        False, "--rotate-key", help="Give a re-deployed node a new key."
    ),
    resend_key: bool = typer.Option(
        False,
        "--resend-key",
        help="Send the kept key to the board's NVS again (after `nodes flash` erased it).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print what would be done; change nothing."
    ),
    link: str = typer.Option(
        "usb", "--link", help="How the node talks to the host: usb (serial), ble (Bluetooth LE) or wifi (MQTT)."
    ),
    ssid: str | None = typer.Option(None, "--ssid", help="With --link wifi: the Wi-Fi network's name."),
    wifi_psk_file: Path | None = typer.Option(
        None, "--wifi-psk-file", help="With --link wifi: file holding the Wi-Fi passphrase ('-': stdin; default: ask)."
    ),
    mesh_client: Path | None = typer.Option(
        None,
        "--mesh-client",
        help="With --link wifi: the node's mesh folder (default: $CHAOS_HOME/mesh/clients/LABEL).",
    ),
    mesh_url: str | None = typer.Option(
        None, "--mesh-url", help="With --link wifi: the broker, mqtts://HOST:PORT (default: the folder's)."
    ),
) -> None:
    """Copy firmware/ and the node config with mpremote, store a new node's key in the
    board's NVS (sent once), register the node.  With --link ble the node serves
    its frames over Bluetooth LE and is registered by its BLE address; with --link
    wifi it publishes them to the mesh's broker over MQTT (TLS), its Wi-Fi
    passphrase, MQTT password and TLS key going to NVS with the node key."""
    from chaosmagnet.nodes.simulator import node_config
    from chaosmagnet.nodes.tools import (
        deploy,
        mpremote_ble_address_command,
        mpremote_deploy_command,
        read_ble_address,
    )

    check_label(label)
    if link not in ("usb", "ble", "wifi"):
        raise UsageError("--link must be usb, ble or wifi")
    if link != "wifi" and (ssid or wifi_psk_file or mesh_client or mesh_url):
        raise UsageError("--ssid, --wifi-psk-file, --mesh-client and --mesh-url go with --link wifi")
    if link == "wifi" and not ssid:
        raise UsageError("--link wifi needs --ssid")
    profile = load_board(board)
    existing = NodeRegistry().find(label)
    if existing is not None and existing.label != label:
        existing = None
    if existing is not None and existing.simulated:
        raise UsageError(f"{label!r} is a simulated node; pick another label")
    node_id = existing.node_id if existing else new_node_id()
    key = existing.key if existing and not rotate_key else new_key()
    action = "new node" if existing is None else ("rotated key" if rotate_key else "kept key")
    # a node turning into a Wi-Fi node needs its Wi-Fi secrets, which travel with the key
    becomes_wifi = link == "wifi" and existing is not None and not existing.link.startswith("mqtt:")
    send_key = existing is None or rotate_key or resend_key or becomes_wifi
    key_note = (
        "the node key is sent once over USB into the board's NVS (not its file system)"
        if send_key
        else "the node key is not sent (the board's NVS keeps it; --resend-key after an erase)"
    )
    wifi_parts: tuple[dict[str, Any], dict[str, bytes], dict[str, bytes]] | None = None
    if link == "wifi":
        wifi_parts = _wifi_parts(label, ssid or "", mesh_client, mesh_url, wifi_psk_file, send_key and not dry_run)
        sent = "the node key, Wi-Fi passphrase, MQTT password and TLS key are sent"
        key_note = key_note.replace("the node key is sent", sent).replace(
            "the node key is not sent", "the node key and Wi-Fi secrets are not sent"
        )
    if dry_run:
        print(f"{label}: {action}, node id {node_id.hex()}, board {profile.name}, link {link}")
        if link == "ble":
            print("(read the board's BLE address first)")
            print(" ".join(repr(a) if "\n" in a else a for a in mpremote_ble_address_command(port)))
        print("(in a private staging folder holding firmware/ and chaosnode.json, mode 0600)")
        print(" ".join(mpremote_deploy_command(port, send_key, wifi=link == "wifi")))
        if wifi_parts is not None:
            w = wifi_parts[0]
            print(f"Wi-Fi {w['wifi_ssid']!r}, broker mqtts://{w['broker_host']}:{w['broker_port']}, mesh {w['mesh']}")
        print(key_note)
        return
    identity = _port_identity(port)  # before deploy: the board resets and re-enumerates after it
    config = node_config(node_id, None, profile, label)
    registered_link = port
    if link == "ble":
        from chaosmagnet.nodes.ble import LINK_PREFIX

        config["link"] = "ble"
        registered_link = LINK_PREFIX + read_ble_address(port)
        identity = {}  # a BLE node is found by its address, not by a serial port
    secrets: dict[str, bytes] | None = None
    files: dict[str, bytes] | None = None
    if wifi_parts is not None:
        config |= wifi_parts[0]
        secrets, files = wifi_parts[1] or None, wifi_parts[2]
        registered_link = f"mqtt:{label}"
        identity = {}  # a Wi-Fi node is found through the broker, not by a serial port
    deploy(port, config, key if send_key else None, secrets if send_key else None, files)
    with registry_transaction() as registry:
        # The boot counter floor stays while the board's NVS (key and counter) stays; a key
        # sent now goes with a fresh or erased NVS, whose counter starts again from 1.
        floor = existing.boot_counter if existing is not None and not send_key else 0
        registry.put(
            NodeRecord(
                label,
                node_id,
                key,
                profile.name,
                registered_link,
                False,
                profile.node_sources_config(),
                boot_counter=floor,
                **identity,
            )
        )
    print(
        f"deployed {label} ({action}, node id {node_id.hex()}) to {port}; "
        f"registered in {registry_path()} on {registered_link}"
    )
    print(key_note)
    print("the node now ignores Ctrl-C; to deploy again: tap RESET, then hold BOOT for 2 s")
    print(f"see it: chaos-host nodes status {label}   harvest: chaos-host run")


def _wifi_parts(
    label: str, ssid: str, folder: Path | None, url_text: str | None, psk_file: Path | None, need_psk: bool
) -> tuple[dict[str, Any], dict[str, bytes], dict[str, bytes]]:
    """The Wi-Fi node's config fields, NVS secrets and files (the passphrase only when sent)."""
    from chaosmagnet.mqtt.credentials import load_client, mesh_dir
    from chaosmagnet.nodes.mqtt import broker_of, wifi_node_settings

    credentials = load_client(folder if folder is not None else mesh_dir() / "clients" / label)
    if credentials.label != label:
        raise UsageError(f"{credentials.folder} is node {credentials.label!r}'s folder, not {label!r}'s")
    psk = _read_psk(psk_file) if need_psk else None
    return wifi_node_settings(credentials, broker_of(credentials, url_text), ssid, psk)


def _read_psk(path: Path | None) -> str:
    """The Wi-Fi passphrase: from a file, stdin ('-') or a hidden prompt (never echoed)."""
    if path is None:
        return str(typer.prompt("Wi-Fi passphrase", hide_input=True))
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--wifi-psk-file {path}: cannot read it ({type(exc).__name__})") from None
    return text.rstrip("\r\n")


@nodes_app.command("simulate")
def simulate_node(
    board: str = typer.Option(
        "um_feathers3", "--board", help="Board profile whose rates the node uses."
    ),
    label: str = typer.Option("sim", "--label", help="Label to register the simulated node under."),
    fault_choice: FaultName | None = typer.Option(None, "--fault", help=fault_help()),
    fault_after: float = typer.Option(
        0.0, "--fault-after", min=0.0, help="Start the fault this many seconds after the simulator starts."
    ),
    fault_for: float | None = typer.Option(
        None, "--fault-for", min=0.001, help="End the fault after this many seconds (default: never)."
    ),
    seconds: float | None = typer.Option(None, "--seconds", min=0.0, help="Stop after this long."),
    link: Path | None = LinkOpt,
    hci_port: int = typer.Option(
        0, "--hci-port", min=0, max=65535,
        help="With --link ble: TCP port of the virtual adapter served to hosts (0: any free port).",
    ),
    mesh_url: str | None = typer.Option(
        None, "--mesh-url", help="With --link mqtt: the broker, mqtts://HOST:PORT (default: the folder's)."
    ),
    mesh_client: Path | None = typer.Option(
        None,
        "--mesh-client",
        help="With --link mqtt: the node's mesh folder (default: $CHAOS_HOME/mesh/clients/LABEL).",
    ),
) -> None:
    """Run the real firmware under CPython with a noise HAL on a pty, registered as a node.

    With --link ble the node is a Bluetooth LE peripheral on bumble's virtual
    radio instead, which serves one virtual adapter to hosts over TCP: run
    chaos-host with the CHAOS_BLE_HCI=tcp-client:... it prints.  With --link
    mqtt it is a Wi-Fi node publishing to the mesh's broker with the node's
    mesh credentials (chaos-host mesh add LABEL --node --host HOST).

    SIGHUP closes and reopens the pty (like unplugging the board).  The node is
    unregistered when the simulator stops.
    """
    from chaosmagnet.nodes.ports import process_start
    from chaosmagnet.nodes.simulator import Simulator, default_link_path, live_link_target, node_config

    check_label(label)
    fault = fault_choice.value if fault_choice is not None else None
    if fault is None and (fault_after or fault_for is not None):
        raise UsageError("--fault-after and --fault-for go with --fault")
    window = FaultWindow(fault_after, fault_for)
    profile = load_board(board)
    if link is not None and str(link) in ("ble", "mqtt") and window != FaultWindow():
        raise UsageError("--fault-after and --fault-for go with a pty node (no --link ble or mqtt)")
    if link is not None and str(link) == "ble":
        _simulate_ble(profile, label, fault, seconds, hci_port)
        return
    if link is not None and str(link) == "mqtt":
        _simulate_mqtt(profile, label, fault, seconds, mesh_url, mesh_client)
        return
    if mesh_url or mesh_client:
        raise UsageError("--mesh-url and --mesh-client go with --link mqtt")
    link_path = link or default_link_path(label)
    busy = live_link_target(link_path)
    if busy is not None:
        raise UsageError(
            f"{link_path} already points to a live pty ({busy}): another simulator may be serving it; "
            "pick another --label or --link (or remove the link if none runs)"
        )
    node_id, key = new_node_id(), new_key()
    with registry_transaction() as registry:
        existing = registry.find(label)
        if existing is not None and existing.label == label and not existing.simulated:
            raise UsageError(f"{label!r} is a real node; pick another label")
        record = NodeRecord(
            label,
            node_id,
            key,
            profile.name,
            str(link_path),
            True,
            profile.node_sources_config(),
            simulator_pid=os.getpid(),  # the host opens the pty only while this process holds it
            simulator_started=process_start(os.getpid()),
        )
        registry.put(record)
    try:
        sim = Simulator(node_config(node_id, key, profile, label), link_path, fault=fault, window=window)
        print(f"simulated node {label} ({profile.title}{', fault ' + fault + _window_text(window) if fault else ''})")
        print(f"port: {link_path} -> {sim.endpoint.slave_path}")
        print(
            f"harvest it: chaos-host run --node {label}   (Ctrl-C stops the simulator)", flush=True
        )
        signal.signal(signal.SIGTERM, lambda *_: sim.stop())
        signal.signal(signal.SIGHUP, lambda *_: sim.request_reopen())
        loop_deadline = None if seconds is None else _now() + seconds
        with contextlib.suppress(KeyboardInterrupt):
            sim.run(until=(lambda: _now() >= loop_deadline) if loop_deadline is not None else None)
    finally:
        with registry_transaction() as registry:
            current = registry.find(label)
            if current is not None and current.node_id == node_id:
                registry.remove(label)
    print(f"simulator {label} stopped", file=sys.stderr)


def _window_text(window: FaultWindow) -> str:
    """' from 30 s for 60 s' (empty for a fault that is always on)."""
    text = f" from {window.after:g} s" if window.after else ""
    return text + (f" for {window.duration:g} s" if window.duration is not None else "")


def _simulate_ble(
    profile: Any, label: str, fault: str | None, seconds: float | None, hci_port: int
) -> None:
    """`nodes simulate --link ble`: the firmware's node as a BLE peripheral on a virtual radio."""
    import socket

    from chaosmagnet.nodes.ble import HCI_ENV, LINK_PREFIX
    from chaosmagnet.nodes.simulator import node_config

    try:
        from chaosmagnet.nodes.ble_bumble import BlePeripheral, VirtualRadio
    except ImportError:
        raise UsageError("nodes simulate --link ble needs bumble (pip install bumble)") from None
    with socket.socket() as probe:  # a free port for the virtual adapter
        try:
            probe.bind(("127.0.0.1", hci_port))
        except OSError as exc:
            raise UsageError(f"--hci-port {hci_port}: {exc.strerror}") from None
        port = probe.getsockname()[1]
    node_id, key = new_node_id(), new_key()
    stop_at = None if seconds is None else _now() + seconds

    async def main() -> None:
        radio = VirtualRadio()
        peripheral = BlePeripheral(radio, node_config(node_id, key, profile, label), fault=fault)
        try:
            await radio.serve_hci(f"tcp-server:127.0.0.1:{port}")
        except OSError as exc:
            raise UsageError(f"cannot serve the virtual adapter on port {port}: {exc.strerror}") from None
        with registry_transaction() as registry:
            existing = registry.find(label)
            if existing is not None and existing.label == label and not existing.simulated:
                raise UsageError(f"{label!r} is a real node; pick another label")
            registry.put(
                NodeRecord(
                    label, node_id, key, profile.name, LINK_PREFIX + peripheral.address, True,
                    profile.node_sources_config(),
                )
            )
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, peripheral.stop)
        loop.add_signal_handler(signal.SIGINT, peripheral.stop)
        print(f"simulated BLE node {label} ({profile.title}{', fault ' + fault if fault else ''})")
        print(f"address: {peripheral.address}   virtual adapter: tcp-client:127.0.0.1:{port}")
        print(
            f"harvest it: {HCI_ENV}=tcp-client:127.0.0.1:{port} chaos-host run --node {label}",
            flush=True,
        )
        try:
            await peripheral.run(until=(lambda: _now() >= stop_at) if stop_at is not None else None)
        finally:
            await radio.close()

    try:
        asyncio.run(main())
    finally:
        with registry_transaction() as registry:
            current = registry.find(label)
            if current is not None and current.node_id == node_id:
                registry.remove(label)
    print(f"simulator {label} stopped", file=sys.stderr)


def _simulate_mqtt(
    profile: Any, label: str, fault: str | None, seconds: float | None, url_text: str | None, folder: Path | None
) -> None:
    """`nodes simulate --link mqtt`: the firmware's node and MQTT link over a paho client."""
    from chaosmagnet.mqtt.credentials import load_client, mesh_dir
    from chaosmagnet.nodes.mqtt import LINK_PREFIX, broker_of
    from chaosmagnet.nodes.mqtt_sim import MqttNodeSim, run_sims
    from chaosmagnet.nodes.simulator import node_config

    credentials = load_client(folder if folder is not None else mesh_dir() / "clients" / label)
    if credentials.role != "node" or credentials.label != label:
        raise UsageError(
            f"{credentials.folder} is not node {label!r}'s folder (chaos-host mesh add {label} --node --host HOST)"
        )
    url = broker_of(credentials, url_text)
    node_id, key = new_node_id(), new_key()
    sim = MqttNodeSim(node_config(node_id, key, profile, label), credentials, url, fault=fault)
    with registry_transaction() as registry:
        existing = registry.find(label)
        if existing is not None and existing.label == label and not existing.simulated:
            raise UsageError(f"{label!r} is a real node; pick another label")
        registry.put(
            NodeRecord(label, node_id, key, profile.name, LINK_PREFIX + label, True, profile.node_sources_config())
        )
    stop = [False]
    try:
        signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
        print(f"simulated Wi-Fi node {label} ({profile.title}{', fault ' + fault if fault else ''})")
        print(f"broker: {url}   mesh {credentials.mesh}   owner host {credentials.owner}")
        print(f"harvest it on host {credentials.owner}: chaos-host run --node {label}", flush=True)
        stop_at = None if seconds is None else _now() + seconds
        with contextlib.suppress(KeyboardInterrupt):
            run_sims([sim], lambda: stop[0] or (stop_at is not None and _now() >= stop_at))
    finally:
        with registry_transaction() as registry:
            current = registry.find(label)
            if current is not None and current.node_id == node_id:
                registry.remove(label)
    print(
        f"simulator {label} stopped (MQTT connections {sim.link.connections}, errors {sim.link.errors})",
        file=sys.stderr,
    )


def _now() -> float:
    import time

    return time.monotonic()


@nodes_app.command("boards")
def boards() -> None:
    """The supported boards: MicroPython build, ADC pin, LED pin, declared rates."""
    for b in list_boards():
        rates = ", ".join(f"{n} {s.rate}/s h={s.h}" for n, s in b.sources.items())
        print(
            f"{b.name:<26} {b.title}: {b.micropython_build}, ADC GPIO{b.adc_pin}, "
            f"LED GPIO{b.led_pin} ({rates})"
        )


async def node_run_hook(engine: Any, options: dict[str, Any]) -> None:
    """`run`: add the sources of the nodes named by --node (default: every registered
    node, unless --source chose the sources explicitly)."""
    from chaosmagnet.nodes.sources import build_node_sources, resolve_nodes

    specs = options.get("nodes")
    if not specs and options.get("sources"):
        return None
    records = resolve_nodes(specs or None)
    factory = _link_factory(records, options)
    for record in records:
        for source in build_node_sources(record, link_factory=factory):
            await engine.add_source(source)
    return None


def _link_factory(records: list[Any], options: dict[str, Any]) -> Any:
    """open_link, with Wi-Fi nodes on one broker connection: the host's mesh credentials
    (--mesh-client, default $CHAOS_HOME/mesh/client) and broker (--mesh, default the folder's),
    resolved now so a missing folder is one line, not a failure later."""
    from chaosmagnet.nodes.transport import open_link

    if not any(r.link.startswith("mqtt:") for r in records):
        return open_link
    from chaosmagnet.mqtt.credentials import load_client, mesh_dir
    from chaosmagnet.nodes.mqtt import MqttLink, broker_of, shared_bus

    folder = options.get("mesh_client") or mesh_dir() / "client"
    credentials = load_client(folder)
    if credentials.role != "host":
        raise UsageError(f"{credentials.folder} is a {credentials.role}'s folder, not a host's")
    bus = shared_bus(credentials, broker_of(credentials, options.get("mesh")))

    def factory(address: str, on_bytes: Any, **kw: Any) -> Any:
        if address.startswith("mqtt:"):
            return MqttLink(address, on_bytes, bus=bus, **kw)
        return open_link(address, on_bytes, **kw)

    return factory


def _register_run_hook() -> None:
    from chaosmagnet.cli.core_commands import RUN_HOOKS

    if node_run_hook not in RUN_HOOKS:
        RUN_HOOKS.append(node_run_hook)


_register_run_hook()
