"""The node registry: which nodes this host knows, their keys, boards and links.

A JSON file, by default keys/nodes.json under the project dir (CHAOS_HOME), or
the path in CHAOS_NODES.  It holds secret keys, so it is written atomically
with mode 0600 and its keys are never printed: NodeRecord's repr hides them.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chaosmagnet.errors import ConfigError, UsageError
from chaosmagnet.eventlog import data_dir
from chaosmagnet.nodes.protocol import KEY_SIZE, NODE_ID_SIZE
from chaosmagnet.securefile import ensure_private_dir, write_private_file

LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,30}$")


def registry_path() -> Path:
    """Where the registry lives: $CHAOS_NODES, else keys/nodes.json in the project dir."""
    override = os.environ.get("CHAOS_NODES")
    return Path(override) if override else data_dir() / "keys" / "nodes.json"


def check_label(label: str) -> str:
    """A label is lower-case letters, digits, '-' and '_' (it becomes part of source names)."""
    if not LABEL_RE.match(label):
        raise UsageError(
            f"bad node label {label!r}: use 1-31 of a-z 0-9 - _, starting with a letter or digit"
        )
    return label


@dataclass(frozen=True)
class NodeRecord:
    """One registered node.  ``link`` is a serial port path (or a simulator's pty link);
    ``boot_counter`` the highest boot counter a handshake of this node was accepted with
    (an answer from an earlier boot is refused, across host restarts).

    The port identity (see chaosmagnet.nodes.ports) is the USB ``serial_number``,
    ``usb_vid``/``usb_pid`` and ``by_id`` link of a board, or, for a simulated
    node, the ``simulator_pid`` and ``simulator_started`` time of the process
    holding its pty.  Entries written before these fields (or ``boot_counter``)
    existed load with them empty (a path-bound node) and 0.
    """

    label: str
    node_id: bytes
    key: bytes = field(repr=False)
    board: str
    link: str
    simulated: bool = False
    declared: dict[str, dict[str, float]] = field(default_factory=dict)
    boot_counter: int = 0
    serial_number: str = ""
    usb_vid: int | None = None
    usb_pid: int | None = None
    by_id: str = ""
    simulator_pid: int | None = None
    simulator_started: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "label": self.label,
            "node_id": self.node_id.hex(),
            "key": self.key.hex(),
            "board": self.board,
            "link": self.link,
            "simulated": self.simulated,
            "declared": self.declared,
            "boot_counter": self.boot_counter,
        }
        for name in _IDENTITY_FIELDS:
            value = getattr(self, name)
            if value not in ("", None):
                data[name] = value
        return data

    def public(self) -> dict[str, Any]:
        """Everything but the key, for listings."""
        data = self.to_json()
        del data["key"]
        return data

    @staticmethod
    def from_json(data: dict[str, Any]) -> NodeRecord:
        node_id = bytes.fromhex(data["node_id"])
        key = bytes.fromhex(data["key"])
        if len(node_id) != NODE_ID_SIZE or len(key) != KEY_SIZE:
            raise ValueError("node id must be 8 bytes and key 32 bytes")
        boot_counter = data.get("boot_counter", 0)
        if isinstance(boot_counter, bool) or not isinstance(boot_counter, int):
            raise TypeError("boot_counter must be an integer")
        if not 0 <= boot_counter <= 0xFFFFFFFF:
            raise ValueError("boot_counter out of range")
        return NodeRecord(
            label=check_label(str(data["label"])),
            node_id=node_id,
            key=key,
            board=str(data["board"]),
            link=str(data["link"]),
            simulated=bool(data.get("simulated", False)),
            declared=_declared(data.get("declared", {})),
            boot_counter=boot_counter,
            **_identity(data),
        )


_IDENTITY_FIELDS = (
    "serial_number",
    "usb_vid",
    "usb_pid",
    "by_id",
    "simulator_pid",
    "simulator_started",
)


def _identity(data: dict[str, Any]) -> dict[str, Any]:
    """The port identity fields of a registry entry (absent in older files: left empty)."""
    out: dict[str, Any] = {}
    for name in _IDENTITY_FIELDS:
        if name not in data:
            continue
        value = data[name]
        if name in ("serial_number", "by_id"):
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a string")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TypeError(f"{name} must be a non-negative integer")
        out[name] = value
    return out


def _declared(value: object) -> dict[str, dict[str, float]]:
    """The per-source declared figures of a registry entry: finite numbers only."""
    if not isinstance(value, dict):
        raise TypeError("declared must be an object")
    out: dict[str, dict[str, float]] = {}
    for source, figures in value.items():
        if not isinstance(figures, dict):
            raise TypeError("declared figures must be objects")
        numbers = {}
        for name, number in figures.items():
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise TypeError("declared figures must be numbers")
            if not math.isfinite(number):
                raise ValueError("declared figures must be finite")
            numbers[str(name)] = number
        out[str(source)] = numbers
    return out


def new_node_id() -> bytes:
    """A fresh random 8-byte node id."""
    return secrets.token_bytes(NODE_ID_SIZE)


def new_key() -> bytes:
    """A fresh 256-bit HMAC key from the OS CSPRNG."""
    return secrets.token_bytes(KEY_SIZE)


class NodeRegistry:
    """Load, change and save the registry file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or registry_path()
        self._nodes: dict[str, NodeRecord] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict):
                raise TypeError("the registry must be a JSON object")
            nodes = [NodeRecord.from_json(item) for item in data.get("nodes", [])]
        except (OSError, ValueError, KeyError, TypeError, RecursionError, UsageError) as exc:
            raise ConfigError(
                f"node registry {self.path}: unreadable or invalid ({type(exc).__name__})"
            ) from None
        self._nodes = {n.label: n for n in nodes}

    def save(self) -> None:
        """Write atomically with mode 0600 (the file holds keys)."""
        payload = json.dumps(
            {"version": 1, "nodes": [n.to_json() for n in self._nodes.values()]}, indent=2
        )
        write_private_file(self.path, (payload + "\n").encode())

    def nodes(self) -> list[NodeRecord]:
        """Every registered node, in registration order."""
        return list(self._nodes.values())

    def get(self, label: str) -> NodeRecord:
        """The node called label; UsageError when there is none."""
        try:
            return self._nodes[label]
        except KeyError:
            known = ", ".join(self._nodes) or "none"
            raise UsageError(f"no node labelled {label!r} (registered: {known})") from None

    def find(self, label_or_link: str) -> NodeRecord | None:
        """The node with this label or link path, if any."""
        if label_or_link in self._nodes:
            return self._nodes[label_or_link]
        for node in self._nodes.values():
            if node.link == label_or_link:
                return node
        return None

    def put(self, record: NodeRecord) -> None:
        """Add or replace a node (by label); a node id may belong to one label only."""
        for other in self._nodes.values():
            if other.label != record.label and other.node_id == record.node_id:
                raise UsageError(f"node id already registered as {other.label!r}")
        self._nodes[record.label] = record

    def remove(self, label: str) -> NodeRecord:
        """Forget a node; returns its record."""
        record = self.get(label)
        del self._nodes[label]
        return record

    def update_link(self, label: str, link: str) -> None:
        """Change where a node is plugged in."""
        self._nodes[label] = replace(self.get(label), link=link)

    def raise_boot_counter(self, label: str, node_id: bytes, boot_counter: int) -> bool:
        """Remember a higher accepted boot counter of this node (same label and id); never lowers it."""
        record = self._nodes.get(label)
        if record is None or record.node_id != node_id or boot_counter <= record.boot_counter:
            return False
        self._nodes[label] = replace(record, boot_counter=boot_counter)
        return True


@contextmanager
def registry_transaction(path: Path | None = None) -> Iterator[NodeRegistry]:
    """Load the registry under an exclusive lock and save it if the block succeeds.

    Several simulators or commands may change the registry at once; the lock
    file beside it serialises their read-modify-write cycles.
    """
    path = path or registry_path()
    ensure_private_dir(path.parent)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        registry = NodeRegistry(path)
        yield registry
        registry.save()
    finally:
        os.close(fd)


def remember_boot_counter(record: NodeRecord, boot_counter: int, path: Path | None = None) -> None:
    """Store a newly accepted boot counter in the registry (atomically, under its lock)."""
    with registry_transaction(path) as registry:
        registry.raise_boot_counter(record.label, record.node_id, boot_counter)
