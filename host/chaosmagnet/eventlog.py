"""Append-only JSON-lines logs under logs/ (health failures, state changes).

One object per line, flushed at once, so a crash loses at most the line
being written.  logs/ is created 0700 and its files 0600, like keys/.
Nothing secret is ever passed here.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO


def data_dir() -> Path:
    """Where keys/ and logs/ live: $CHAOS_HOME, else the current directory."""
    return Path(os.environ.get("CHAOS_HOME", ".")).resolve()


def logs_dir() -> Path:
    """The logs/ folder (not created here)."""
    return data_dir() / "logs"


def _private_parent(path: Path) -> None:
    """Create the folders above ``path`` with mode 0700 (like keys/); OSError if impossible."""
    missing = []
    probe = path.parent
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)


class JsonLineLog:
    """A JSON-lines file opened for appending; thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._warned = False

    def write(self, event: str, **fields: Any) -> None:
        """Append {"time", "event", **fields} as one line.

        A log that cannot be written (logs/ is a file, the disk is full) never
        takes the caller down: the first failure is reported on stderr, the
        event is dropped, and later writes try again.
        """
        record = {"time": time.time(), "event": event, **fields}
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        with self._lock:
            try:
                if self._file is None:
                    _private_parent(self.path)
                    fd = os.open(
                        self.path,
                        os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                        0o600,
                    )
                    self._file = os.fdopen(fd, "a", encoding="utf-8")
                self._file.write(line)
                self._file.flush()
            except OSError as exc:
                if self._file is not None:
                    with contextlib.suppress(OSError):
                        self._file.close()
                    self._file = None
                if not self._warned:
                    self._warned = True
                    print(
                        f"chaos-host: warning: cannot write {self.path}: {exc.strerror}; "
                        "events are not logged there",
                        file=sys.stderr,
                    )

    def close(self) -> None:
        """Close the file (reopened on the next write)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
