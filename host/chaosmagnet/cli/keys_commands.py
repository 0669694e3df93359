"""Key commands: backends, mint, verify, export, identity init|show, audit verify|repair|sign.

Also plugs minting into `run` (the control socket that lets `mint` draw from
the running pool, and audit records of quarantine/failure events) and into
`bench` (the one-bundle mint time).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from chaosmagnet.audit import (
    AuditLog,
    attach_to_engine,
    default_log_path,
    keys_dir,
    record_identity_created,
    verify_audit_log,
)
from chaosmagnet.cli.app import app
from chaosmagnet.errors import AuditError, BundleError, IdentityError, UsageError
from chaosmagnet.minting.identity import (
    HostIdentity,
    IdentityPublic,
    create_identity,
    identity_dir,
    identity_exists,
    load_identity,
    load_identity_public,
)
from chaosmagnet.minting.mint import (
    DEFAULT_CREDIT_FACTOR,
    DEFAULT_KEM,
    MintedBundle,
    MintOptions,
    mint_bundles,
)
from chaosmagnet.minting.sealing import Sealer, Unsealer, check_sealing_passphrase, read_passphrase
from chaosmagnet.minting.seeds import SeedSource

if TYPE_CHECKING:  # rich loads when a command prints
    from rich.console import Console

identity_app = typer.Typer(
    help="The host identity that signs bundles and the audit trail.", no_args_is_help=True
)
audit_app = typer.Typer(help="The signed audit trail (logs/audit.jsonl).", no_args_is_help=True)
app.add_typer(identity_app, name="identity")
app.add_typer(audit_app, name="audit")

KeysOpt = typer.Option(
    None, "--keys", help="Keys folder holding identity/ (default: $CHAOS_HOME/keys or ./keys)."
)
ConfigOpt = typer.Option(
    None, "--config", help="Configuration file for the local sources (default: ./chaos.toml if present)."
)
TimeoutOpt = typer.Option(
    300.0, "--timeout", min=0.001, help="Seconds to wait for credited entropy before giving up."
)
CreditOpt = typer.Option(
    DEFAULT_CREDIT_FACTOR,
    "--credit-factor",
    min=1.0,
    help="Credited bits required per bit of key strength before a seed is drawn "
    "(e.g. ML-KEM-768: 2 x 192 = 384).",
)


def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True)


class _CreditBar:
    """A progress bar per key being waited for (on stderr; disappears when done)."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        from chaosmagnet.cli.common import credit_rate_column

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} credited bits"),
            credit_rate_column(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _CreditBar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def update(self, what: str, have: float, need: float) -> None:
        """Show ``have`` of ``need`` credited bits for ``what``."""
        task = self._tasks.get(what)
        if task is None:
            task = self._tasks[what] = self.progress.add_task(
                f"waiting for entropy: {what}", total=need
            )
        self.progress.update(task, completed=have, total=need)


async def _ensure_identity(
    folder: Path,
    source: SeedSource,
    passphrase: str,
    timeout: float,
    credit_factor: float,
    bar: _CreditBar,
    console: Console,
    sealer: Sealer | None = None,
) -> HostIdentity:
    """Load the identity, or create it (first use), recording that in the audit trail.

    ``sealer`` (already stretched for this passphrase) is reused to seal a new identity.
    """
    if identity_exists(folder):
        return load_identity(folder, Unsealer(passphrase))
    console.print(f"creating the host identity in {identity_dir(folder)} (first use)")
    identity = await create_identity(
        folder,
        source,
        sealer or Sealer(passphrase),
        credit_factor=credit_factor,
        timeout=timeout,
        on_progress=bar.update,
    )
    record_identity_created(identity, keys=folder)
    return identity


def _prepare_writes(folder: Path, out_dir: Path | None, console: Console) -> None:
    """Before any entropy is drawn: keys/ and logs/ take files, the log can be appended to;
    temporary files left by earlier kills are removed (and said so)."""
    from chaosmagnet.securefile import check_writable_dir, remove_stale_temporaries

    AuditLog(default_log_path()).check_writable()
    folders = [folder, identity_dir(folder), default_log_path().parent]
    check_writable_dir(folder)
    if not identity_exists(folder):
        check_writable_dir(identity_dir(folder))
    if out_dir is not None:
        check_writable_dir(out_dir)
        folders.append(out_dir)
    removed = remove_stale_temporaries(folders)
    if removed:
        console.print(
            f"removed {len(removed)} temporary file(s) left by an interrupted write: "
            + ", ".join(str(p) for p in removed)
        )


# -- backends ------------------------------------------------------------------
@app.command()
def backends(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List PQC algorithms, the backend serving each, and whether keygen is seeded from the pool."""
    from rich.table import Table

    from chaosmagnet.cli.common import output_console
    from chaosmagnet.pqc.registry import backend_status, backend_table

    rows = backend_table()
    status = backend_status()
    if as_json:
        print(
            json.dumps(
                {
                    "backends": [
                        {"name": n, "available": ok, "reason": why} for n, ok, why in status
                    ],
                    "algorithms": [r.__dict__ for r in rows],
                },
                indent=2,
            )
        )
        return
    console = output_console()
    for name, ok, why in status:
        console.print(
            f"backend {name}: "
            + ("[green]available[/]" if ok else f"[yellow]not available[/] ({why})")
        )
    table = Table()
    for column in (
        "algorithm",
        "kind",
        "strength",
        "backend",
        "seeded from pool",
        "also served by",
    ):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.algorithm,
            r.kind,
            f"{r.strength_bits}",
            r.backend or "[red]none[/]",
            "[green]yes[/]" if r.seeded else "no",
            ", ".join(r.also) or "-",
        )
    console.print(table)


# -- mint ----------------------------------------------------------------------
@app.command()
def mint(
    kem: str = typer.Option(
        DEFAULT_KEM, "--kem", help="KEM algorithm (ML-KEM-512 is the original Kyber512 choice)."
    ),
    sign_keypair: Optional[str] = typer.Option(
        None, "--sign-keypair", help="Also mint a signing key pair (e.g. ML-DSA-65)."
    ),
    count: int = typer.Option(1, "--count", "-n", min=1, max=10_000, help="Number of bundles."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Output folder (default: the keys folder)."
    ),
    timeout: float = TimeoutOpt,
    no_seal: bool = typer.Option(
        False, "--no-seal", help="Write secret keys UNSEALED (in the clear)."
    ),
    credit_factor: float = CreditOpt,
    keys: Optional[Path] = KeysOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Mint key bundles from credited pool entropy, signed by the host identity."""
    folder = keys or keys_dir()
    options = MintOptions(
        kem=kem,
        sign_keypair=sign_keypair,
        count=count,
        out_dir=out or folder,
        seal=not no_seal,
        credit_factor=credit_factor,
        timeout=timeout,
    )
    options.validate()
    console = _err()
    if no_seal:
        console.print("[yellow]warning: --no-seal: secret keys are written in the clear[/]")
    creating = not identity_exists(folder)
    passphrase = read_passphrase(
        confirm=creating,
        purpose=(
            "A new host identity will be created: choose a passphrase (at least 12 characters) that seals "
            "its secret keys and the bundles' secret keys."
            if creating
            else "The passphrase of this host's identity (it seals the new bundle's secret keys):"
        ),
    )
    if options.seal or creating:
        check_sealing_passphrase(passphrase)
    _prepare_writes(folder, options.out_dir, console)
    sealer = Sealer(passphrase) if options.seal else None
    import asyncio

    minted = asyncio.run(_mint(options, folder, passphrase, sealer, config, console))
    for bundle in minted:
        seeded = (
            "seeded from the pool"
            if bundle.seeded_from_pool
            else "NOT seeded from the pool (backend RNG)"
        )
        print(
            f"{bundle.path}  {bundle.kem}"
            f"{' + ' + bundle.signing_key if bundle.signing_key else ''}  {seeded}, "
            f"{bundle.credited_bits_drawn:g} credited bits, audit entry {bundle.audit_seq}"
        )


async def _mint(
    options: MintOptions,
    folder: Path,
    passphrase: str,
    sealer: Sealer | None,
    config: Path | None,
    console: Console,
) -> list[MintedBundle]:
    from chaosmagnet.cli.common import waiting_printer
    from chaosmagnet.minting.host import host_seed_source

    async with host_seed_source(config) as source:
        source.on_waiting = waiting_printer(console)
        if source.via == "control-socket":
            console.print("drawing from the running `chaos-host run` pool")
        with _CreditBar(console) as bar:
            identity = await _ensure_identity(
                folder,
                source,
                passphrase,
                options.timeout,
                options.credit_factor,
                bar,
                console,
                sealer,
            )
            audit = AuditLog(default_log_path(), identity.audit_signer)
            return await mint_bundles(
                options,
                seed_source=source,
                identity=identity,
                sealer=sealer,
                audit=audit,
                on_progress=bar.update,
            )


# -- verify --------------------------------------------------------------------
def _identity_for_verify(identity: Path | None, keys: Path | None) -> IdentityPublic:
    if identity is not None:
        return load_identity_public(identity)
    folder = identity_dir(keys or keys_dir())
    if (folder / "audit-key.json").exists() and not (folder / "identity.json").exists():
        raise IdentityError(
            f"no host identity in {folder}: an interrupted `identity init` left audit-key.json "
            "without identity.json; run `chaos-host identity init` again (it replaces it)"
        )
    if not (folder / "identity.pub.json").exists():
        raise IdentityError(
            f"no host identity in {folder}: create one with `chaos-host identity init` "
            "(or name another host's with --identity FILE)"
        )
    return load_identity_public(folder)


@app.command()
def verify(
    bundles: list[Path] = typer.Argument(
        ..., metavar="BUNDLE...", help="Bundle file(s) to verify."
    ),
    identity: Optional[Path] = typer.Option(
        None, "--identity", help="The signer's identity.pub.json (default: this host's)."
    ),
    audit_log: Optional[Path] = typer.Option(
        None, "--audit-log", help="Audit log holding the mint entry (default: logs/audit.jsonl)."
    ),
    skip_audit: bool = typer.Option(
        False, "--skip-audit", help="Check format and signatures only (no audit log at hand)."
    ),
    keys: Optional[Path] = KeysOpt,
) -> None:
    """Verify bundles: format, every signature, the audit-chain entry.  Exit 0 only if all hold."""
    public = _identity_for_verify(identity, keys)
    log = None if skip_audit else (audit_log or default_log_path())
    failed = 0
    from chaosmagnet.minting.bundle import verify_bundle

    for path in bundles:
        report = verify_bundle(path, public, audit_log=log)
        if report.ok:
            print(f"{path}: OK ({'; '.join(report.checked)})")
        else:
            failed += 1
            for problem in report.problems:
                print(f"{path}: FAILED: {problem}", file=sys.stderr)
    if failed:
        raise BundleError(f"{failed} of {len(bundles)} bundle(s) failed verification")


# -- export --------------------------------------------------------------------
@app.command()
def export(
    bundle: Path = typer.Argument(..., metavar="BUNDLE", help="Bundle file."),
    secret: bool = typer.Option(
        False, "--secret", help="Export the secret key (asks for the passphrase if sealed)."
    ),
    fmt: str = typer.Option(
        "pem", "--format", help="pem (SPKI / PKCS#8 where standard) or raw bytes."
    ),
    key: str = typer.Option("kem", "--key", help="Which key pair: kem or signing."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Write to this file (secret keys: mode 0600)."
    ),
    identity: Optional[Path] = typer.Option(
        None,
        "--identity",
        help="With --secret: the signer's identity.pub.json the bundle must verify against "
        "(default: this host's).",
    ),
    keys: Optional[Path] = KeysOpt,
) -> None:
    """Export a bundle's public key, or with --secret its secret key (verified first), for other tools."""
    from chaosmagnet.minting.bundle import load_bundle
    from chaosmagnet.minting.export import (
        check_before_export,
        export_public_key,
        export_secret_key,
    )
    from chaosmagnet.securefile import write_private_file

    if fmt not in ("pem", "raw"):
        raise UsageError("--format must be pem or raw")
    if key not in ("kem", "signing"):
        raise UsageError("--key must be kem or signing")
    if secret:
        if out is None and sys.stdout.isatty():  # a secret key never appears on a screen
            raise UsageError(
                "refusing to show a secret key on a terminal: use --out FILE or a pipe"
            )
        _, doc = load_bundle(bundle)
        public = _identity_for_verify(identity, keys)
        check_before_export(bundle, public)  # signatures and identity, before any passphrase
        sealed = any(
            isinstance(section, dict)
            and isinstance(section.get("secret_key"), dict)
            and "sealed" in section["secret_key"]
            for section in (doc.get("kem"), doc.get("signing_key"))
        )
        unsealer = (
            Unsealer(read_passphrase(purpose="The passphrase that sealed this bundle's secret keys:"))
            if sealed
            else None
        )
        data, encoding = export_secret_key(
            bundle, unsealer, key, fmt, identity=public  # type: ignore[arg-type]
        )
        if out is not None:
            write_private_file(out, data)
            _err().print(f"wrote the {key} secret key ({encoding}) to {out} (mode 0600)")
            return
        if fmt == "raw":
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data.decode("ascii"))
        return
    data = export_public_key(bundle, key, fmt)  # type: ignore[arg-type]
    if out is not None:
        write_private_file(out, data)
        return
    if fmt == "raw":
        if sys.stdout.isatty():
            print(data.hex())
        else:
            sys.stdout.buffer.write(data)
    else:
        sys.stdout.write(data.decode("ascii"))


# -- identity ------------------------------------------------------------------
@identity_app.command("init")
def identity_init(
    keys: Optional[Path] = KeysOpt,
    timeout: float = TimeoutOpt,
    credit_factor: float = CreditOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Create the host identity (Falcon-512 + ML-DSA-65, sealed) and its audit key."""
    folder = keys or keys_dir()
    if identity_exists(folder):
        raise IdentityError(f"a host identity already exists in {identity_dir(folder)}")
    passphrase = read_passphrase(
        confirm=True,
        purpose="Choose a passphrase (at least 12 characters) that seals the host identity's secret keys; "
        "minting and exporting will ask for it.",
    )
    check_sealing_passphrase(passphrase)
    console = _err()
    _prepare_writes(folder, None, console)

    async def create() -> HostIdentity:
        from chaosmagnet.cli.common import waiting_printer
        from chaosmagnet.minting.host import host_seed_source

        async with host_seed_source(config) as source:
            source.on_waiting = waiting_printer(console)
            with _CreditBar(console) as bar:
                return await _ensure_identity(
                    folder, source, passphrase, timeout, credit_factor, bar, console
                )

    import asyncio

    identity = asyncio.run(create())
    print(f"host identity {identity.fingerprint}")
    print(f"public part: {identity_dir(folder) / 'identity.pub.json'}")


@identity_app.command("show")
def identity_show(
    keys: Optional[Path] = KeysOpt,
    identity: Optional[Path] = typer.Option(
        None, "--identity", metavar="FILE", help="An identity.pub.json to show instead."
    ),
    full: bool = typer.Option(False, "--full", help="Also print every public key in hex."),
    as_json: bool = typer.Option(False, "--json", help="Print the public identity document."),
) -> None:
    """Summarise the host identity: algorithms, fingerprints, creation, files (no passphrase needed)."""
    public = _identity_for_verify(identity, keys)
    if as_json:
        print(json.dumps(public.to_json(), indent=2, sort_keys=True))
        return
    from chaosmagnet.minting.canonical import digest_hex

    where = identity if identity is not None else identity_dir(keys or keys_dir())
    print(f"fingerprint  {public.fingerprint}")
    print(f"created      {public.created}")
    for algorithm, key in public.keys:
        print(f"{algorithm:12s} {len(key):,}-byte public key, SHA3-256 {digest_hex(key)[:16]}")
    if public.audit_key is not None:
        problems = public.audit_key_problems()
        print(
            f"audit key    {public.audit_key.algorithm} {public.audit_key.key_id} "
            f"({'certified' if not problems else 'CERTIFICATE INVALID'})"
        )
    if identity is None:
        print(f"folder       {where}")
        print("files        identity.pub.json (public), identity.json (sealed), audit-key.json (run's audit signer)")
    else:
        print(f"file         {where}")
    if full:
        for algorithm, key in public.keys:
            print(f"\n{algorithm} public key:\n{key.hex()}")
    else:
        print("(--full prints the public keys, --json the whole document)")


# -- audit ---------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify(
    log: Optional[Path] = typer.Option(
        None, "--log", help="Audit log (default: logs/audit.jsonl)."
    ),
    identity: Optional[Path] = typer.Option(
        None, "--identity", help="The host's identity.pub.json (default: this host's)."
    ),
    keys: Optional[Path] = KeysOpt,
) -> None:
    """Check every entry and the files they record: names what was changed, removed,
    reordered, inserted, torn, or is missing or unrecorded."""
    public = _identity_for_verify(identity, keys)
    path = log or default_log_path()
    # The files are checked against this host's keys folder (with --identity only when --keys says where).
    folder = keys if keys is not None else (keys_dir() if identity is None else None)
    report = verify_audit_log(path, public, keys_dir=folder)
    _print_audit_report(path, public, report, folder)


def _print_audit_report(
    path: Path, public: IdentityPublic, report: Any, folder: Path | None
) -> None:
    from chaosmagnet.securefile import stale_temporaries

    if folder is not None:
        leftovers = [
            p
            for f in (folder, identity_dir(folder), path.parent)
            for p in stale_temporaries(f)
        ]
        if leftovers:
            print(
                f"note: {len(leftovers)} temporary file(s) left by an interrupted write "
                "(removed by the next mint or `chaos-host audit repair`): "
                + ", ".join(str(p) for p in leftovers),
                file=sys.stderr,
            )
    if report.ok:
        files = ", every recorded file present" if folder is not None else ""
        print(
            f"{path}: OK ({report.entries} entries, all signed by audit key "
            f"{public.audit_key.key_id if public.audit_key else '?'}, chain intact{files})"
        )
        return
    for problem in report.problems:
        print(f"{path}: {problem}", file=sys.stderr)
    raise AuditError(f"{len(report.problems)} problem(s) in {path}")


@audit_app.command("repair")
def audit_repair(keys: Optional[Path] = KeysOpt) -> None:
    """Move a torn last line and unrecorded bundles aside, record what was missing, with a signed
    `repaired` entry; never rewrites a complete signed entry."""
    from chaosmagnet.audit import repair_audit_log
    from chaosmagnet.minting.identity import load_audit_signer

    folder = keys or keys_dir()
    public = _identity_for_verify(None, folder)
    signer = load_audit_signer(folder)
    path = default_log_path()
    actions = repair_audit_log(AuditLog(path, signer), public, folder)
    if not actions:
        print(f"{path}: nothing to repair")
    for action in actions:
        details = ", ".join(f"{k}={v}" for k, v in action.items() if k not in ("action", "subject"))
        print(f"repaired: {action['action']} {action['subject']}{f' ({details})' if details else ''}")
    _print_audit_report(path, public, verify_audit_log(path, public, keys_dir=folder), folder)


@audit_app.command("sign-pending")
def audit_sign_pending(keys: Optional[Path] = KeysOpt) -> None:
    """Countersign entries recorded before the audit key existed (checks the chain first)."""
    from chaosmagnet.minting.identity import load_audit_signer

    signer = load_audit_signer(keys or keys_dir())
    if signer is None:
        raise IdentityError("no audit key yet: run `chaos-host identity init`")
    print(f"signed {AuditLog(default_log_path(), signer).sign_pending()} pending entries")


# -- hooks into `run` and `bench` ------------------------------------------------
async def _control_run_hook(engine: Any, options: dict[str, Any]) -> Any:
    """Serve the pool on the control socket and audit quarantine/failure events while `run` runs."""
    from chaosmagnet.control import ControlServer
    from chaosmagnet.securefile import remove_stale_temporaries

    folder = keys_dir()
    removed = remove_stale_temporaries([folder, identity_dir(folder), default_log_path().parent])
    if removed:
        print(
            f"chaos-host: removed {len(removed)} temporary file(s) left by an interrupted write",
            file=sys.stderr,
        )
    attach_to_engine(engine)
    server = ControlServer(engine)
    await server.start()
    return server.stop


def _mint_bench() -> dict[str, Any]:
    from chaosmagnet.minting.bench import mint_benchmark

    return mint_benchmark()


def _register_hooks() -> None:
    from chaosmagnet.bench import EXTRA_BENCHMARKS
    from chaosmagnet.cli.core_commands import RUN_HOOKS

    if _control_run_hook not in RUN_HOOKS:
        RUN_HOOKS.append(_control_run_hook)
    if not any(name == "mint (one bundle)" for name, _ in EXTRA_BENCHMARKS):
        EXTRA_BENCHMARKS.append(("mint (one bundle)", _mint_bench))


_register_hooks()
