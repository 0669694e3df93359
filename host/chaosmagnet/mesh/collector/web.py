"""The collector's web side (aiohttp): the fleet page, its JSON API and /metrics.

Routes::

    GET  /                           the fleet page (static/fleet.html)
    GET  /static/{file}              fleet.js, fleet.css; style.css and chart.js are the dashboard's own
    GET  /api/fleet                  hosts, their sources and pool, alerts, recent events, drops
    GET  /api/hosts/{label}/history  pool fill and per-source health over time (?seconds=600)
    POST /api/hosts/{label}/forget   forget a host and its pinned identity              (token)
    GET  /metrics                    the whole fleet, Prometheus text format

The same rules as the dashboard (chaosmagnet.websecurity): loopback
unless --allow-remote, Host and Origin checks, the control token for the one
state-changing request.  Nothing served is secret: hosts never send samples,
seeds or pool state.
"""

from __future__ import annotations

import json
import math
import time
from importlib import resources
from typing import Any

from aiohttp import web

from chaosmagnet.errors import DashboardError
from chaosmagnet.mesh.collector.service import Collector
from chaosmagnet.mqtt.topics import valid_name
from chaosmagnet.websecurity import ListenAddress, RequestGuard, guard_middleware, new_token

OWN_STATIC = {"fleet.html": "text/html", "fleet.js": "text/javascript", "fleet.css": "text/css"}
DASHBOARD_STATIC = {"style.css": "text/css", "chart.js": "text/javascript"}
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_GUARD = web.AppKey("guard", RequestGuard)


def _finite(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    return data


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(_finite(data), status=status, dumps=lambda d: json.dumps(d, allow_nan=False, default=str))


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


class FleetServer:
    """Serves the fleet page for a collector on ``address`` until stopped."""

    def __init__(self, collector: Collector, address: ListenAddress, token: str | None = None) -> None:
        self.collector = collector
        self.address = address
        self.token = token or new_token()
        self.guard = RequestGuard(self.token, address, printed_by="the collector")
        self.port = address.port
        self._runner: web.AppRunner | None = None
        self._static = {name: (resources.files(__package__) / "static" / name).read_bytes() for name in OWN_STATIC}
        dashboard = resources.files("chaosmagnet.dashboard") / "static"
        self._static.update({name: (dashboard / name).read_bytes() for name in DASHBOARD_STATIC})

    def __repr__(self) -> str:
        return f"<FleetServer {self.url}>"

    @property
    def url(self) -> str:
        """The base URL (with the port actually bound)."""
        return self.address.page_url(self.port)

    @property
    def control_url(self) -> str:
        """The URL that carries the control token (operator only)."""
        return f"{self.url}?token={self.token}"

    def make_app(self) -> web.Application:
        """The aiohttp application with every route."""
        app = web.Application(middlewares=[guard_middleware(_GUARD, _error)], client_max_size=4096)
        app[_GUARD] = self.guard
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static_file)
        app.router.add_get("/api/fleet", self._fleet)
        app.router.add_get("/api/hosts/{label}/history", self._history)
        app.router.add_post("/api/hosts/{label}/forget", self._forget)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        """Bind and serve; DashboardError when the address cannot be used."""
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address.host, self.address.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise DashboardError(
                f"cannot listen on {self.address.url_host()}:{self.address.port}: {exc.strerror or exc}"
            ) from None
        if self._runner.addresses:
            self.port = int(self._runner.addresses[0][1])
            self.guard.set_port(self.port)

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(body=self._static["fleet.html"], content_type="text/html", charset="utf-8")

    async def _static_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        types = {**OWN_STATIC, **DASHBOARD_STATIC}
        if name not in types or name == "fleet.html":
            return _json({"error": "not found"}, 404)
        return web.Response(body=self._static[name], content_type=types[name], charset="utf-8")

    async def _fleet(self, request: web.Request) -> web.Response:
        return _json(self.collector.fleet())

    async def _history(self, request: web.Request) -> web.Response:
        label = request.match_info["label"]
        if not valid_name(label):
            return _json({"error": "not a host label"}, 404)
        try:
            seconds = float(request.query.get("seconds", "600"))
        except ValueError:
            return _json({"error": "seconds must be a number"}, 400)
        if not 0 < seconds <= 366 * 86400:
            return _json({"error": "seconds out of range"}, 400)
        now = time.time()
        return _json(self.collector.store.history(label, now - seconds))

    async def _forget(self, request: web.Request) -> web.Response:
        label = request.match_info["label"]
        if not valid_name(label):
            return _json({"error": "not a host label"}, 404)
        if not self.collector.forget(label):
            return _json({"error": "no such host"}, 404)
        return _json({"forgotten": label})

    async def _metrics(self, request: web.Request) -> web.Response:
        text = render_fleet_metrics(self.collector.fleet())
        return web.Response(body=text.encode("utf-8"), headers={"Content-Type": METRICS_CONTENT_TYPE})


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: Any) -> str:
    if value is None or isinstance(value, str):
        return "NaN"
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


class _Families:
    def __init__(self) -> None:
        self.families: dict[str, tuple[str, str, list[str]]] = {}

    def add(self, name: str, kind: str, help_text: str, value: Any, **labels: str) -> None:
        sample = "chaosmagnet_fleet_" + name + ("_total" if kind == "counter" else "")
        entry = self.families.setdefault(sample, (kind, help_text, []))
        label_text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
        entry[2].append(f"{sample}{{{label_text}}} {_number(value)}" if labels else f"{sample} {_number(value)}")

    def text(self) -> str:
        lines: list[str] = []
        for sample, (kind, help_text, samples) in self.families.items():
            lines += [f"# HELP {sample} {help_text}", f"# TYPE {sample} {kind}", *samples]
        return "\n".join(lines) + "\n"


def render_fleet_metrics(fleet: dict[str, Any]) -> str:
    """/metrics for the whole fleet: per host, per source, and the collector's own counters."""
    out = _Families()
    out.add("hosts", "gauge", "Hosts the collector knows.", len(fleet["hosts"]))
    for host in fleet["hosts"]:
        h = host["label"]
        out.add(
            "host_up",
            "gauge",
            "1 when the host's last status says online and is recent.",
            1 if host["shown_state"] == "online" else 0,
            host=h,
        )
        out.add(
            "host_healthy",
            "gauge",
            "1 when every source of the host is healthy.",
            1 if host["health"] == "ok" else 0,
            host=h,
        )
        out.add(
            "host_last_seen_seconds", "gauge", "Seconds since the host's last verified message.", host["age"], host=h
        )
        pool = host.get("pool") or {}
        out.add(
            "host_pool_fill_ratio",
            "gauge",
            "The host's pool fill (credited bits / capacity).",
            pool.get("fill"),
            host=h,
        )
        out.add(
            "host_pool_credited_bits", "gauge", "Credited bits in the host's pool.", pool.get("credited_bits"), host=h
        )
        mesh = host.get("mesh") or {}
        out.add("host_peer_seeds_sent", "counter", "Peer seeds the host sent.", mesh.get("seeds_sent"), host=h)
        out.add(
            "host_peer_seeds_received",
            "counter",
            "Peer seeds the host absorbed (credit 0).",
            mesh.get("seeds_received"),
            host=h,
        )
        for source in host.get("sources") or []:
            if not isinstance(source, dict):
                continue
            s = str(source.get("name"))
            out.add(
                "source_state",
                "gauge",
                "1 for the source's current state (label state).",
                1,
                host=h,
                source=s,
                state=str(source.get("state")),
            )
            out.add(
                "source_credited_bits",
                "counter",
                "Bits credited from the source on its host.",
                source.get("credited_bits"),
                host=h,
                source=s,
            )
            out.add(
                "source_min_entropy_bits_per_sample",
                "gauge",
                "Online MCV min-entropy per sample.",
                source.get("h_min"),
                host=h,
                source=s,
            )
            for test in ("rct", "apt"):
                out.add(
                    "source_health_failures",
                    "counter",
                    "Health-test failures by test.",
                    source.get(f"{test}_failures"),
                    host=h,
                    source=s,
                    test=test,
                )
    figures = fleet["collector"]
    for channel, count in sorted(figures["accepted"].items()):
        out.add("messages_accepted", "counter", "Verified messages, by channel.", count, channel=channel)
    for reason, count in sorted(figures["dropped"].items()):
        out.add("messages_dropped", "counter", "Dropped messages, by reason.", count, reason=reason)
    out.add("status_rows", "counter", "Status rows stored since the collector started.", figures["status_rows"])
    out.add("alerts", "gauge", "Alerts in the database (within the retention).", len(fleet["alerts"]))
    return out.text()
