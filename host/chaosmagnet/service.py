"""Running chaos-host as a systemd service: the unit file and sd_notify.

``unit_text`` writes a Type=notify unit: `run` tells systemd READY=1 once its
sources are up, pings the watchdog, and reports a one-line STATUS.  The
system unit feeds the kernel (``run --feed-kernel``) with only the capability
that needs (CAP_SYS_ADMIN for RNDADDENTROPY) and a read-only view of the file
system apart from its state directory.  ``sd_notify`` speaks systemd's notify
protocol (a datagram to $NOTIFY_SOCKET) without libsystemd.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from chaosmagnet.errors import UsageError

UNIT_NAME = "chaos-host.service"


def sd_notify(*lines: str) -> bool:
    """Send ``KEY=VALUE`` lines to systemd; False when not run by systemd (no $NOTIFY_SOCKET)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(lines).encode())
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None when not watched."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.5, int(usec) / 2_000_000)
    except ValueError:
        return None


@dataclass(frozen=True)
class UnitPlan:
    """Where a unit goes and what it runs."""

    scope: str  # "system" or "user"
    path: Path
    command: list[str]
    text: str


def _chaos_host_command() -> list[str]:
    """The absolute command that starts this chaos-host (the console script beside this Python)."""
    script = Path(sys.executable).with_name("chaos-host")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "chaosmagnet"]


def unit_text(scope: str, command: list[str], *, feed_kernel: bool) -> str:
    """The unit file for scope "system" or "user"."""
    exec_start = " ".join(shlex.quote(part) for part in command)
    lines = [
        "# Written by `chaos-host service install`; `chaos-host service uninstall` removes it.",
        "[Unit]",
        "Description=ChaosMagnet entropy harvester (chaos-host run)",
        "Documentation=https://github.com/chaosmagnet/chaosmagnet/blob/main/docs/kernel-feed.md",
        "After=local-fs.target",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={exec_start}",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartSec=5",
        "WatchdogSec=30",
        "TimeoutStopSec=30",
        "StateDirectory=chaosmagnet",
        "StateDirectoryMode=0700",
        "WorkingDirectory=%S/chaosmagnet",
        "Environment=CHAOS_HOME=%S/chaosmagnet",
        "UMask=0077",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ProtectControlGroups=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
    ]
    if scope == "system":
        lines += [
            "ProtectHome=read-only",
            "ProtectKernelModules=yes",
            "ProtectClock=yes",
            "ProtectHostname=yes",
            # RNDADDENTROPY needs CAP_SYS_ADMIN; nothing else is kept
            f"CapabilityBoundingSet={'CAP_SYS_ADMIN' if feed_kernel else ''}",
            "AmbientCapabilities=",
            "DevicePolicy=closed",
            "DeviceAllow=/dev/hwrng r",
            "DeviceAllow=char-ttyACM rw",
            "DeviceAllow=char-ttyUSB rw",
            "SystemCallArchitectures=native",
        ]
    lines += ["", "[Install]", f"WantedBy={'multi-user.target' if scope == 'system' else 'default.target'}", ""]
    return "\n".join(lines)


def plan_unit(scope: str, *, feed_kernel: bool, extra_args: list[str] | None = None) -> UnitPlan:
    """Decide the unit's path and command for scope "system" or "user"."""
    if scope not in ("system", "user"):
        raise UsageError(f"unknown scope {scope!r}: --system or --user")
    if scope == "user" and feed_kernel:
        raise UsageError("--feed-kernel needs a system service (a user's service cannot credit the kernel)")
    if scope == "system":
        path = Path(os.environ.get("CHAOS_SYSTEMD_DIR", "/etc/systemd/system")) / UNIT_NAME
    else:
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        path = Path(os.environ.get("CHAOS_SYSTEMD_DIR", config / "systemd" / "user")) / UNIT_NAME
    command = _chaos_host_command() + ["run"] + (["--feed-kernel"] if feed_kernel else []) + list(extra_args or [])
    return UnitPlan(scope, path, command, unit_text(scope, command, feed_kernel=feed_kernel))


def systemctl(scope: str, *args: str) -> subprocess.CompletedProcess[str] | None:
    """Run systemctl for the scope; None when there is no systemctl or no running systemd."""
    tool = shutil.which("systemctl")
    if tool is None or not Path("/run/systemd/system").is_dir():
        return None
    command = [tool] + (["--user"] if scope == "user" else []) + list(args)
    return subprocess.run(command, capture_output=True, text=True, timeout=60)
