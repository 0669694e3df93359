"""A mesh client's credentials folder: who it is and how it proves it to the broker.

    client.json   {"format", "mesh", "label", "role", "username", "password", "broker"}
    ca.pem        the mesh CA (the broker's certificate must chain to it)
    client.pem    this client's certificate (the broker requires one)
    client.key    its private key

Everything is written 0600 in a 0700 folder.  `chaos-host mesh init` writes
one folder per client under mesh/clients/; copy a host's folder to that host
(default place: $CHAOS_HOME/mesh/client).  For a user's own broker, write
client.json and ca.pem by hand; client.pem/client.key are optional there.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from chaosmagnet.errors import MeshError
from chaosmagnet.eventlog import data_dir
from chaosmagnet.minting.canonical import file_json
from chaosmagnet.mqtt.topics import valid_name
from chaosmagnet.securefile import write_private_file

CLIENT_FORMAT = "chaosmagnet.mesh-client/1"


def mesh_dir(home: Path | None = None) -> Path:
    """<home>/mesh, where `mesh init` writes and clients read their folders (home: $CHAOS_HOME, else the current directory)."""
    return (home or data_dir()) / "mesh"

ROLES = ("host", "collector", "node")


@dataclass(frozen=True)
class ClientCredentials:
    """One client's identity towards the broker (the password is never shown)."""

    folder: Path
    mesh: str
    label: str
    role: str
    username: str
    password: str = field(repr=False)
    broker: str | None = None
    owner: str | None = None  # a node's host: the one holding its key, the only one reading it

    @property
    def ca_file(self) -> Path:
        """The mesh CA certificate."""
        return self.folder / "ca.pem"

    @property
    def cert_file(self) -> Path | None:
        """This client's certificate, when it has one."""
        path = self.folder / "client.pem"
        return path if path.exists() else None

    @property
    def key_file(self) -> Path | None:
        """This client's certificate key, when it has one."""
        path = self.folder / "client.key"
        return path if path.exists() else None

    def tls_context(self) -> ssl.SSLContext:
        """A client TLS context: verifies the broker against the mesh CA, presents our certificate."""
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.cert_file is not None and self.key_file is not None:
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (OSError, ssl.SSLError) as exc:
            raise MeshError(f"{self.folder}: cannot load the TLS files ({exc})") from None
        return context


def write_client(
    folder: Path,
    *,
    mesh: str,
    label: str,
    role: str,
    password: str,
    ca_pem: bytes,
    cert_pem: bytes | None,
    key_pem: bytes | None,
    broker: str | None,
    owner: str | None = None,
) -> ClientCredentials:
    """Write a credentials folder (all files 0600); returns what was written."""
    doc = {
        "format": CLIENT_FORMAT,
        "mesh": mesh,
        "label": label,
        "role": role,
        "username": label,
        "password": password,
        "broker": broker,
    }
    if owner is not None:
        doc["owner"] = owner
    write_private_file(folder / "ca.pem", ca_pem)
    if cert_pem is not None and key_pem is not None:
        write_private_file(folder / "client.key", key_pem)
        write_private_file(folder / "client.pem", cert_pem)
    write_private_file(folder / "client.json", file_json(doc))
    return load_client(folder)


def load_client(folder: Path) -> ClientCredentials:
    """Read a credentials folder; MeshError with one clear line when it is missing or malformed."""
    folder = Path(folder)
    path = folder / "client.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MeshError(f"{path} not found (copy the folder `chaos-host mesh init` wrote for this client)") from None
    except OSError as exc:
        raise MeshError(f"{path}: unreadable ({exc.strerror})") from None
    except (ValueError, RecursionError):
        raise MeshError(f"{path}: not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != CLIENT_FORMAT:
        raise MeshError(f"{path}: not a chaosmagnet mesh client file")
    fields = {k: doc.get(k) for k in ("mesh", "label", "role", "username", "password")}
    if not all(isinstance(v, str) and v for v in fields.values()):
        raise MeshError(f"{path}: needs mesh, label, role, username and password")
    if not valid_name(fields["mesh"]) or not valid_name(fields["label"]):
        raise MeshError(f"{path}: mesh and label must be 1-32 of a-z 0-9 _ -")
    if fields["role"] not in ROLES:
        raise MeshError(f"{path}: role must be one of {', '.join(ROLES)}")
    if not (folder / "ca.pem").exists():
        raise MeshError(f"{folder / 'ca.pem'} not found")
    broker = doc.get("broker")
    owner = doc.get("owner")
    if fields["role"] == "node" and not (isinstance(owner, str) and valid_name(owner)):
        raise MeshError(f"{path}: a node's folder names its host (owner)")
    return ClientCredentials(
        folder,
        fields["mesh"],
        fields["label"],
        fields["role"],
        fields["username"],
        fields["password"],
        broker if isinstance(broker, str) else None,
        owner if isinstance(owner, str) else None,
    )
