"""`chaos-host mesh init` and `mesh broker`: a small mesh's CA, broker files and client folders.

Under ``<home>/mesh/`` (home: $CHAOS_HOME, else the current directory)::

    mesh.json                     the mesh name, the broker's names and port
    broker/ca.pem, ca.key         the mesh CA (ca.key signs new clients; keep it here)
    broker/broker.pem, broker.key the broker's TLS certificate
    broker/passwd                 mosquitto password file ($7$ PBKDF2-SHA512)
    broker/acl                    per-client topic rules
    broker/mosquitto.conf         TLS only, client certificate and password required
    clients/<label>/              one credentials folder per host, collector or Wi-Fi node

passwd and acl are derived from clients/ every time a client is added, so
the folder of client credentials is the one source of truth.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from chaosmagnet.errors import MeshError, UsageError
from chaosmagnet.mesh import pki
from chaosmagnet.mesh.passwd import password_line
from chaosmagnet.minting.canonical import file_json
from chaosmagnet.mqtt.credentials import ClientCredentials, load_client, write_client
from chaosmagnet.mqtt.topics import ROOT, host_prefix, node_prefix, subscription, valid_name
from chaosmagnet.mqtt.url import DEFAULT_PORT
from chaosmagnet.securefile import ensure_private_dir, write_private_file

MESH_FORMAT = "chaosmagnet.mesh/1"
MAX_PACKET_BYTES = 256 * 1024  # the broker drops anything larger; our own limit is lower (messages.py)


@dataclass(frozen=True)
class MeshSetup:
    """The files of one mesh set-up."""

    root: Path

    @property
    def broker_dir(self) -> Path:
        """broker/: CA, broker certificate, passwd, acl, mosquitto.conf."""
        return self.root / "broker"

    @property
    def clients_dir(self) -> Path:
        """clients/: one credentials folder per client."""
        return self.root / "clients"

    @property
    def config_file(self) -> Path:
        """broker/mosquitto.conf."""
        return self.broker_dir / "mosquitto.conf"

    def settings(self) -> dict[str, object]:
        """mesh.json: name, broker names, port, bind address."""
        path = self.root / "mesh.json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MeshError(f"no mesh in {self.root}: run `chaos-host mesh init` first") from None
        except (OSError, ValueError):
            raise MeshError(f"{path}: unreadable or not JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != MESH_FORMAT:
            raise MeshError(f"{path}: not a chaosmagnet mesh file")
        return doc

    def client(self, label: str) -> ClientCredentials:
        """The credentials folder of one client."""
        return load_client(self.clients_dir / label)

    def clients(self) -> list[ClientCredentials]:
        """Every client folder, by label."""
        if not self.clients_dir.is_dir():
            return []
        return [load_client(p) for p in sorted(self.clients_dir.iterdir()) if (p / "client.json").exists()]


def _check_label(label: str, what: str) -> None:
    if not valid_name(label):
        raise UsageError(f"{what} {label!r}: use 1-32 of a-z 0-9 _ -, starting with a letter or digit")


def init_mesh(
    root: Path,
    *,
    mesh: str = "default",
    hosts: list[str],
    collectors: list[str],
    broker_names: list[str] | None = None,
    port: int = DEFAULT_PORT,
    bind: str = "0.0.0.0",
) -> MeshSetup:
    """Write a new mesh under ``root`` (refuses to touch an existing one)."""
    _check_label(mesh, "mesh name")
    labels = hosts + collectors
    for label in labels:
        _check_label(label, "client label")
    if len(set(labels)) != len(labels):
        raise UsageError("every host and collector needs its own label")
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be 1..65535, not {port}")
    setup = MeshSetup(Path(root))
    if (setup.root / "mesh.json").exists() or setup.broker_dir.exists() or setup.clients_dir.exists():
        raise UsageError(f"a mesh already exists in {setup.root} (add clients with `chaos-host mesh add`)")
    names = list(dict.fromkeys((broker_names or []) + ["localhost", "127.0.0.1", "::1"]))
    ensure_private_dir(setup.broker_dir)
    try:
        ca = pki.create_ca(mesh)
        broker = pki.issue(ca, mesh, names[0], server_names=names)
        write_private_file(setup.broker_dir / "ca.key", ca.key_pem)
        write_private_file(setup.broker_dir / "ca.pem", ca.certificate_pem)
        write_private_file(setup.broker_dir / "broker.key", broker.key_pem)
        write_private_file(setup.broker_dir / "broker.pem", broker.certificate_pem)
        settings = {"format": MESH_FORMAT, "mesh": mesh, "broker_names": names, "port": port, "bind": bind}
        write_private_file(setup.root / "mesh.json", file_json(settings))
        for label in hosts:
            add_client(setup, label, "host", rewrite=False)
        for label in collectors:
            add_client(setup, label, "collector", rewrite=False)
        write_broker_files(setup)
    except BaseException:
        shutil.rmtree(setup.broker_dir, ignore_errors=True)
        shutil.rmtree(setup.clients_dir, ignore_errors=True)
        (setup.root / "mesh.json").unlink(missing_ok=True)
        raise
    return setup


def add_client(
    setup: MeshSetup, label: str, role: str, *, rewrite: bool = True, owner: str | None = None
) -> ClientCredentials:
    """Issue a certificate and password for a new client and write its folder (a node names
    its owner: the host that holds its key and alone may read it)."""
    _check_label(label, "client label")
    settings = setup.settings()
    folder = setup.clients_dir / label
    if folder.exists():
        raise UsageError(f"client {label!r} already exists in {setup.clients_dir}")
    if role == "node":
        _check_owner(setup, owner)
    ca = pki.Issued((setup.broker_dir / "ca.pem").read_bytes(), (setup.broker_dir / "ca.key").read_bytes())
    mesh = str(settings["mesh"])
    issued = pki.issue(ca, mesh, label)
    names = settings.get("broker_names") or ["localhost"]
    broker = f"mqtts://{names[0]}:{settings['port']}"  # type: ignore[index]
    client = write_client(
        folder,
        mesh=mesh,
        label=label,
        role=role,
        password=secrets.token_urlsafe(24),
        ca_pem=ca.certificate_pem,
        cert_pem=issued.certificate_pem,
        key_pem=issued.key_pem,
        broker=broker,
        owner=owner if role == "node" else None,
    )
    if rewrite:
        write_broker_files(setup)
    return client


def _check_owner(setup: MeshSetup, owner: str | None) -> None:
    hosts = [c.label for c in setup.clients() if c.role == "host"]
    if owner is None or owner not in hosts:
        known = ", ".join(hosts) or "none yet"
        raise UsageError(f"a node needs --host naming one of the mesh's hosts ({known})")


def assign_node(setup: MeshSetup, label: str, owner: str) -> ClientCredentials:
    """Move a Wi-Fi node to another host: its folder names the new owner and the ACL follows
    (a running broker reloads on SIGHUP).  The node keeps its MQTT password and certificate."""
    client = setup.client(label)
    if client.role != "node":
        raise UsageError(f"{label!r} is a {client.role}, not a node")
    _check_owner(setup, owner)
    write_client(
        client.folder,
        mesh=client.mesh,
        label=client.label,
        role="node",
        password=client.password,
        ca_pem=client.ca_file.read_bytes(),
        cert_pem=None,
        key_pem=None,
        broker=client.broker,
        owner=owner,
    )
    write_broker_files(setup)
    return setup.client(label)


def acl_text(mesh: str, clients: list[ClientCredentials]) -> str:
    """The mosquitto ACL: a host writes only under its own prefix and commands only its own
    nodes; a node writes only its own frames and state and reads only its own commands; a
    collector only reads."""
    lines = [
        "# written by chaos-host mesh init / mesh add: regenerated from clients/, do not edit",
        "# a host publishes only under its own prefix; a collector reads everything, writes nothing",
        "# a node publishes only under its own prefix; only its host reads it and commands it",
    ]
    for client in clients:
        lines.append("")
        lines.append(f"user {client.username}")
        if client.role == "host":
            lines.append(f"topic write {host_prefix(mesh, client.label)}/#")
            for channel in ("identity", "status"):
                lines.append(f"topic read {subscription(mesh, channel)}")
            lines.append(f"topic read {subscription(mesh, 'peer', client.label)}")
            for node in clients:
                if node.role == "node" and node.owner == client.label:
                    prefix = node_prefix(mesh, node.label)
                    lines += [f"topic read {prefix}/frames", f"topic read {prefix}/state", f"topic write {prefix}/cmd"]
        elif client.role == "node":
            prefix = node_prefix(mesh, client.label)
            lines += [f"topic write {prefix}/frames", f"topic write {prefix}/state", f"topic read {prefix}/cmd"]
        else:
            lines.append(f"topic read {ROOT}/{mesh}/#")
    return "\n".join(lines) + "\n"


def mosquitto_conf(setup: MeshSetup, port: int, bind: str) -> str:
    """A mosquitto 2 configuration: one TLS listener, certificate and password required."""
    b = setup.broker_dir.resolve()
    lines = [
        "# written by chaos-host mesh init: TLS only, client certificate + password, per-client ACL",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {b / 'passwd'}",
        f"acl_file {b / 'acl'}",
        "persistence false",
        f"max_packet_size {MAX_PACKET_BYTES}",
        "set_tcp_nodelay true",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages true",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        lines.append("# started as root: stay root so the 0600 files stay readable")
        lines.append("user root")
    lines += [
        "",
        f"listener {port} {bind}",
        "protocol mqtt",
        f"cafile {b / 'ca.pem'}",
        f"certfile {b / 'broker.pem'}",
        f"keyfile {b / 'broker.key'}",
        "require_certificate true",
        "use_identity_as_username false",
    ]
    return "\n".join(lines) + "\n"


def write_broker_files(setup: MeshSetup) -> None:
    """(Re)write passwd, acl and mosquitto.conf from mesh.json and clients/."""
    settings = setup.settings()
    clients = setup.clients()
    mesh = str(settings["mesh"])
    passwd = "".join(password_line(c.username, c.password) + "\n" for c in clients)
    write_private_file(setup.broker_dir / "passwd", passwd.encode("utf-8"))
    write_private_file(setup.broker_dir / "acl", acl_text(mesh, clients).encode("utf-8"))
    conf = mosquitto_conf(setup, int(settings["port"]), str(settings["bind"]))  # type: ignore[call-overload]
    write_private_file(setup.config_file, conf.encode("utf-8"))


def mosquitto_command(setup: MeshSetup) -> list[str]:
    """The command line that runs this mesh's broker in the foreground."""
    if not setup.config_file.exists():
        raise MeshError(f"no broker configuration in {setup.broker_dir}: run `chaos-host mesh init` first")
    binary = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )
    if binary is None:
        raise MeshError("mosquitto is not installed (Debian: apt-get install mosquitto)")
    return [binary, "-c", str(setup.config_file)]
