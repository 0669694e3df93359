"""pytest options shared by the suite.

--node-port PORT runs the hardware tests (tests/test_nodes_hardware.py) against
a real node on that serial port; without it they are skipped.  --ble-node LABEL
runs the real-adapter BLE test (tests/test_nodes_ble.py) against a registered
BLE node through BlueZ.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--node-port",
        action="store",
        default=None,
        help="serial port of a deployed ChaosMagnet node for the hardware tests (skipped without it)",
    )
    parser.addoption(
        "--node-label",
        action="store",
        default=None,
        help="registry label of the node on --node-port (default: the node registered with that port)",
    )

    parser.addoption(
        "--ble-node",
        action="store",
        default=None,
        help="registry label of a node deployed with --link ble, for the real-adapter BLE test "
        "(skipped without it; needs BlueZ and an adapter)",
    )


@pytest.fixture
def ble_node(request: pytest.FixtureRequest) -> str:
    """The --ble-node label; skips the test when none was given."""
    label = request.config.getoption("--ble-node")
    if not label:
        pytest.skip("needs a real BLE node and adapter: pass --ble-node LABEL (see docs/first-node.md)")
    return str(label)


@pytest.fixture
def node_port(request: pytest.FixtureRequest) -> str:
    """The --node-port value; skips the test when none was given."""
    port = request.config.getoption("--node-port")
    if not port:
        pytest.skip("needs a real node: pass --node-port /dev/ttyACM0 (see docs/first-node.md)")
    return str(port)


@pytest.fixture(autouse=True)
def _private_control_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own control socket, so a `chaos-host run` already
    running on this machine (or another test's) is never mistaken for the
    test's own.  Subprocesses inherit it through the environment."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="cm-sock-")
    monkeypatch.setenv("CHAOS_CONTROL_SOCKET", f"{folder}/control.sock")
    yield
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private CHAOS_HOME, with no CHAOS_NODES from the caller's environment."""
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    monkeypatch.delenv("CHAOS_NODES", raising=False)
    return tmp_path
