"""Which folders of csrc/ become extension modules on this machine (read by build.py and setup.py).

A folder with ``*.c`` files is a module; a header of it may restrict it to one
machine type with an ``ARCH: x86_64`` comment (vendored code written for AVX2).
"""

from __future__ import annotations

import platform
import re
from pathlib import Path

CSRC = Path(__file__).resolve().parent
_ARCH = re.compile(r"ARCH:[ \t]+([A-Za-z0-9_]+)")


def builds_here(folder: Path) -> bool:
    """Whether csrc/<folder> is built on this machine."""
    if not any(folder.glob("*.c")):
        return False
    machine = platform.machine().lower()
    machine = "x86_64" if machine == "amd64" else machine
    wanted = {arch.lower() for header in folder.glob("*.h") for arch in _ARCH.findall(header.read_text())}
    return not wanted or machine in wanted


def module_names() -> list[str]:
    """The csrc/ folders built here, sorted."""
    return sorted(p.name for p in CSRC.iterdir() if p.is_dir() and builds_here(p))
