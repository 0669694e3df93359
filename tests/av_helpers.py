"""Shared helpers for the audio, video and HID source tests.

Real devices made up by the tests: an X server (Xvfb), ALSA PCMs defined in a
private ~/.asoundrc, video clips written with OpenCV, and the chaos-host
console script to run against them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def file_pcm(name: str, infile: str) -> str:
    """An ALSA PCM whose capture reads raw S16 data from ``infile`` (over the null PCM)."""
    return (
        f'pcm.{name} {{\n  type file\n  slave.pcm "null"\n  file "/dev/null"\n'
        f'  infile "{infile}"\n  format "raw"\n}}\n'
    )


def alsa_home(root: Path, pcms: dict[str, str]) -> Path:
    """A HOME directory whose .asoundrc defines ``pcms`` (name -> infile)."""
    home = root / "home"
    home.mkdir(exist_ok=True)
    (home / ".asoundrc").write_text("".join(file_pcm(n, f) for n, f in pcms.items()))
    return home


def alsa_env(home: Path) -> dict[str, str]:
    """An environment for a child process that sees only the PCMs of ``home``."""
    return dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))


def have_x_tools() -> bool:
    """Xvfb and xdotool are installed."""
    return shutil.which("Xvfb") is not None and shutil.which("xdotool") is not None


@contextmanager
def xvfb_display(*extra_args: str) -> Iterator[str]:
    """Run a private Xvfb server; yield its DISPLAY name (":N")."""
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x1024x24", "-nolisten", "tcp",
         *extra_args],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            pytest.skip("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def xdotool(display: str | None, *args: str) -> None:
    """Run one xdotool command (on ``display``, or the current DISPLAY)."""
    env = dict(os.environ) if display is None else dict(os.environ, DISPLAY=display)
    subprocess.run(["xdotool", *args], check=True, timeout=30, env=env)


def chaos_host() -> str:
    """Path of the chaos-host console script; skips the test when it is not installed."""
    beside = Path(sys.executable).with_name("chaos-host")
    if beside.exists():
        return str(beside)
    found = shutil.which("chaos-host")
    if found is None:
        pytest.skip("chaos-host console script not installed")
    return found
