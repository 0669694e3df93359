"""A resumable restart campaign: R restarts x S samples into a matrix file.

Files, for ``--out MATRIX``:

* ``MATRIX.partial``: the rows collected so far (S bytes each), appended and
  fsynced one restart at a time; renamed to MATRIX when the last row is in,
  so MATRIX only ever exists complete.
* ``MATRIX.restarts.jsonl``: the side file.  First line: the campaign
  (source, kind, restarts, samples, bits); then one line per restart, written
  after its row: index, UTC time, seconds taken, the boot counter (nodes) and
  the restarter's details.  It stays next to the matrix as its record.

* ``MATRIX.lock``: held (flock) while a campaign writes these files, so a
  second campaign on the same MATRIX is refused instead of interleaving rows.

A campaign interrupted at any point resumes from the side file: rows beyond
the last recorded restart (a crash between the two writes) are cut off, and
the next restart follows.  Resuming with other parameters is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from chaosmagnet.errors import InputFileError, UsageError

__all__ = [
    "CampaignFiles",
    "CampaignPlan",
    "CampaignResult",
    "RestartRecord",
    "Restarter",
    "campaign_files",
    "completed_restarts",
    "run_campaign",
]

_LOG_VERSION = 1


@dataclass(frozen=True)
class CampaignPlan:
    """What a campaign collects: restarts x samples of a source, bits per sample."""

    source: str
    kind: str  # "local" or "node"
    restarts: int
    samples: int
    bits: int

    def check(self) -> None:
        """UsageError for numbers out of range."""
        if not 1 <= self.restarts <= 1_000_000:
            raise UsageError(f"--restarts must be between 1 and 1,000,000, got {self.restarts}")
        if not 1 <= self.samples <= 1_000_000:
            raise UsageError(f"--samples must be between 1 and 1,000,000, got {self.samples}")
        if not 1 <= self.bits <= 8:
            raise UsageError(f"--bits must be between 1 and 8, got {self.bits}")


@dataclass(frozen=True)
class RestartRecord:
    """What one restart produced: the first samples, and what is known about the boot."""

    samples: np.ndarray = field(repr=False)
    boot_counter: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Restarter(ABC):
    """Restarts one source and returns the first samples it delivers afterwards.

    Implementations: ``LocalRestarter`` (a host source in a fresh process);
    ``NodeRestarter`` sends the authenticated reboot command, waits for the
    handshake with boot counter + 1 and takes the first samples of that boot.
    """

    kind: str = ""

    @abstractmethod
    async def restart_and_collect(self, index: int, samples: int) -> RestartRecord:
        """Restart the source (restart number ``index``, from 0) and take ``samples`` samples."""

    async def close(self) -> None:  # noqa: B027 - a hook: most restarters hold nothing
        """Release whatever the restarter holds (links, processes)."""


@dataclass(frozen=True)
class CampaignFiles:
    """The matrix, its partial file, its side file and its lock."""

    matrix: Path
    partial: Path
    log: Path
    lock: Path


def campaign_files(out: Path) -> CampaignFiles:
    """The files of a campaign writing ``out``."""
    return CampaignFiles(
        matrix=out,
        partial=out.with_name(out.name + ".partial"),
        log=out.with_name(out.name + ".restarts.jsonl"),
        lock=out.with_name(out.name + ".lock"),
    )


@contextlib.contextmanager
def _exclusive(files: CampaignFiles) -> Iterator[None]:
    """Hold the campaign's lock; UsageError when another campaign holds it."""
    try:
        fd = os.open(files.lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UsageError(f"{files.lock}: cannot create the campaign lock: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"another restart-campaign is writing {files.matrix} (it holds {files.lock.name})"
            ) from None
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                files.lock.unlink()
    finally:
        os.close(fd)


@dataclass(frozen=True)
class CampaignResult:
    """How a campaign run ended."""

    files: CampaignFiles
    plan: CampaignPlan
    resumed_at: int  # restarts already done when this run started
    completed: int  # restarts done now
    seconds: float

    @property
    def finished(self) -> bool:
        """All restarts are in and the matrix file is written."""
        return self.completed >= self.plan.restarts


def _header(plan: CampaignPlan) -> dict[str, Any]:
    return {"campaign": {"version": _LOG_VERSION, **asdict(plan)}}


def _fsync_append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _read_log(files: CampaignFiles) -> tuple[dict[str, Any] | None, list[dict[str, Any]], bool]:
    """The side file's campaign header, its restart lines, and whether a torn last line was dropped."""
    try:
        text = files.log.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [], False
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{files.log}: cannot read: {exc}") from None
    lines = text.split("\n")
    records: list[dict[str, Any]] = []
    header: dict[str, Any] | None = None
    torn = False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            if number == len(lines) or (number == len(lines) - 1 and not lines[-1]):
                torn = True  # a line torn by an interruption: that restart is redone
                break
            raise InputFileError(f"{files.log}: line {number} is not JSON") from None
        if not isinstance(obj, dict):
            raise InputFileError(f"{files.log}: line {number} is not a JSON object")
        if header is None:
            if "campaign" not in obj:
                raise InputFileError(f"{files.log}: the first line is not a campaign header")
            header = obj
        else:
            records.append(obj)
    return header, records, torn


def completed_restarts(files: CampaignFiles, plan: CampaignPlan) -> int:
    """Restarts already collected for plan (0 for a new campaign); repairs a torn end.

    UsageError when the side file belongs to a campaign with other parameters.
    """
    header, records, torn = _read_log(files)
    if header is None:
        if files.partial.exists():
            files.partial.unlink()  # rows without a record of their campaign: start over
        return 0
    if header["campaign"] != _header(plan)["campaign"]:
        theirs = header["campaign"]
        raise UsageError(
            f"{files.log} belongs to another campaign ({theirs.get('source')}, "
            f"{theirs.get('restarts')} restarts x {theirs.get('samples')} samples, "
            f"{theirs.get('bits')} bits): use the same parameters to resume, or another --out"
        )
    for expected, record in enumerate(records):
        if record.get("restart") != expected:
            raise InputFileError(f"{files.log}: restart {expected} is missing or out of order")
    try:
        size = files.partial.stat().st_size
    except FileNotFoundError:
        size = 0
    rows = min(len(records), size // plan.samples)
    if size != rows * plan.samples:
        with open(files.partial, "r+b" if size else "wb") as fh:
            fh.truncate(rows * plan.samples)
            os.fsync(fh.fileno())
    if rows < len(records) or torn:  # a record without its row, or a torn line: rewrite without them
        kept = [json.dumps(header), *(json.dumps(r) for r in records[:rows])]
        tmp = files.log.with_name(files.log.name + ".tmp")
        tmp.write_text("\n".join(kept) + "\n", encoding="utf-8")
        os.replace(tmp, files.log)
    return rows


ProgressCallback = Callable[[int, int], None]  # (restarts done, restarts planned)


async def run_campaign(
    plan: CampaignPlan,
    restarter: Restarter,
    out: Path,
    *,
    progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.time,
    stop_after: int | None = None,
) -> CampaignResult:
    """Run (or resume) plan into ``out``; see the module docstring for the files.

    ``stop_after`` ends this run after that many new restarts (the campaign
    stays resumable).  UsageError when ``out`` already holds a finished matrix.
    """
    plan.check()
    files = campaign_files(out)
    with _exclusive(files):
        if files.matrix.exists():
            raise UsageError(f"{files.matrix} already exists: remove it (and {files.log.name}) to collect again")
        started = clock()
        done = completed_restarts(files, plan)
        resumed_at = done
        if not files.log.exists():
            files.log.write_text(json.dumps(_header(plan)) + "\n", encoding="utf-8")
        if progress is not None:
            progress(done, plan.restarts)
        mask = np.uint8((1 << plan.bits) - 1)
        new = 0
        try:
            while done < plan.restarts and (stop_after is None or new < stop_after):
                began = clock()
                record = await restarter.restart_and_collect(done, plan.samples)
                row = np.asarray(record.samples, dtype=np.uint8)
                if row.size != plan.samples:
                    raise InputFileError(f"restart {done}: got {row.size} samples, expected {plan.samples}")
                if plan.bits < 8:
                    row = row & mask
                _fsync_append(files.partial, row.tobytes())
                entry = {
                    "restart": done,
                    "time": datetime.fromtimestamp(began, timezone.utc).isoformat(timespec="milliseconds"),
                    "seconds": round(clock() - began, 3),
                    "boot_counter": record.boot_counter,
                    **({"details": record.details} if record.details else {}),
                }
                _fsync_append(files.log, (json.dumps(entry) + "\n").encode("utf-8"))
                done += 1
                new += 1
                if progress is not None:
                    progress(done, plan.restarts)
        finally:
            await restarter.close()
        if done >= plan.restarts:
            os.replace(files.partial, files.matrix)
    return CampaignResult(files, plan, resumed_at, done, clock() - started)
