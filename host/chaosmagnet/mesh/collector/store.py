"""SQLite storage for the collector: hosts, status and source time series, events, alerts.

One connection, WAL journal, ``synchronous=NORMAL``; rows are written in
batches (one transaction per flush).  Rows older than the retention are
deleted by ``purge``.  Only verified messages reach this module.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosmagnet.errors import MeshError

SCHEMA = """
CREATE TABLE IF NOT EXISTS hosts (
    label TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'unknown',
    health TEXT NOT NULL DEFAULT 'unknown',
    last_status TEXT
);
CREATE TABLE IF NOT EXISTS status (
    label TEXT NOT NULL,
    received REAL NOT NULL,
    sent REAL NOT NULL,
    state TEXT NOT NULL,
    health TEXT NOT NULL,
    credited_bits REAL,
    fill REAL,
    raw_bytes INTEGER,
    seeds_sent INTEGER,
    seeds_received INTEGER
);
CREATE INDEX IF NOT EXISTS status_by_host ON status (label, received);
CREATE TABLE IF NOT EXISTS source_status (
    label TEXT NOT NULL,
    received REAL NOT NULL,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    rate REAL,
    h_min REAL,
    credit_h REAL,
    credited_bits REAL,
    rct_failures INTEGER,
    apt_failures INTEGER
);
CREATE INDEX IF NOT EXISTS source_status_by_host ON source_status (label, received);
CREATE TABLE IF NOT EXISTS events (
    label TEXT NOT NULL,
    received REAL NOT NULL,
    sent REAL NOT NULL,
    event TEXT NOT NULL,
    source TEXT,
    fields TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (received);
CREATE TABLE IF NOT EXISTS alerts (
    label TEXT NOT NULL,
    received REAL NOT NULL,
    kind TEXT NOT NULL,
    source TEXT,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (received);
"""

FAILED_STATES = ("failed", "error")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value: Any, limit: int = 200) -> str:
    return str(value)[:limit] if value is not None else ""


@dataclass
class StoreCounts:
    """Rows written since start (the benchmark and /metrics read them)."""

    status_rows: int = 0
    source_rows: int = 0
    event_rows: int = 0
    alert_rows: int = 0


class FleetStore:
    """The collector's database."""

    def __init__(self, path: Path, *, retention_seconds: float = 7 * 86400) -> None:
        self.path = Path(path)
        self.retention_seconds = retention_seconds
        try:
            self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise MeshError(f"{self.path}: cannot open the collector database ({exc})") from None
        self.counts = StoreCounts()
        self._status: list[tuple[Any, ...]] = []
        self._sources: list[tuple[Any, ...]] = []
        self._events: list[tuple[Any, ...]] = []
        self._alerts: list[tuple[Any, ...]] = []
        self._hosts: dict[str, tuple[Any, ...]] = {}
        self._last_state: dict[str, str] = {}
        self._last_source_state: dict[tuple[str, str], str] = {}
        self._last_body: dict[str, dict[str, Any]] = {}
        for label, state, last in self.db.execute("SELECT label, state, last_status FROM hosts"):
            self._last_state[label] = state
            with contextlib.suppress(ValueError, TypeError):
                body = json.loads(last)
                if isinstance(body, dict):
                    self._last_body[label] = body
            for source in _sources_of(last):
                self._last_source_state[(label, source["name"])] = source["state"]

    def close(self) -> None:
        """Flush and close."""
        self.flush()
        self.db.close()

    # -- pins ---------------------------------------------------------------
    def pins(self) -> dict[str, str]:
        """label -> identity fingerprint of every host seen before (the verifier's pins)."""
        return dict(self.db.execute("SELECT label, fingerprint FROM hosts"))

    def forget(self, label: str) -> bool:
        """Forget a host (its pin and rows): the next identity under its label is accepted."""
        self.flush()
        with self.db:
            self.db.execute("BEGIN")
            found = self.db.execute("DELETE FROM hosts WHERE label = ?", (label,)).rowcount > 0
            for table in ("status", "source_status", "events", "alerts"):
                self.db.execute(f"DELETE FROM {table} WHERE label = ?", (label,))  # noqa: S608 (fixed names)
        self._last_state.pop(label, None)
        self._last_body.pop(label, None)
        for key in [k for k in self._last_source_state if k[0] == label]:
            del self._last_source_state[key]
        return found

    # -- writes (batched) ---------------------------------------------------
    def add_identity(self, label: str, fingerprint: str, received: float) -> None:
        """A verified identity: create the host row (or keep it)."""
        self.flush()
        self.db.execute(
            "INSERT INTO hosts (label, fingerprint, first_seen, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(label) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)",
            (label, fingerprint, received, received),
        )

    def add_status(self, label: str, fingerprint: str, sent: float, received: float, body: Any) -> None:
        """A verified status: one status row, one row per source, alerts on transitions."""
        if not isinstance(body, dict):
            return
        if "sources" not in body and label in self._last_body:
            # a last will says only "offline": keep the last known sources and pool beside it
            body = {**self._last_body[label], "state": body.get("state"), "reason": body.get("reason")}
        self._last_body[label] = body
        state = _text(body.get("state"), 20) or "unknown"
        health = _text(body.get("health"), 20) or "unknown"
        pool = body.get("pool") if isinstance(body.get("pool"), dict) else {}
        mesh = body.get("mesh") if isinstance(body.get("mesh"), dict) else {}
        self._status.append(
            (
                label,
                received,
                sent,
                state,
                health,
                _number(pool.get("credited_bits")),
                _number(pool.get("fill")),
                _number(pool.get("raw_bytes")),
                _number(mesh.get("seeds_sent")),
                _number(mesh.get("seeds_received")),
            )
        )
        previous = self._last_state.get(label)
        if state == "offline" and previous != "offline":
            reason = _text(body.get("reason")) or "stopped"
            self._alert(label, received, "host-offline", None, f"{label} went offline ({reason})")
        elif state == "online" and previous == "offline":
            self._alert(label, received, "host-online", None, f"{label} is back online")
        self._last_state[label] = state
        for source in _sources_of(body) if state != "offline" else []:
            name = source["name"]
            source_state = source["state"]
            self._sources.append(
                (
                    label,
                    received,
                    name,
                    source_state,
                    _number(source.get("rate")),
                    _number(source.get("h_min")),
                    _number(source.get("credit_h")),
                    _number(source.get("credited_bits")),
                    _number(source.get("rct_failures")),
                    _number(source.get("apt_failures")),
                )
            )
            before = self._last_source_state.get((label, name))
            if source_state != before:
                if source_state in FAILED_STATES:
                    reason = _text(source.get("reason"))
                    self._alert(
                        label, received, "source-failed", name, f"{label}: {name} {source_state} {reason}".strip()
                    )
                elif source_state == "quarantined":
                    self._alert(label, received, "source-quarantined", name, f"{label}: {name} quarantined")
            self._last_source_state[(label, name)] = source_state
        self._hosts[label] = (fingerprint, received, state, health, body)  # JSON at flush: only the last counts

    def add_event(self, label: str, sent: float, received: float, body: Any) -> None:
        """A verified health event."""
        if not isinstance(body, dict):
            return
        self._events.append(
            (
                label,
                received,
                sent,
                _text(body.get("event"), 40),
                _text(body.get("source"), 80) or None,
                json.dumps(body, allow_nan=False, default=str)[:4000],
            )
        )

    def _alert(self, label: str, received: float, kind: str, source: str | None, message: str) -> None:
        self._alerts.append((label, received, kind, source, message))

    def pending(self) -> int:
        """Rows waiting for the next flush."""
        return len(self._status) + len(self._sources) + len(self._events) + len(self._alerts) + len(self._hosts)

    def flush(self) -> None:
        """Write every pending row in one transaction."""
        if not self.pending():
            return
        status, sources, events, alerts, hosts = self._status, self._sources, self._events, self._alerts, self._hosts
        self._status, self._sources, self._events, self._alerts, self._hosts = [], [], [], [], {}
        try:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany("INSERT INTO status VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", status)
                self.db.executemany("INSERT INTO source_status VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", sources)
                self.db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", events)
                self.db.executemany("INSERT INTO alerts VALUES (?, ?, ?, ?, ?)", alerts)
                for label, (fingerprint, received, state, health, body) in hosts.items():
                    last = _json_or_empty(body)
                    self.db.execute(
                        "INSERT INTO hosts (label, fingerprint, first_seen, last_seen, state, health, last_status) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(label) DO UPDATE SET last_seen = excluded.last_seen, "
                        "state = excluded.state, health = excluded.health, last_status = excluded.last_status",
                        (label, fingerprint, received, received, state, health, last),
                    )
        except sqlite3.Error as exc:
            raise MeshError(f"{self.path}: cannot write ({exc})") from None
        self.counts.status_rows += len(status)
        self.counts.source_rows += len(sources)
        self.counts.event_rows += len(events)
        self.counts.alert_rows += len(alerts)

    def purge(self, now: float | None = None) -> int:
        """Delete rows older than the retention; returns how many."""
        cutoff = (time.time() if now is None else now) - self.retention_seconds
        removed = 0
        with self.db:
            self.db.execute("BEGIN")
            for table in ("status", "source_status", "events", "alerts"):
                removed += self.db.execute(f"DELETE FROM {table} WHERE received < ?", (cutoff,)).rowcount  # noqa: S608
        return removed

    # -- reads --------------------------------------------------------------
    def hosts(self) -> list[dict[str, Any]]:
        """Every host with its last status."""
        rows = self.db.execute(
            "SELECT label, fingerprint, first_seen, last_seen, state, health, last_status FROM hosts ORDER BY label"
        ).fetchall()
        out = []
        for label, fingerprint, first_seen, last_seen, state, health, last in rows:
            status = json.loads(last) if last else {}
            out.append(
                {
                    "label": label,
                    "fingerprint": fingerprint,
                    "first_seen": first_seen,
                    "last_seen": last_seen,
                    "state": state,
                    "health": health,
                    "sources": status.get("sources", []),
                    "pool": status.get("pool", {}),
                    "mesh": status.get("mesh", {}),
                    "uptime": status.get("uptime"),
                }
            )
        return out

    def alerts(self, limit: int = 50) -> list[dict[str, Any]]:
        """The most recent alerts, newest first."""
        rows = self.db.execute(
            "SELECT label, received, kind, source, message FROM alerts ORDER BY received DESC LIMIT ?", (limit,)
        )
        return [dict(zip(("label", "time", "kind", "source", "message"), row, strict=True)) for row in rows]

    def events(self, limit: int = 50) -> list[dict[str, Any]]:
        """The most recent health events, newest first."""
        rows = self.db.execute(
            "SELECT label, received, event, source, fields FROM events ORDER BY received DESC LIMIT ?", (limit,)
        )
        return [
            {"label": label, "time": t, "event": event, "source": source, "fields": json.loads(fields)}
            for label, t, event, source, fields in rows
        ]

    def history(self, label: str, since: float) -> dict[str, Any]:
        """One host's pool fill and per-source health since ``since``."""
        pool = [
            {"t": t, "fill": fill, "credited_bits": credited, "state": state}
            for t, fill, credited, state in self.db.execute(
                "SELECT received, fill, credited_bits, state FROM status WHERE label = ? AND received >= ? "
                "ORDER BY received",
                (label, since),
            )
        ]
        sources: dict[str, list[dict[str, Any]]] = {}
        for t, name, state, h_min, credit_h, rate in self.db.execute(
            "SELECT received, source, state, h_min, credit_h, rate FROM source_status "
            "WHERE label = ? AND received >= ? ORDER BY received",
            (label, since),
        ):
            sources.setdefault(name, []).append(
                {"t": t, "state": state, "h_min": h_min, "credit_h": credit_h, "rate": rate}
            )
        return {"label": label, "pool": pool, "sources": sources}

    def row_counts(self) -> dict[str, int]:
        """Rows per table now."""
        return {
            table: int(self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
            for table in ("hosts", "status", "source_status", "events", "alerts")
        }


def _json_or_empty(body: Any) -> str:
    """The body as JSON text; ``{}`` for what JSON cannot hold (NaN, too deep)."""
    try:
        return json.dumps(body, allow_nan=False, default=str)
    except (ValueError, RecursionError):
        return "{}"


def _sources_of(status: Any) -> list[dict[str, Any]]:
    if isinstance(status, str):
        try:
            status = json.loads(status)
        except ValueError:
            return []
    if not isinstance(status, dict) or not isinstance(status.get("sources"), list):
        return []
    return [
        s
        for s in status["sources"]
        if isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("state"), str)
    ][:64]
