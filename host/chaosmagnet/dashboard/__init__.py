"""The live dashboard: a web page, a JSON API, a push stream and /metrics, served by `run`.

``serve_dashboard`` starts it beside a running Engine in the same event loop;
``live`` builds what is shown, ``metrics`` the Prometheus text, ``minting``
the Mint button, ``security`` who may do what, ``server`` the HTTP routes,
``static/`` the page (our own canvas charts, no third-party code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaosmagnet.dashboard.server import DashboardServer
from chaosmagnet.minting.sealing import DEFAULT_SCRYPT, ScryptParams
from chaosmagnet.websecurity import (
    DEFAULT_LISTEN,
    TOKEN_HEADER,
    ListenAddress,
    new_token,
    parse_listen,
)

__all__ = [
    "DEFAULT_LISTEN",
    "TOKEN_HEADER",
    "DashboardServer",
    "ListenAddress",
    "parse_listen",
    "serve_dashboard",
]


async def serve_dashboard(
    engine: Any,
    address: ListenAddress,
    *,
    keys_dir: Path | None = None,
    audit_path: Path | None = None,
    token: str | None = None,
    scrypt: ScryptParams = DEFAULT_SCRYPT,
    mint_timeout: float = 300.0,
) -> DashboardServer:
    """Start the dashboard for ``engine`` (keys and audit trail default to $CHAOS_HOME's)."""
    from chaosmagnet.audit import default_log_path
    from chaosmagnet.audit import keys_dir as default_keys_dir
    from chaosmagnet.dashboard.minting import MintService

    audit = audit_path or default_log_path()
    minting = MintService(
        engine, keys_dir or default_keys_dir(), audit, scrypt=scrypt, timeout=mint_timeout
    )
    server = DashboardServer(
        engine, address, token or new_token(), minting=minting, audit_path=audit
    )
    await server.start()
    return server
