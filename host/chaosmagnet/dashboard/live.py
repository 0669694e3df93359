"""What the dashboard shows, as plain JSON-ready data, built from a running Engine.

``LiveState`` ticks once a second (in the engine's event loop): it measures
the conditioned output (OutputProbe), keeps the pool's chart history, picks
up new audit-trail lines, and wakes the push streams.  Health events arrive
through an engine listener into a bounded ring.  Everything here is public:
the pool appears only as counters and its fingerprint, never its state.

Nodes are the node sources (``node:<label>:<source>``) grouped by label,
with the link facts their details() report (chaosmagnet.nodes.sources).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from chaosmagnet.dashboard.probe import OutputProbe

HISTORY = 600  # per-second points kept (10 minutes), as the engine does
LOG_LINES = 300
AUDIT_LINES = 200

# (key in a node source's details(), key in the node row) -- see chaosmagnet.nodes.sources
_NODE_FACTS = (
    ("port", "port"),
    ("link_state", "link_state"),
    ("link_reason", "link_reason"),
    ("verified", "verified"),
    ("connects", "connects"),
    ("frames", "frames_accepted"),
    ("drops", "frames_dropped"),
    ("lost_frames", "lost_frames"),
    ("queue_overflows", "queue_overflows"),
    ("firmware", "firmware"),
    ("uptime_s", "uptime_s"),
)


def _scalar(value: Any) -> Any:
    """A JSON scalar for a details value (device text is already escaped by the sources)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _plain(value: Any, depth: int = 0) -> Any:
    """JSON-ready copy of small nested data (dicts, lists, scalars), bounded in depth."""
    if isinstance(value, Mapping) and depth < 3:
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and depth < 3:
        return [_plain(v, depth + 1) for v in value[:64]]
    return _scalar(value)


class AuditTail:
    """Follows logs/audit.jsonl: the last entries, without their signatures."""

    def __init__(self, path: Path, keep: int = AUDIT_LINES) -> None:
        self.path = path
        self._offset = 0
        self._inode: int | None = None
        self._partial = b""
        self.entries: deque[dict[str, Any]] = deque(maxlen=keep)

    def poll(self) -> None:
        """Read what was appended since the last poll (rereads a rewritten file)."""
        try:
            info = self.path.stat()
        except OSError:
            return  # missing (or unreadable) until the first entry is written
        if info.st_ino != self._inode or info.st_size < self._offset:
            self._inode, self._offset, self._partial = info.st_ino, 0, b""
            self.entries.clear()
        if info.st_size == self._offset:
            return
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read(min(info.st_size - self._offset, 4 << 20))
        except OSError:
            return  # not a readable file (a folder?): the tail stays as it was
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            entry = self._entry(line)
            if entry is not None:
                self.entries.append(entry)

    @staticmethod
    def _entry(line: bytes) -> dict[str, Any] | None:
        try:
            doc = json.loads(line)
            return {
                "seq": int(doc["seq"]),
                "time": str(doc["time"]),
                "event": str(doc["event"]),
                "fields": _plain(doc.get("fields", {})),
                "hash": str(doc.get("hash", ""))[:16],
                "signed": doc.get("signature") is not None,
            }
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError):
            return None  # a damaged line: `chaos-host audit verify` says what is wrong

    def after(self, seq: int) -> list[dict[str, Any]]:
        """Entries with a sequence number above ``seq``."""
        return [e for e in self.entries if e["seq"] > seq]


class LiveState:
    """The dashboard's view of one engine (see the module docstring)."""

    def __init__(
        self,
        engine: Any,
        *,
        audit_path: Path | None = None,
        mint_status: Callable[[], dict[str, Any]] | None = None,
        probe: OutputProbe | None = None,
    ) -> None:
        self.engine = engine
        self.mint_status = mint_status
        self.probe = probe or OutputProbe(engine.pool)
        self.audit = AuditTail(audit_path) if audit_path is not None else None
        self.pool_history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.events: deque[dict[str, Any]] = deque(maxlen=LOG_LINES)
        self._event_id = 0
        self._tick_waiter = asyncio.Event()
        self.ticks = 0
        self.closing = False
        self._load_old_events()
        engine.add_listener(self._on_event)

    # -- inputs -------------------------------------------------------------
    def _load_old_events(self) -> None:
        """The last lines of the health log from before this run, so the tail is not empty."""
        log = getattr(self.engine, "health_log", None)
        path = getattr(log, "path", None)
        if path is None:
            return
        try:
            with open(path, "rb") as handle:
                handle.seek(0, 2)
                size = handle.tell()
                handle.seek(max(0, size - (256 << 10)))
                tail = handle.read()
        except OSError:
            return
        for line in tail.split(b"\n")[-100:]:
            try:
                doc = json.loads(line)
                fields = {k: v for k, v in doc.items() if k not in ("time", "event")}
                self._append_event(str(doc["event"]), fields, float(doc["time"]))
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                continue

    def _on_event(self, event: str, fields: dict[str, Any]) -> None:
        self._append_event(event, fields, time.time())

    def _append_event(self, event: str, fields: Mapping[str, Any], stamp: float) -> None:
        self._event_id += 1
        self.events.append(
            {"id": self._event_id, "time": stamp, "event": event, "fields": _plain(fields)}
        )

    # -- the once-a-second tick ---------------------------------------------
    def tick(self) -> None:
        """Measure the output, record a pool point, read new audit lines, wake the streams."""
        self.probe.tick()
        pool = self.engine.pool
        out = self.probe.estimates()
        self.pool_history.append(
            {
                "t": time.time(),
                "fill": pool.fill,
                "credited_bits": pool.credited_bits,
                "h_min": out["h_min"],
                "h_shannon": out["h_shannon"],
                "h_collision": out["h_collision"],
            }
        )
        if self.audit is not None:
            self.audit.poll()
        self.ticks += 1
        waiter, self._tick_waiter = self._tick_waiter, asyncio.Event()
        waiter.set()

    async def run(self) -> None:
        """Tick once a second until cancelled."""
        while True:
            self.tick()
            await asyncio.sleep(1.0)

    async def next_tick(self, timeout: float = 2.0) -> None:
        """Wait for the next tick (or ``timeout`` seconds, or closing)."""
        if self.closing:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._tick_waiter.wait(), timeout)

    def close(self) -> None:
        """Release every push stream waiting for a tick."""
        self.closing = True
        self._tick_waiter.set()

    # -- views --------------------------------------------------------------
    def sources(self) -> list[dict[str, Any]]:
        """Per-source rows (engine snapshot) with the source details made JSON-safe."""
        rows = []
        for row in self.engine.snapshot()["sources"]:
            row = dict(row)
            row["details"] = _plain(row.get("details", {}))
            rows.append(row)
        return rows

    def pool(self, snapshot: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The pool panel: counters, fingerprint, and the conditioned-output estimates."""
        snap = snapshot if snapshot is not None else self.engine.snapshot()
        pool = dict(snap["pool"])
        pool["output"] = {**self.probe.estimates(), "bytes_measured": self.probe.bytes_measured}
        pool["healthy_credited_bits"] = self.engine.healthy_credited_bits()
        return pool

    def nodes(self, sources: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """One row per node, from its sources (``node:<label>:<source>``) and the link facts
        they report in details(): link state, frames accepted, frames dropped by reason."""
        rows = sources if sources is not None else self.sources()
        members: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row["kind"] == "node" or row["name"].startswith("node:"):
                parts = row["name"].split(":")
                members.setdefault(parts[1] if len(parts) >= 3 else row["name"], []).append(row)
        out = []
        for label, group in sorted(members.items()):
            details = group[0]["details"]  # the sources of a node share one connection
            link = details.get("link")
            linked = details.get("link_state", "linked" if link == "linked" else "waiting")
            node: dict[str, Any] = {"label": label, "link": link, "connected": linked == "linked"}
            for key, as_key in _NODE_FACTS:
                if key in details:
                    node[as_key] = details[key]
            node["sources"] = [
                {
                    "name": m["name"],
                    "state": m["state"],
                    "credited_bits": m["credited_bits"],
                    "rct_failures": m["rct_failures"],
                    "apt_failures": m["apt_failures"],
                    "node_health": m["details"].get("node_health"),
                }
                for m in group
            ]
            out.append(node)
        return out

    def status(self) -> dict[str, Any]:
        """Everything the page shows, in one object (what the push stream sends each second)."""
        snap = self.engine.snapshot()
        sources = []
        for row in snap["sources"]:
            row = dict(row)
            row["details"] = _plain(row.get("details", {}))
            sources.append(row)
        latest = {}
        for row in sources:
            history = self.engine.history(row["name"])
            if history:
                latest[row["name"]] = history[-1]
        return {
            "time": snap["time"],
            "uptime": snap["uptime"],
            "pool": self.pool(snap),
            "pool_point": self.pool_history[-1] if self.pool_history else None,
            "sources": sources,
            "latest": latest,
            "nodes": self.nodes(sources),
            "dependence": snap.get("dependence", {}),  # plain data already (chaosmagnet.dependence)
            "outputs": _plain(snap.get("outputs", {})),
            "mint": self.mint_status()
            if self.mint_status is not None
            else {"available": False, "reason": "minting is not set up"},
        }

    def dependence(self) -> dict[str, Any]:
        """Dependent source groups with their evidence, each pair's last test and the schedule."""
        return dict(self.engine.snapshot().get("dependence", {}))  # plain data already

    def history(self) -> dict[str, Any]:
        """Chart history: per source (engine) and for the pool, oldest first."""
        names = [row["name"] for row in self.engine.snapshot()["sources"]]
        return {
            "sources": {name: self.engine.history(name) for name in names},
            "pool": list(self.pool_history),
        }

    def log_after(self, event_id: int) -> list[dict[str, Any]]:
        """Health-log events newer than ``event_id``."""
        return [e for e in self.events if e["id"] > event_id]

    def audit_after(self, seq: int) -> list[dict[str, Any]]:
        """Audit entries newer than ``seq`` (empty when there is no audit trail)."""
        return self.audit.after(seq) if self.audit is not None else []
