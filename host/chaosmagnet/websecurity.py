"""Who may talk to our web pages (the dashboard, the fleet page): listen address, control token, Host and Origin checks.

Sans-IO: these functions look at a method, a path and a header mapping and
say whether a request is refused and why; `guard_middleware` is the one aiohttp
middleware (the dashboard's and the fleet page's) that applies them.

* Listening is on loopback unless ``--allow-remote`` is given.
* Reads need no token (nothing secret is ever served); every state-changing
  request (switching a source, minting) carries the token that `run` prints,
  in the ``X-Chaos-Token`` header, as JSON (which browsers cannot send
  cross-origin without a CORS preflight, and we answer none).
* The Host header must name this server (stops DNS-rebinding pages from
  reading the API), and API requests that a browser marks as coming from
  another origin (``Origin``, ``Sec-Fetch-Site``) are refused.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chaosmagnet.errors import UsageError

TOKEN_HEADER = "X-Chaos-Token"
DEFAULT_LISTEN = "127.0.0.1:8765"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_SAFE_FETCH_SITES = ("same-origin", "none")


def new_token() -> str:
    """A fresh control token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """True for the all-interfaces addresses 0.0.0.0 and ::."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


@dataclass(frozen=True)
class ListenAddress:
    """Where a page (dashboard, fleet page) listens: a host (name or address) and a port (0: any free one)."""

    host: str
    port: int

    @property
    def loopback(self) -> bool:
        """Whether only this machine can connect."""
        return is_loopback(self.host)

    def url_host(self) -> str:
        """The host as it appears in a URL (IPv6 in brackets)."""
        return f"[{self.host}]" if ":" in self.host else self.host

    def page_url(self, bound_port: int) -> str:
        """The page's base URL once listening on ``bound_port`` (a wildcard host shown as 127.0.0.1)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.url_host()
        return f"http://{host}:{bound_port}/"


def parse_listen(text: str) -> ListenAddress:
    """Parse ``HOST:PORT`` (``[::1]:8765`` for IPv6); UsageError with one clear line otherwise."""
    value = text.strip()
    if value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
    else:
        host, sep, port_text = value.rpartition(":")
    if not sep or not host or ":" in port_text:
        raise UsageError(
            f"--listen must be HOST:PORT (e.g. {DEFAULT_LISTEN} or [::1]:8765), not {text!r}"
        )
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"--listen port must be a number, not {port_text!r}") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"--listen port must be 0..65535, not {port}")
    if ":" in host and not value.startswith("["):
        raise UsageError(
            f"--listen: put an IPv6 address in brackets, e.g. [::1]:8765, not {text!r}"
        )
    if any(c.isspace() or c in "/?#@[]" for c in host):
        raise UsageError(f"--listen host {host!r} is not a host name or address")
    return ListenAddress(host, port)


def check_listen(address: ListenAddress, allow_remote: bool) -> str | None:
    """None for loopback; for a remote address a warning with allow_remote, else UsageError."""
    if address.loopback:
        return None
    if not allow_remote:
        raise UsageError(
            f"--listen {address.url_host()}:{address.port} is reachable from other machines: "
            "add --allow-remote if that is what you want"
        )
    return (
        f"warning: the dashboard listens on {address.url_host()}:{address.port}, reachable from "
        "other machines over plain HTTP; anyone who sees the link can switch sources and mint"
    )


def may_send_passphrase(peer: str | None) -> bool:
    """Whether a passphrase typed by this peer may be used: only over loopback, where it
    never crossed a network in clear (remote pages use the server's $CHAOS_PASSPHRASE)."""
    return peer is not None and is_loopback(peer)


class RequestGuard:
    """Decides, per request, whether it is refused (see the module docstring)."""

    def __init__(self, token: str, address: ListenAddress, printed_by: str = "chaos-host run") -> None:
        if len(token) < 16:
            raise UsageError("the control token is too short")
        self._token = token.encode()
        self.address = address
        self.port = address.port
        self.printed_by = printed_by  # who printed the link with the token (for the refusal)

    def set_port(self, port: int) -> None:
        """Record the port actually bound (when 0 was asked for)."""
        self.port = port

    def allowed_hosts(self) -> set[str] | None:
        """Host header values accepted, or None when any is (listening on all interfaces)."""
        if is_wildcard(self.address.host):
            return None
        names = set(_LOOPBACK_NAMES) if self.address.loopback else set()
        names.add(self.address.url_host())
        return {f"{name}:{self.port}".lower() for name in names}

    def host_refusal(self, headers: Mapping[str, str]) -> str | None:
        """Why the Host header is refused, or None."""
        host = headers.get("Host", "").lower()
        allowed = self.allowed_hosts()
        if not host:
            return "missing Host header"
        if allowed is not None and host not in allowed:
            return "unexpected Host header"
        return None

    def origin_refusal(self, headers: Mapping[str, str]) -> str | None:
        """Why a request from another origin is refused; None for same origin or no browser."""
        site = headers.get("Sec-Fetch-Site")
        if site is not None and site.lower() not in _SAFE_FETCH_SITES:
            return "cross-origin request"
        origin = headers.get("Origin")
        if origin is not None:
            expected = f"http://{headers.get('Host', '')}".lower()
            if origin.lower() != expected:
                return "cross-origin request"
        return None

    def token_valid(self, headers: Mapping[str, str]) -> bool:
        """Whether the request carries the control token (constant-time comparison)."""
        given = headers.get(TOKEN_HEADER, "")
        return hmac.compare_digest(given.encode(), self._token)

    def refusal(
        self, method: str, path: str, headers: Mapping[str, str], content_type: str
    ) -> tuple[int, str] | None:
        """(HTTP status, reason) when a request is refused before its handler; None to serve it."""
        refused = self.host_refusal(headers)
        if refused is not None:
            return 403, refused
        if method not in ("GET", "HEAD", "POST"):
            return 405, "method not allowed"
        if path.startswith("/api/") or path == "/metrics":
            refused = self.origin_refusal(headers)
            if refused is not None:
                return 403, refused
        if method == "POST":
            if not self.token_valid(headers):
                return 403, f"missing or wrong control token (open the link that {self.printed_by} printed)"
            if content_type != "application/json":
                return 415, "send JSON (Content-Type: application/json)"
        return None


SECURITY_HEADERS = {
    # everything from this server only; no inline script or style
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the page URL may hold the token
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def guard_middleware(guard_key: Any, error: Callable[[int, str], Any]) -> Any:
    """The aiohttp middleware that applies ``app[guard_key]`` (a RequestGuard) to every request.

    Refusals and handlers' HTTP exceptions become ``error(status, reason)``
    (the server's JSON error); every response gets the security headers.
    """
    from aiohttp import web  # only the servers need aiohttp

    @web.middleware
    async def guarded(request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        refused = request.app[guard_key].refusal(
            request.method, request.path, request.headers, request.content_type
        )
        if refused is not None:
            response = error(*refused)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = error(exc.status, exc.reason)
        if not response.prepared:
            for key, value in SECURITY_HEADERS.items():
                response.headers.setdefault(key, value)
        return response

    return guarded
