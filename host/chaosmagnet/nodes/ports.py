"""Which device a node's port path leads to, and whether it is still that node's.

A path such as /dev/ttyACM0 names whatever is plugged in now, and a /dev/pts
path names whichever terminal got that number last.  So, as mpremote does,
a node is registered by what the device says it is: the USB serial number
(with VID:PID and the /dev/serial/by-id link), and before every open the host
checks the device behind the path (``PortGuard.check``).  The rules:

* **USB node** (registered with a serial number): the path is used only while
  its device reports that serial number (and VID:PID); otherwise the port
  carrying that serial number, if any, is used instead (re-resolved, by-id
  path preferred).  Anything else is refused.
* **Simulated node** (registered by ``nodes simulate``): the path must lead to
  a pty whose master is held by the simulator process that registered it (its
  pid and start time are in the registry), so a stale link to a /dev/pts
  number that now belongs to a terminal is refused.
* **Path-bound node** (an older registry, or a port without a serial number):
  the path must be a serial port pyserial lists, never a pty; the serial
  number it shows at the first open is pinned for the run, and a different
  device behind the path later is refused.

The check never opens or writes to anything; ``device_id`` lets the link
compare the device it opened with the one that was checked.
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chaosmagnet.errors import escape_device_text

if TYPE_CHECKING:
    from chaosmagnet.nodes.registry import NodeRecord

ESPRESSIF_VID = 0x303A
BY_ID_DIR = "/dev/serial/by-id"
_PTY_SLAVE_MAJORS = range(136, 144)  # UNIX98_PTY_SLAVE_MAJOR .. +7 (Linux devices.txt)


@dataclass(frozen=True)
class PortInfo:
    """One serial port as the OS describes it (pyserial's list_ports, plus its by-id link)."""

    device: str
    serial_number: str = ""
    vid: int | None = None
    pid: int | None = None
    manufacturer: str = ""
    description: str = ""
    by_id: str = ""

    @property
    def vid_pid(self) -> str:
        """'303a:1001', or '' for a port that is not USB."""
        return f"{self.vid:04x}:{self.pid or 0:04x}" if self.vid is not None else ""


PortLister = Callable[[], list[PortInfo]]


def _by_id_links() -> dict[str, str]:
    """Real device path -> its /dev/serial/by-id link."""
    links: dict[str, str] = {}
    for link in sorted(glob.glob(os.path.join(BY_ID_DIR, "*"))):
        links.setdefault(os.path.realpath(link), link)
    return links


def list_serial_ports() -> list[PortInfo]:
    """Every serial port pyserial finds, with serial number, VID:PID and by-id link."""
    from serial.tools import list_ports

    links = _by_id_links()
    ports = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        ports.append(
            PortInfo(
                device=port.device,
                serial_number=escape_device_text(port.serial_number or ""),
                vid=port.vid,
                pid=port.pid,
                manufacturer=escape_device_text(port.manufacturer or ""),
                description=escape_device_text(port.description or ""),
                by_id=links.get(os.path.realpath(port.device), ""),
            )
        )
    return ports


def device_id(path: str) -> tuple[int, int] | None:
    """(st_dev, st_rdev) of the character device at path (symlinks followed), else None."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_rdev) if stat.S_ISCHR(info.st_mode) else None


def fd_device_id(fd: int) -> tuple[int, int] | None:
    """(st_dev, st_rdev) of an open file descriptor, as device_id gives for a path."""
    info = os.fstat(fd)
    return (info.st_dev, info.st_rdev) if stat.S_ISCHR(info.st_mode) else None


def is_pty(path: str) -> bool:
    """True when path leads to a pseudo-terminal (slave) device."""
    ident = device_id(path)
    return ident is not None and os.major(ident[1]) in _PTY_SLAVE_MAJORS


def process_start(pid: int) -> int | None:
    """The start time of a live process (clock ticks since boot, /proc/PID/stat), else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    try:
        return int(fields[19])  # field 22 of stat(5); fields[0] is field 3
    except (IndexError, ValueError):
        return None


def holds_pty_master(pid: int, pty_path: str) -> bool:
    """True when process pid holds the master (/dev/ptmx) side of the pty at pty_path."""
    name = os.path.basename(os.path.realpath(pty_path))
    if not name.isdigit():
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.path.basename(os.readlink(f"/proc/{pid}/fd/{fd}")) != "ptmx":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as handle:
                info = handle.read()
        except OSError:
            continue
        for line in info.splitlines():
            key, _, value = line.partition(":")
            if key == "tty-index" and value.strip() == name:
                return True
    return False


@dataclass(frozen=True)
class PortCheck:
    """The verdict of a check: the path to open (with its device id), or why not.

    ``wrong_device`` tells a refusal (something else is behind the path) from
    an absence (nothing there yet).
    """

    path: str | None
    reason: str = ""
    device: tuple[int, int] | None = None
    wrong_device: bool = False

    @property
    def ok(self) -> bool:
        """True when the port may be opened."""
        return self.path is not None


def _refuse(reason: str) -> PortCheck:
    return PortCheck(None, reason, wrong_device=True)


def _absent(reason: str) -> PortCheck:
    return PortCheck(None, reason)


def _find(ports: list[PortInfo], path: str) -> PortInfo | None:
    real = os.path.realpath(path)
    for port in ports:
        if os.path.realpath(port.device) == real:
            return port
    return None


def _matches(record: NodeRecord, port: PortInfo) -> bool:
    same_usb_id = record.usb_vid is None or (port.vid, port.pid) == (record.usb_vid, record.usb_pid)
    return port.serial_number == record.serial_number and same_usb_id


@dataclass
class PortGuard:
    """Decides, before each open, which path (if any) the link may open for one node.

    ``lister`` is injected so that USB cases are testable without hardware.
    """

    record: NodeRecord
    lister: PortLister = list_serial_ports
    pinned_serial: str | None = field(default=None, init=False)

    def check(self) -> PortCheck:
        """The path to open now, or the reason to wait (nothing is opened or written)."""
        if self.record.simulated:
            return self._check_simulated()
        if self.record.serial_number:
            return self._check_usb()
        return self._check_path_bound()

    def _ports(self) -> list[PortInfo] | None:
        try:
            return self.lister()
        except (OSError, ValueError):  # sysfs unreadable: nothing can be vouched for
            return None

    def _ok(self, path: str) -> PortCheck:
        ident = device_id(path)
        if ident is None:
            return _refuse(f"{path} is not a character device")
        return PortCheck(path, "", ident)

    def _check_usb(self) -> PortCheck:
        record = self.record
        path = record.link
        if is_pty(path):
            return _refuse("port now belongs to another device (a pty, not this node's board)")
        ports = self._ports()
        if ports is None:
            return _absent("cannot list the serial ports")
        here = _find(ports, path) if os.path.exists(path) else None
        if here is not None and _matches(record, here):
            return self._ok(path)
        elsewhere = [p for p in ports if _matches(record, p)]
        if elsewhere:
            port = elsewhere[0]
            return self._ok(port.by_id or port.device)
        if here is not None or os.path.exists(path):
            return _refuse("port now belongs to another device")
        return _absent(f"not found: no serial port with serial number {record.serial_number}")

    def _check_simulated(self) -> PortCheck:
        record = self.record
        path = record.link
        if not os.path.exists(path):
            return _absent("not found: the simulator's port is absent")
        if not is_pty(path):
            return _refuse("port now belongs to another device (not a pty)")
        pid, started = record.simulator_pid, record.simulator_started
        if pid is None:
            return _refuse("simulated node registered without its simulator's process: restart it")
        if started is not None and process_start(pid) != started:
            return _absent("the simulator that registered this node is gone")
        if not holds_pty_master(pid, path):
            return _refuse("port now belongs to another device (a pty the simulator does not hold)")
        return self._ok(path)

    def _check_path_bound(self) -> PortCheck:
        path = self.record.link
        if not os.path.exists(path):
            return _absent("not found: port absent")
        if is_pty(path):
            return _refuse(
                "port now belongs to another device (a pty not registered by `nodes simulate`)"
            )
        ports = self._ports()
        if ports is None:
            return _absent("cannot list the serial ports")
        port = _find(ports, path)
        if port is None:
            return _refuse("not a serial port (pyserial does not list it)")
        if self.pinned_serial is None:
            self.pinned_serial = port.serial_number
        elif port.serial_number != self.pinned_serial:
            return _refuse("port now belongs to another device")
        return self._ok(path)


def identity_of(path: str, lister: PortLister = list_serial_ports) -> PortInfo | None:
    """The listed serial port at path (for registering a node by its serial number)."""
    return _find(lister(), path) if os.path.exists(path) else None
