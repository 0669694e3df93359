"""Shared pieces for tests/test_mesh_*.py: host identities, a real mosquitto per test module.

``make_host_home`` gives a host its own CHAOS_HOME with an identity (cheap
scrypt, a fully credited test pool) and its mesh keys.  ``Broker`` runs
mosquitto with a configuration written by ``init_mesh`` on a free loopback
port, with freshly generated certificates, and stops it by its process id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from chaosmagnet.mesh.keys import MeshKeys, load_mesh_keys
from chaosmagnet.mesh.setup import MeshSetup, init_mesh, mosquitto_command
from chaosmagnet.minting.identity import create_identity
from chaosmagnet.minting.sealing import Sealer
from chaosmagnet.mqtt.credentials import ClientCredentials
from mint_helpers import FAST_SCRYPT, PASSPHRASE, FullPool

MESH = "testmesh"


def make_host_home(home: Path) -> MeshKeys:
    """A CHAOS_HOME with a host identity (keys/identity/) and its mesh KEM key."""
    keys = home / "keys"
    asyncio.run(create_identity(keys, FullPool(), Sealer(PASSPHRASE, FAST_SCRYPT), timeout=5.0))
    return load_mesh_keys(keys)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Broker:
    """A running mosquitto for one mesh set-up."""

    setup: MeshSetup
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        """The broker URL clients connect to."""
        return f"mqtts://127.0.0.1:{self.port}"  # no name lookup: a bare root may have no /etc/hosts

    def client(self, label: str) -> ClientCredentials:
        """A client's credentials folder."""
        return self.setup.client(label)

    def stop(self) -> None:
        """Stop mosquitto (its own process id only)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log_text(self) -> str:
        """What mosquitto logged so far."""
        return self.log.read_text(errors="replace")


def start_broker(root: Path, hosts: list[str], collectors: list[str]) -> Broker:
    """init_mesh under root on a free port, then mosquitto in the background, ready for TLS."""
    port = free_port()
    setup = init_mesh(
        root / "mesh", mesh=MESH, hosts=hosts, collectors=collectors, port=port, bind="127.0.0.1",
        broker_names=["127.0.0.1"],
    )
    log = root / "mosquitto.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(mosquitto_command(setup), stdout=out, stderr=subprocess.STDOUT)
    broker = Broker(setup, port, process, log)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {broker.log_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            break
        if time.monotonic() > deadline:
            broker.stop()
            raise RuntimeError("mosquitto did not start listening")
        time.sleep(0.05)
    return broker


def tls_for(client: ClientCredentials) -> ssl.SSLContext:
    """The client's TLS context."""
    return client.tls_context()


def env_for(home: Path) -> dict[str, str]:
    """The environment of a `chaos-host` subprocess living in ``home``."""
    env = dict(os.environ)
    env["CHAOS_HOME"] = str(home)
    env.pop("CHAOS_PASSPHRASE", None)
    return env
