"""Atomic, private file writes: keys, bundles and identity files are never half-written.

A file is written to a temporary name in the same folder (created with mode
0600, never wider), flushed and fsynced, then renamed over the target, and the
folder is fsynced so the rename survives a crash.  Folders are created 0700.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from chaosmagnet.errors import UsageError

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


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
def atomic_file(path: Path, *, mode: int = PRIVATE_FILE_MODE, overwrite: bool = True) -> Iterator[BinaryIO]:
    """Yield a handle on a temporary file beside ``path``; on success it becomes ``path``.

    The file gets exactly ``mode`` (whatever the umask), is fsynced, and is
    renamed into place (with ``overwrite=False``: linked, failing if the target
    exists); the folder is fsynced after.  On any failure, Ctrl-C included, the
    temporary file is removed and ``path`` is untouched; an OSError becomes a
    UsageError naming the file.  The folder must exist.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise UsageError(f"{path} already exists")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode & 0o600)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the target appeared meanwhile
            os.unlink(tmp)
    except BaseException as exc:  # also Ctrl-C: never leave the temporary file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write {path}: {exc.strerror}") from None
        raise
    _fsync_dir(path.parent)


def write_private_file(path: Path, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically with mode 0600, creating its folder 0700.

    With ``overwrite=False`` an existing file is an error (UsageError) and is
    left untouched.  On any failure the temporary file is removed.
    """
    path = Path(path)
    ensure_private_dir(path.parent)
    with atomic_file(path, mode=PRIVATE_FILE_MODE, overwrite=overwrite) as handle:
        handle.write(data)
    return path


def _fsync_dir(folder: Path) -> None:
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
