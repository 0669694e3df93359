"""Atomic, private file writes: keys, bundles and identity files are never half-written.

A file is written to a temporary name in the same folder (created with mode
0600, never wider), flushed and fsynced, then renamed over the target, and the
folder is fsynced so the rename survives a crash.  Folders are created 0700.

A process killed mid-write leaves at most a temporary file
(``.<name>.<pid>.<random>.tmp``); ``remove_stale_temporaries`` deletes those
whose process is gone.  ``write_boundary`` marks each point where a kill
leaves a different state on disk; the crash-consistency tests set
``$CHAOS_TEST_CRASH_AT=k`` to make the process exit at the k-th one.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from chaosmagnet.errors import UsageError

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
CRASH_AT_ENV = "CHAOS_TEST_CRASH_AT"
CRASH_EXIT_STATUS = 86
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$")


class _Boundaries:
    """Counts write boundaries in this process (test hook; inert unless the env var is set)."""

    passed = 0


def write_boundary(label: str) -> None:
    """Mark a write boundary; with $CHAOS_TEST_CRASH_AT=k the k-th one exits the process at once.

    Tests only: simulates a kill (os._exit, no cleanup, no flush) between two
    writes.  ``label`` says which boundary it was, printed on stderr when it fires.
    """
    wanted = os.environ.get(CRASH_AT_ENV)
    if not wanted:
        return
    _Boundaries.passed += 1
    if str(_Boundaries.passed) == wanted.strip():
        os.write(2, f"crash-test: killed at write boundary {_Boundaries.passed}: {label}\n".encode())
        os._exit(CRASH_EXIT_STATUS)


def temporary_name(path: Path) -> Path:
    """A fresh temporary name beside ``path`` (hidden; carries our pid for stale-file cleanup)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but not ours to signal
        return True
    return True


def stale_temporaries(folder: Path) -> list[Path]:
    """Temporary files in ``folder`` left by writes of processes that no longer run."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    stale = []
    for name in names:
        match = _TEMPORARY.match(name)
        if match and not _pid_alive(int(match.group(1))):
            stale.append(Path(folder) / name)
    return stale


def remove_stale_temporaries(folders: list[Path]) -> list[Path]:
    """Delete stale temporary files in ``folders``; returns the ones removed."""
    removed = []
    for folder in folders:
        for path in stale_temporaries(folder):
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise UsageError(f"cannot remove {path}: {exc.strerror}") from None
            removed.append(path)
    return removed


def check_writable_dir(folder: Path) -> None:
    """UsageError unless a file can be created in ``folder`` (created 0700 if missing)."""
    ensure_private_dir(folder)
    probe = temporary_name(Path(folder) / "probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except OSError as exc:
        raise UsageError(f"cannot write in {folder}: {exc.strerror}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 if missing; return it."""
    missing = []
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    try:
        for folder in reversed(missing):  # each new folder 0700, not just the last one
            folder.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
        if not path.is_dir():
            raise NotADirectoryError(20, "Not a directory")
    except OSError as exc:
        raise UsageError(f"cannot create folder {path}: {exc.strerror}") from None
    return path


@contextmanager
def atomic_file(
    path: Path,
    *,
    mode: int = PRIVATE_FILE_MODE,
    overwrite: bool = True,
    sync_folder: bool = True,
    sync_file: bool = True,
) -> Iterator[BinaryIO]:
    """Yield a handle on a temporary file beside ``path``; on success it becomes ``path``.

    The file gets exactly ``mode`` (whatever the umask), is fsynced, and is
    renamed into place (with ``overwrite=False``: linked, failing if the target
    exists); the folder is fsynced after (unless ``sync_folder`` is False: a
    crash may then leave the previous file in place, never a partial one).
    ``sync_file=False`` skips the file's fsync too: for a file that may lag
    behind after a power loss and whose damage is detected and repairable
    (the audit head); a killed process still leaves the old file or the new one.
    On any failure, Ctrl-C included, the temporary file is removed and
    ``path`` is untouched; an OSError becomes a UsageError naming the file.
    The folder must exist.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise UsageError(f"{path} already exists")
    tmp = temporary_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode & 0o600)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            yield handle
            handle.flush()
            if sync_file:
                os.fsync(handle.fileno())
        write_boundary(f"{path.name}: temporary file written")
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the target appeared meanwhile
            write_boundary(f"{path.name}: linked, temporary file not yet removed")
            os.unlink(tmp)
    except BaseException as exc:  # also Ctrl-C: never leave the temporary file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write {path}: {exc.strerror}") from None
        raise
    if sync_folder:
        fsync_dir(path.parent)
    write_boundary(f"{path.name}: in place")


def write_private_file(
    path: Path,
    data: bytes,
    *,
    overwrite: bool = True,
    sync_folder: bool = True,
    sync_file: bool = True,
) -> Path:
    """Write ``data`` to ``path`` atomically with mode 0600, creating its folder 0700.

    With ``overwrite=False`` an existing file is an error (UsageError) and is
    left untouched.  On any failure the temporary file is removed.
    ``sync_folder=False`` / ``sync_file=False`` skip the folder's / the file's
    fsync (see atomic_file).
    """
    path = Path(path)
    ensure_private_dir(path.parent)
    with atomic_file(
        path, mode=PRIVATE_FILE_MODE, overwrite=overwrite, sync_folder=sync_folder, sync_file=sync_file
    ) as handle:
        handle.write(data)
    return path


def fsync_dir(folder: Path) -> None:
    """fsync a folder so a rename or unlink in it survives a crash (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
