"""Plugs the dashboard into `chaos-host run --dashboard [--listen HOST:PORT] [--allow-remote]`.

The hook runs inside run's event loop after the engine has started, serves
the page beside it, and prints the link that carries the control token (on
stderr, never into logs/).
"""

from __future__ import annotations

import sys
from typing import Any

from chaosmagnet.errors import UsageError


async def dashboard_run_hook(engine: Any, options: dict[str, Any]) -> Any:
    """Start the dashboard when `run` was given --dashboard; returns its stop coroutine."""
    from chaosmagnet.dashboard import DEFAULT_LISTEN, parse_listen, serve_dashboard
    from chaosmagnet.websecurity import check_listen

    if not options.get("dashboard"):
        if options.get("listen") or options.get("allow_remote"):
            raise UsageError("--listen and --allow-remote need --dashboard")
        return None
    address = parse_listen(options.get("listen") or DEFAULT_LISTEN)
    warning = check_listen(address, bool(options.get("allow_remote")))
    server = await serve_dashboard(engine, address)
    if warning:
        print(warning, file=sys.stderr)
    print(f"dashboard: {server.control_url}", file=sys.stderr, flush=True)
    print(
        "  (the link holds the control token: switching sources and minting need it)",
        file=sys.stderr,
        flush=True,
    )
    return server.stop


def _register() -> None:
    from chaosmagnet.cli.core_commands import RUN_HOOKS

    if dashboard_run_hook not in RUN_HOOKS:
        RUN_HOOKS.append(dashboard_run_hook)


_register()
