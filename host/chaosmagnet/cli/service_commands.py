"""`chaos-host service install|status|uninstall` and `run --feed-kernel` (docs/kernel-feed.md)."""

from __future__ import annotations

import os
from typing import Any, Optional

import typer

from chaosmagnet.cli.app import app
from chaosmagnet.errors import UsageError

service_app = typer.Typer(
    help="Run chaos-host as a systemd service (Type=notify, watchdog, kernel feed).",
    no_args_is_help=True,
)
app.add_typer(service_app, name="service")

ScopeSystem = typer.Option(False, "--system", help="A system unit in /etc/systemd/system (the default as root).")
ScopeUser = typer.Option(False, "--user", help="A user unit in ~/.config/systemd/user (the default otherwise).")


def _scope(system: bool, user: bool) -> str:
    if system and user:
        raise UsageError("choose one of --system and --user")
    if system:
        return "system"
    if user:
        return "user"
    return "system" if os.geteuid() == 0 else "user"


@service_app.command("install")
def install(
    system: bool = ScopeSystem,
    user: bool = ScopeUser,
    feed_kernel: Optional[bool] = typer.Option(
        None,
        "--feed-kernel/--no-feed-kernel",
        help="Feed the kernel's pool (default: on for a system unit, off for a user unit).",
    ),
    node: Optional[list[str]] = typer.Option(None, "--node", help="Read this registered node (repeatable)."),
    source: Optional[list[str]] = typer.Option(None, "--source", "-s", help="Run only this source (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the unit and where it would go; change nothing."),
) -> None:
    """Write the systemd unit, reload systemd and start the service."""
    from chaosmagnet.securefile import atomic_file
    from chaosmagnet.service import plan_unit, systemctl

    scope = _scope(system, user)
    feed = (scope == "system") if feed_kernel is None else feed_kernel
    extra: list[str] = []
    for name in source or []:
        extra += ["--source", name]
    for label in node or []:
        extra += ["--node", label]
    plan = plan_unit(scope, feed_kernel=feed, extra_args=extra)
    if dry_run:
        print(f"# {plan.path}")
        print(plan.text, end="")
        return
    try:
        plan.path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {plan.path.parent}: {exc.strerror or exc}") from None
    with atomic_file(plan.path, mode=0o644) as handle:
        handle.write(plan.text.encode())
    print(f"wrote {plan.path}")
    flag = "--user " if scope == "user" else ""
    reloaded = systemctl(scope, "daemon-reload")
    if reloaded is None:
        print(f"systemd is not running here: start it later with `systemctl {flag}enable --now chaos-host`")
        return
    started = systemctl(scope, "enable", "--now", "chaos-host")
    if started is None or started.returncode != 0:
        detail = (started.stderr.strip().splitlines() or [""])[-1] if started is not None else ""
        raise UsageError(f"systemctl {flag}enable --now chaos-host failed: {detail}")
    print(f"enabled and started; `chaos-host service status{' --user' if scope == 'user' else ''}` shows it")


@service_app.command("status")
def status(system: bool = ScopeSystem, user: bool = ScopeUser) -> None:
    """Where the unit is and what systemd says of it."""
    from chaosmagnet.service import plan_unit, systemctl

    scope = _scope(system, user)
    path = plan_unit(scope, feed_kernel=False).path
    print(f"unit: {path} ({'installed' if path.is_file() else 'not installed'})")
    shown = systemctl(scope, "show", "chaos-host", "-p", "ActiveState,SubState,StatusText,ExecMainPID")
    if shown is None:
        print("systemd is not running here")
        return
    for line in shown.stdout.strip().splitlines():
        key, _, value = line.partition("=")
        if value:
            print(f"{key}: {value}")


@service_app.command("uninstall")
def uninstall(system: bool = ScopeSystem, user: bool = ScopeUser) -> None:
    """Stop and disable the service and remove its unit (the state folder is kept)."""
    from chaosmagnet.service import plan_unit, systemctl

    scope = _scope(system, user)
    path = plan_unit(scope, feed_kernel=False).path
    if not path.is_file():
        raise UsageError(f"no unit at {path}")
    systemctl(scope, "disable", "--now", "chaos-host")
    try:
        path.unlink()
    except OSError as exc:
        raise UsageError(f"cannot remove {path}: {exc.strerror or exc}") from None
    systemctl(scope, "daemon-reload")
    print(f"removed {path}")


async def kernel_feed_run_hook(engine: Any, options: dict[str, Any]) -> Any:
    """Start feeding the kernel when `run` was given --feed-kernel; returns its stop coroutine."""
    if not options.get("feed_kernel"):
        return None
    from chaosmagnet.kernelfeed import FeedSettings, KernelFeeder

    settings = FeedSettings.from_table(engine.config.extra.get("kernel_feed"))
    feeder = KernelFeeder(engine, settings)
    try:
        await feeder.start()
    except OSError as exc:
        raise UsageError(f"--feed-kernel: {exc.strerror or exc}") from None
    engine.add_output_status("kernel_feed", feeder.status)
    return feeder.stop


def _register() -> None:
    from chaosmagnet.cli.core_commands import RUN_HOOKS

    if kernel_feed_run_hook not in RUN_HOOKS:
        RUN_HOOKS.append(kernel_feed_run_hook)


_register()


__all__ = ["service_app"]
