"""The dashboard's HTTP server (aiohttp), in the engine's own event loop.

Routes::

    GET  /                          the page (static/index.html)
    GET  /static/{file}             app.js, chart.js, style.css
    GET  /api/status                everything the page shows (pool, sources, nodes, mint)
    GET  /api/sources               per-source rows
    GET  /api/sources/{name}        one source
    POST /api/sources/{name}        {"enabled": true|false}: start or stop it      (token)
    POST /api/sources/{name}/clear  clear a failed or quarantined source            (token)
    GET  /api/history               chart history (per source and the pool)
    GET  /api/dependence            dependent source groups, why (MI, p, lag), each pair's last test
    GET  /api/log, /api/audit       recent health events, audit-trail entries
    GET  /api/mint                  whether minting works and what it is doing
    POST /api/mint                  {"kem", "sign_keypair", "passphrase"...}: mint  (token)
    GET  /api/bundles               bundles in the keys folder
    GET  /api/bundles/{id}/public   a bundle without its secret keys
    GET  /api/events                Server-Sent Events: one "update" per second
    GET  /metrics                   Prometheus text format

Security rules are in chaosmagnet.websecurity; nothing served is secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from chaosmagnet.dashboard.live import LiveState
from chaosmagnet.dashboard.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from chaosmagnet.dashboard.metrics import render_metrics
from chaosmagnet.dashboard.minting import MintService
from chaosmagnet.errors import BundleError, ChaosError, DashboardError, PoolError
from chaosmagnet.websecurity import (
    SECURITY_HEADERS,
    ListenAddress,
    RequestGuard,
    guard_middleware,
    may_send_passphrase,
)

STATIC_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "chart.js": "text/javascript",
    "style.css": "text/css",
}
MAX_BODY = 16 * 1024
_GUARD = web.AppKey("guard", RequestGuard)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda d: json.dumps(d, allow_nan=False, default=_clean)
    )


def _clean(value: Any) -> Any:
    return str(value)


def _finite(data: Any) -> Any:
    """JSON has no NaN/Infinity: map them to null."""
    if isinstance(data, float):
        return data if data == data and abs(data) != float("inf") else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    return data


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status=status)


class DashboardServer:
    """Serves the dashboard for ``engine`` on ``address`` until stopped."""

    def __init__(
        self,
        engine: Any,
        address: ListenAddress,
        token: str,
        *,
        live: LiveState | None = None,
        minting: MintService | None = None,
        audit_path: Path | None = None,
    ) -> None:
        self.engine = engine
        self.address = address
        self.token = token
        self.guard = RequestGuard(token, address)
        self.minting = minting
        self.live = live or LiveState(
            engine,
            audit_path=audit_path,
            mint_status=minting.status if minting is not None else None,
        )
        self.port = address.port
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._static = {name: self._load_static(name) for name in STATIC_FILES}

    def __repr__(self) -> str:
        return f"<DashboardServer {self.url}>"

    @staticmethod
    def _load_static(name: str) -> bytes:
        return resources.files("chaosmagnet.dashboard").joinpath("static", name).read_bytes()

    @property
    def url(self) -> str:
        """The base URL (with the port actually bound)."""
        return self.address.page_url(self.port)

    @property
    def control_url(self) -> str:
        """The URL that opens the page with control enabled (holds the token: operator only)."""
        return f"{self.url}?token={self.token}"

    # -- life cycle ---------------------------------------------------------
    def make_app(self) -> web.Application:
        """The aiohttp application with every route."""
        app = web.Application(middlewares=[guard_middleware(_GUARD, _error)], client_max_size=MAX_BODY)
        app[_GUARD] = self.guard
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static_file)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/sources", self._sources)
        app.router.add_get("/api/sources/{name}", self._source)
        app.router.add_post("/api/sources/{name}", self._toggle)
        app.router.add_post("/api/sources/{name}/clear", self._clear)
        app.router.add_get("/api/history", self._history)
        app.router.add_get("/api/dependence", self._dependence)
        app.router.add_get("/api/log", self._log)
        app.router.add_get("/api/audit", self._audit)
        app.router.add_get("/api/mint", self._mint_status)
        app.router.add_post("/api/mint", self._mint)
        app.router.add_get("/api/bundles", self._bundles)
        app.router.add_get("/api/bundles/{bundle_id}/public", self._bundle_public)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        """Bind and serve; DashboardError when the address cannot be used."""
        self.live.tick()
        self._runner = web.AppRunner(
            self.make_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address.host, self.address.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            where = f"{self.address.url_host()}:{self.address.port}"
            raise DashboardError(f"cannot listen on {where}: {exc.strerror or exc}") from None
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])
            self.guard.set_port(self.port)
        self._ticker = asyncio.create_task(self._tick_loop(), name="dashboard-ticker")

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.live.tick()

    async def stop(self) -> None:
        """Close the push streams and stop serving."""
        self.live.close()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- page ---------------------------------------------------------------
    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._static["index.html"], content_type="text/html", charset="utf-8"
        )

    async def _static_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES or name == "index.html":
            return _error(404, "not found")
        return web.Response(
            body=self._static[name], content_type=STATIC_FILES[name], charset="utf-8"
        )

    # -- reads --------------------------------------------------------------
    async def _status(self, request: web.Request) -> web.Response:
        return _json(_finite(self.live.status()))

    async def _sources(self, request: web.Request) -> web.Response:
        return _json(_finite({"sources": self.live.sources()}))

    def _source_row(self, name: str) -> dict[str, Any] | None:
        return next((row for row in self.live.sources() if row["name"] == name), None)

    async def _source(self, request: web.Request) -> web.Response:
        row = self._source_row(request.match_info["name"])
        return _error(404, "unknown source") if row is None else _json(_finite(row))

    async def _history(self, request: web.Request) -> web.Response:
        return _json(_finite(self.live.history()))

    async def _dependence(self, request: web.Request) -> web.Response:
        return _json(_finite(self.live.dependence()))

    async def _log(self, request: web.Request) -> web.Response:
        return _json(_finite({"events": self.live.log_after(0)}))

    async def _audit(self, request: web.Request) -> web.Response:
        present = self.live.audit is not None and self.live.audit.path.exists()
        return _json(_finite({"present": present, "entries": self.live.audit_after(0)}))

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            text=render_metrics(self.live.status()), headers={"Content-Type": METRICS_CONTENT_TYPE}
        )

    # -- state changes (the middleware has checked the token and origin) ----
    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            raise web.HTTPBadRequest(reason="the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(reason="the body must be a JSON object")
        return body

    async def _toggle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await self._body(request)
        enabled = body.get("enabled")
        if not isinstance(enabled, bool):
            return _error(400, 'send {"enabled": true} or {"enabled": false}')
        if self._source_row(name) is None:
            return _error(404, "unknown source")
        await self.engine.set_enabled(name, enabled)
        return _json(_finite(self._source_row(name)))

    async def _clear(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        await self._body(request)
        if self._source_row(name) is None:
            return _error(404, "unknown source")
        await self.engine.clear(name)
        return _json(_finite(self._source_row(name)))

    async def _mint_status(self, request: web.Request) -> web.Response:
        if self.minting is None:
            return _json({"available": False, "reason": "minting is not set up in this process"})
        return _json(_finite(self.minting.status()))

    async def _mint(self, request: web.Request) -> web.Response:
        if self.minting is None:
            return _error(503, "minting is not set up in this process")
        body = await self._body(request)
        kem = body.get("kem") or self.minting.status()["default_kem"]
        sign = body.get("sign_keypair") or None
        passphrase = body.get("passphrase") or ""
        confirm = body.get("passphrase_confirm")
        if (
            not all(isinstance(v, str) for v in (kem, passphrase))
            or not isinstance(sign, (str, type(None)))
            or not isinstance(confirm, (str, type(None)))
        ):
            return _error(
                400, "kem, sign_keypair, passphrase and passphrase_confirm must be strings"
            )
        if passphrase and not may_send_passphrase(request.remote):
            return _error(
                400,
                "a passphrase typed on another machine crossed the network in clear: not used; "
                "start chaos-host run with $CHAOS_PASSPHRASE set, or use an SSH tunnel",
            )
        try:
            bundle = await self.minting.mint(kem, sign, passphrase, confirm)
        except PoolError as exc:
            return _error(503, str(exc))
        except ChaosError as exc:
            # usage, sealing (wrong passphrase), identity, PQC, audit: one line, no secret in it
            return _error(400, str(exc))
        return _json(_finite(bundle), status=201)

    async def _bundles(self, request: web.Request) -> web.Response:
        if self.minting is None:
            return _json({"bundles": []})
        return _json(_finite({"bundles": self.minting.bundles()}))

    async def _bundle_public(self, request: web.Request) -> web.Response:
        if self.minting is None:
            return _error(404, "no such bundle")
        try:
            return _json(_finite(self.minting.public_part(request.match_info["bundle_id"])))
        except BundleError:
            return _error(404, "no such bundle")

    # -- push stream --------------------------------------------------------
    async def _events(self, request: web.Request) -> web.StreamResponse:
        try:
            log_id = int(request.query.get("log_after", "0"))
            audit_seq = int(request.query.get("audit_after", "0"))
        except ValueError:
            return _error(400, "log_after and audit_after must be integers")
        response = web.StreamResponse(
            headers={
                **SECURITY_HEADERS,
                "Content-Type": "text/event-stream",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        sent = 0
        try:
            while not self.live.closing:
                log = self.live.log_after(log_id)
                audit = self.live.audit_after(audit_seq)
                if log:
                    log_id = log[-1]["id"]
                if audit:
                    audit_seq = audit[-1]["seq"]
                payload = {"status": self.live.status(), "log": log, "audit": audit}
                data = json.dumps(_finite(payload), allow_nan=False, default=_clean)
                sent += 1
                await response.write(f"id: {sent}\nevent: update\ndata: {data}\n\n".encode())
                await self.live.next_tick()
        except (ConnectionResetError, ConnectionError):
            pass  # the page went away
        return response
