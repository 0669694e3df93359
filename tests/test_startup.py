"""Start-up cost and import direction.

`chaos-host --help` must not import the heavy libraries (numpy, scipy,
cryptography, the PQC backends, aiohttp, rich, OpenCV, sounddevice, pynput) nor
even the command-line framework: it prints the command list from
chaosmagnet.cli.COMMANDS.  These tests hold the modules it may import, check its
text against what the loaded application prints, and check that nothing below
the command line and the dashboard imports them.  (Timings are printed by
`chaos-host bench`, never asserted.)
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "host" / "chaosmagnet"

#: The only chaosmagnet modules `chaos-host --help` may import.
HELP_MODULES = {
    "chaosmagnet",
    "chaosmagnet.__main__",
    "chaosmagnet.cli",
    "chaosmagnet.cli.app",
    "chaosmagnet.cli.helptext",
    "chaosmagnet.errors",
}

#: Libraries named by issue 17 that only the commands using them may load.
HEAVY = {
    "numpy",
    "scipy",
    "cryptography",
    "pqcrypto",
    "oqs",
    "aiohttp",
    "rich",
    "cv2",
    "sounddevice",
    "pynput",
    "typer",
    "cffi",
    "_cffi_backend",
}


def imported_modules(args: list[str], env: dict[str, str] | None = None) -> list[str]:
    """Modules a fresh interpreter imports to run ``args`` (from -X importtime)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", proc.stderr, re.M)


def test_help_imports_only_the_standard_library_and_the_listed_modules() -> None:
    modules = imported_modules(["-m", "chaosmagnet", "--help"])
    assert "chaosmagnet.cli" in modules  # the parse worked
    top_levels = {m.split(".")[0] for m in modules}
    assert not top_levels & HEAVY, sorted(top_levels & HEAVY)
    third_party = {t for t in top_levels if t not in sys.stdlib_module_names and t != "chaosmagnet"}
    # The interpreter's own start-up may load site hooks (editable installs); nothing else.
    third_party = {
        t
        for t in third_party
        # what the interpreter loads before us (Debian's sitecustomize imports apport_python_hook)
        if not t.startswith(
            ("__editable__", "_distutils_hack", "_virtualenv", "sitecustomize", "usercustomize", "apport_python_hook")
        )
    }
    assert third_party == set()
    ours = {m for m in modules if m.split(".")[0] == "chaosmagnet"}
    assert ours <= HELP_MODULES, sorted(ours - HELP_MODULES)


@pytest.mark.parametrize("columns", ["40", "60", "79", "80", "200"])
def test_help_text_equals_the_loaded_application(columns: str) -> None:
    env = {**os.environ, "COLUMNS": columns}
    quick = subprocess.run(
        [sys.executable, "-m", "chaosmagnet", "--help"], capture_output=True, text=True, env=env, check=True
    )
    full = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, typer.main, chaosmagnet.cli as cli\n"
            "group = typer.main.get_command(cli.app)\n"
            "ctx = group.make_context('chaos-host', [], resilient_parsing=True)\n"
            "sys.stdout.write(group.get_help(ctx) + '\\n')\n",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert quick.stdout == full.stdout, (
        "chaosmagnet.cli.COMMANDS no longer matches the registered commands: update it"
    )
    assert quick.stderr == ""


def test_no_arguments_prints_the_same_help() -> None:
    none = subprocess.run([sys.executable, "-m", "chaosmagnet"], capture_output=True, text=True, check=True)
    help_ = subprocess.run([sys.executable, "-m", "chaosmagnet", "--help"], capture_output=True, text=True, check=True)
    assert none.stdout == help_.stdout and "Commands:" in none.stdout


def test_a_command_still_loads_its_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "chaosmagnet", "assess", "--help"], capture_output=True, text=True, check=True
    )
    assert "--iid" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "chaosmagnet", "no-such-command"], capture_output=True, text=True)
    assert bad.returncode == 2 and "No such command" in bad.stderr and "Traceback" not in bad.stderr


def test_the_package_app_has_every_command() -> None:
    import typer.main
    from chaosmagnet import cli

    # as a set: the order is the order the command modules were first imported in (a test
    # that imported one of them earlier comes first); the help's order is cli.COMMANDS'
    names = list(typer.main.get_command(cli.app).commands)
    assert sorted(names) == sorted(name for name, _ in cli.COMMANDS)
    assert len(names) == len(set(names))


# --------------------------------------------------------------------------
# Imports run downhill
# --------------------------------------------------------------------------

#: The entry points: the only modules outside cli/ and dashboard/ that may import them.
ENTRY_POINTS = {"chaosmagnet.__main__"}
UPPER = ("chaosmagnet.cli", "chaosmagnet.dashboard")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module an import statement in the file names (at any depth, relative ones resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return imports_in(path.read_text(), package)


def imports_in(source: str, package: str) -> set[str]:
    """Every module the import statements of ``source`` (a module of ``package``) name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_nothing_below_the_command_line_imports_it() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if name.startswith(UPPER) or name in ENTRY_POINTS:
            continue
        for target in imports_of(path):
            if target == UPPER[0] or target.startswith(tuple(u + "." for u in UPPER)) or target in UPPER:
                offenders.append(f"{name} imports {target}")
    assert offenders == []


def test_nothing_below_the_mesh_imports_it() -> None:
    """The mesh lives in its own folder: only it and the command line import chaosmagnet.mesh
    (the Wi-Fi node transport shares the MQTT plumbing below both, chaosmagnet.mqtt)."""
    offenders = [
        f"{module_name(path)} imports {target}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if not module_name(path).startswith(("chaosmagnet.mesh", *UPPER)) and module_name(path) not in ENTRY_POINTS
        for target in imports_of(path)
        if target == "chaosmagnet.mesh" or target.startswith("chaosmagnet.mesh.")
    ]
    assert offenders == []


def test_the_dashboard_does_not_import_the_command_line() -> None:
    offenders = [
        f"{module_name(path)} imports {target}"
        for path in sorted((PACKAGE / "dashboard").rglob("*.py"))
        for target in imports_of(path)
        if target == "chaosmagnet.cli" or target.startswith("chaosmagnet.cli.")
    ]
    assert offenders == []


def test_the_import_checker_sees_every_kind_of_import() -> None:
    source = (
        "import chaosmagnet.cli.view\n"
        "def f():\n"
        "    from chaosmagnet.cli import common\n"
        "    from ..dashboard import server\n"
        "    from . import pool\n"
    )
    found = imports_in(source, "chaosmagnet.minting")
    assert {"chaosmagnet.cli.view", "chaosmagnet.cli.common", "chaosmagnet.dashboard.server"} <= found
    assert "chaosmagnet.minting.pool" in found
    assert "chaosmagnet.sources.selection" in imports_of(PACKAGE / "minting" / "host.py")


def command_names() -> list[str]:
    from chaosmagnet import cli

    return [name for name, _ in cli.COMMANDS]


@pytest.mark.parametrize("command", command_names())
def test_each_command_loads_alone(command: str) -> None:
    """`chaos-host CMD --help` works with only CMD's module loaded (run and bench load all)."""
    proc = subprocess.run(
        [sys.executable, "-m", "chaosmagnet", command, "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Usage: chaos-host {command} ")


def modules_after(args: list[str], tmp_path: Path) -> list[str]:
    """sys.modules once `chaos-host ARGS` has run in a fresh interpreter."""
    out = tmp_path / "modules.txt"
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write('\\n'.join(sorted(sys.modules))))\n"
        "from chaosmagnet.cli import main\n"
        f"main({args!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    return out.read_text().split()


def test_mint_does_not_load_the_node_or_dashboard_code(tmp_path: Path) -> None:
    modules = modules_after(["mint", "--help"], tmp_path)
    assert "chaosmagnet.cli.keys_commands" in modules
    assert not [m for m in modules if m.startswith(("chaosmagnet.nodes", "chaosmagnet.dashboard", "numpy"))]


def test_help_leaves_sys_modules_free_of_heavy_libraries(tmp_path: Path) -> None:
    modules = modules_after(["--help"], tmp_path)
    assert "chaosmagnet.cli" in modules
    assert not {m.split(".")[0] for m in modules} & HEAVY


def test_mint_imports_stay_lean() -> None:
    """What `chaos-host mint` imports before it draws (its command module, minting, every PQC
    backend's availability) leaves out numpy, importlib.metadata (needed only once a liboqs
    library is found) and cryptography's PEM serialization (export only)."""
    code = (
        "import sys\n"
        "from chaosmagnet.cli import load_commands\n"
        "load_commands('mint')\n"
        "import chaosmagnet.minting.host, chaosmagnet.minting.mint, chaosmagnet.minting.sealing\n"
        "from chaosmagnet.pqc.registry import all_backends\n"
        "for b in all_backends(): b.availability()\n"
        "from chaosmagnet.pqc.liboqs_backend import find_liboqs\n"
        "print(find_liboqs() is not None)\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    liboqs_found, modules = proc.stdout.splitlines()
    loaded = set(modules.split())
    assert "chaosmagnet.cli.keys_commands" in loaded and "chaosmagnet.pqc.cryptography_backend" in loaded
    assert not loaded & {"numpy", "cryptography.hazmat.primitives.serialization"}
    if liboqs_found == "False":
        assert "importlib.metadata" not in loaded
