"""The local control channel: how `chaos-host mint` draws from a running `chaos-host run`.

One pool per home: while `run` holds a home's pool, other commands in that
home ask it for seeds instead of starting the sources a second time; runs in
different homes ($CHAOS_HOME) coexist.  Transport: a Unix domain socket
(``$CHAOS_CONTROL_SOCKET``, else ``$XDG_RUNTIME_DIR/chaosmagnet/<home key>/
control.sock``, else ``/tmp/chaosmagnet-<uid>/<home key>/control.sock``, the
key naming the home) in a 0700 folder, the socket itself 0600, and the server accepts only peers with the
same uid (or root), checked with SO_PEERCRED; clients likewise accept only a
server of their own uid (or root), so a socket another user planted is never
asked for seeds.  Protocol: JSON lines, one
request per connection (docs/control-channel.md):

    -> {"op": "status"}
    <- {"ok": true, "pid": ..., "credited_bits": ..., "healthy_credited_bits": ...,
        "sources": {...}}
    -> {"op": "draw", "n_bytes": 64, "required_bits": 384, "purpose": "...", "timeout": 300}
    <- {"progress": {"have": 120.5, "need": 384}}            (zero or more)
    <- {"waiting": "quorum: keys need 2 independent ..."}   (when the quorum holds it up)
    <- {"ok": true, "seed": "<hex>", "debited": {...}, ...}
       or {"ok": false, "error": ..., "message": ...}

The seed crosses this socket and nothing else: the server logs only that a
draw happened and its size, never the bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import socket
import stat
import struct
import time
from pathlib import Path
from typing import Any

from chaosmagnet.errors import ChaosError, ControlError, PoolError, escape_device_text
from chaosmagnet.eventlog import data_dir
from chaosmagnet.minting.seeds import ProgressCallback, SeedDraw, SeedSource, draw_from_engine

SOCKET_ENV = "CHAOS_CONTROL_SOCKET"
MAX_LINE = 64 * 1024
MAX_DRAW_BYTES = 1024
MAX_TIMEOUT = 24 * 3600.0
PROGRESS_INTERVAL = 0.25


def home_key(home: Path | None = None) -> str:
    """16 hex digits naming a home (its resolved path hashed: a socket path must stay short)."""
    folder = (home or data_dir()).resolve()
    return hashlib.sha256(os.fsencode(folder)).hexdigest()[:16]


def default_socket_path(home: Path | None = None) -> Path:
    """Where the control socket of this user's home lives (see the module docstring)."""
    if os.environ.get(SOCKET_ENV):
        return Path(os.environ[SOCKET_ENV])
    key = home_key(home)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "chaosmagnet" / key / "control.sock"
    return Path("/tmp") / f"chaosmagnet-{os.getuid()}" / key / "control.sock"


def _prepare_folder(folder: Path) -> None:
    """Create the socket folder 0700 and refuse one that others could tamper with."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError as exc:
        raise ControlError(f"cannot create {folder}: {exc.strerror}") from None
    if info.st_mode & stat.S_ISVTX:
        # A shared sticky folder such as /tmp: never change its mode (that would lock
        # every other user out of it); others cannot remove or rename our socket there,
        # the socket is 0600, and both ends check the peer's uid.
        return
    if info.st_uid != os.getuid():
        raise ControlError(f"{folder} belongs to another user")
    if info.st_mode & 0o022:
        raise ControlError(
            f"{folder} is writable by other users: put the control socket elsewhere "
            f"(${SOCKET_ENV})"
        )


def _peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process on the other end (Linux SO_PEERCRED), None if unknown."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, sort_keys=True, separators=(",", ":")).encode() + b"\n"


class ControlServer:
    """Serves status and seed draws from an Engine over the control socket."""

    def __init__(self, engine: Any, path: Path | None = None) -> None:
        self.engine = engine
        self.path = Path(path) if path is not None else default_socket_path()
        self._server: asyncio.AbstractServer | None = None
        self._draw_lock = asyncio.Lock()
        self.draws = 0

    def __repr__(self) -> str:
        return f"<ControlServer {self.path} draws={self.draws}>"

    async def start(self) -> None:
        """Bind the socket; ControlError if another `chaos-host run` already serves it."""
        if not os.environ.get(SOCKET_ENV) and self.path == default_socket_path():
            _prepare_folder(self.path.parent.parent)  # chaosmagnet-<uid>/ or $XDG_RUNTIME_DIR/chaosmagnet/
        _prepare_folder(self.path.parent)
        if self.path.exists() or self.path.is_symlink():
            if await probe(self.path, timeout=1.0) is not None:
                raise ControlError(
                    f"another chaos-host run already serves this home's pool ({data_dir()}, socket {self.path})"
                )
            try:
                self.path.unlink(missing_ok=True)  # stale socket from a run that died
            except OSError as exc:  # e.g. another user's file in a sticky folder
                raise ControlError(f"cannot replace {self.path}: {exc.strerror}") from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket file is born 0600
        try:
            sock.bind(str(self.path))
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot listen on {self.path}: {exc.strerror or exc}") from None
        finally:
            os.umask(old_umask)  # restored before any await: the umask is process-wide
        os.chmod(self.path, 0o600)
        try:
            self._server = await asyncio.start_unix_server(self._handle, sock=sock, limit=MAX_LINE)
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot listen on {self.path}: {exc.strerror or exc}") from None

    async def stop(self) -> None:
        """Stop listening and remove the socket file."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            uid = _peer_uid(sock) if sock is not None else None
            if uid is not None and uid not in (os.getuid(), 0):
                await self._reply(
                    writer, {"ok": False, "error": "denied", "message": "not the socket owner"}
                )
                return
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=10.0)
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError
            except (
                ValueError,
                RecursionError,  # nested too deeply for the JSON parser
                asyncio.LimitOverrunError,
                asyncio.TimeoutError,
            ):
                await self._reply(
                    writer, {"ok": False, "error": "request", "message": "malformed request"}
                )
                return
            op = request.get("op")
            if op == "status":
                await self._reply(writer, {"ok": True, **self.status()})
            elif op == "draw":
                await self._draw(request, writer)
            else:
                await self._reply(
                    writer,
                    {"ok": False, "error": "request", "message": f"unknown op {str(op)[:20]!r}"},
                )
        except (ConnectionError, BrokenPipeError):
            pass  # the client went away; a draw already made is simply lost (and was debited)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, BrokenPipeError):
                await writer.wait_closed()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
        writer.write(_encode(message))
        await writer.drain()

    def status(self) -> dict[str, Any]:
        """Public facts about the pool and sources (never the state or any output)."""
        states = self.engine.source_states()
        return {
            "pid": os.getpid(),
            "credited_bits": self.engine.pool.credited_bits,
            "capacity_bits": self.engine.pool.capacity_bits,
            "healthy_credited_bits": self.engine.healthy_credited_bits(),
            "sources": {
                name: {
                    "state": s.get("state"),
                    "h_assessed": s.get("h_assessed"),
                    "pool_bits": s.get("pool_bits"),
                }
                for name, s in states.items()
            },
        }

    async def _draw(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        try:
            n_bytes = int(request["n_bytes"])
            required = float(request["required_bits"])
            timeout = float(request["timeout"])
            purpose = str(request["purpose"]).encode("utf-8")
        except (KeyError, TypeError, ValueError, OverflowError):
            await self._reply(
                writer,
                {
                    "ok": False,
                    "error": "request",
                    "message": "draw needs n_bytes, required_bits, timeout, purpose",
                },
            )
            return
        if not (
            0 < n_bytes <= MAX_DRAW_BYTES
            and 0 <= required < math.inf
            and 0 < timeout <= MAX_TIMEOUT
            and len(purpose) <= 256
        ):
            await self._reply(
                writer, {"ok": False, "error": "request", "message": "draw parameters out of range"}
            )
            return
        last = 0.0

        def progress(have: float, need: float) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_INTERVAL:
                last = now
                writer.write(
                    _encode({"progress": {"have": round(have, 3), "need": round(need, 3)}})
                )

        def waiting(reason: str) -> None:
            writer.write(_encode({"waiting": reason}))

        try:
            async with self._draw_lock:
                draw = await draw_from_engine(
                    self.engine,
                    n_bytes,
                    required,
                    purpose,
                    timeout,
                    progress,
                    "control-socket",
                    on_waiting=waiting,
                )
        except PoolError as exc:
            await self._reply(writer, {"ok": False, "error": "pool", "message": str(exc)})
            return
        except ChaosError as exc:
            await self._reply(writer, {"ok": False, "error": "engine", "message": str(exc)})
            return
        self.draws += 1
        await self._reply(
            writer,
            {
                "ok": True,
                "seed": draw.data.hex(),
                "required_bits": draw.required_bits,
                "debited": draw.debited,
                "debited_total": draw.debited_total,
                "fill_before": draw.fill_before,
                "commitment": draw.commitment,
                "sources": draw.sources,
                "quorum": draw.quorum,
                "dependence": draw.dependence,
            },
        )


async def _exchange(
    path: Path, request: dict[str, Any], on_message: Any, timeout: float
) -> dict[str, Any]:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(str(path), limit=MAX_LINE), 5.0
        )
    except (OSError, asyncio.TimeoutError) as exc:
        raise ControlError(f"cannot reach chaos-host run at {path}: {exc}") from None
    try:
        # Seeds must come from our own `run`: a socket that another user put at this
        # path (a /tmp folder is anyone's to create) would hand us seeds it knows.
        sock = writer.get_extra_info("socket")
        owner = _peer_uid(sock) if sock is not None else None
        if owner is not None and owner not in (os.getuid(), 0):
            raise ControlError(f"{path} is served by another user (uid {owner}): not used")
        writer.write(_encode(request))
        await writer.drain()
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout)
            if not line:
                raise ControlError("chaos-host run closed the control connection")
            try:
                message = json.loads(line)
            except (ValueError, RecursionError):
                raise ControlError("malformed answer on the control socket") from None
            if isinstance(message, dict) and "progress" in message:
                on_message(message["progress"])
                continue
            if isinstance(message, dict) and "waiting" in message:
                on_message({"waiting": message["waiting"]})
                continue
            if not isinstance(message, dict):
                raise ControlError("malformed answer on the control socket")
            return message
    except asyncio.TimeoutError:
        raise ControlError("chaos-host run did not answer in time") from None
    except (ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
        raise ControlError(f"control connection failed: {type(exc).__name__}") from None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, BrokenPipeError):
            await writer.wait_closed()


async def probe(path: Path | None = None, timeout: float = 2.0) -> dict[str, Any] | None:
    """The status of a `chaos-host run` serving ``path``, or None when none answers."""
    path = Path(path) if path is not None else default_socket_path()
    if not path.exists():
        return None
    try:
        answer = await _exchange(path, {"op": "status"}, lambda _p: None, timeout)
    except ControlError:
        return None
    return answer if answer.get("ok") else None


class ControlSeedSource(SeedSource):
    """Seeds from the pool of a `chaos-host run` in another process."""

    via = "control-socket"

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_socket_path()

    async def draw(
        self,
        n_bytes: int,
        *,
        required_bits: float,
        purpose: bytes,
        timeout: float,
        on_progress: ProgressCallback | None = None,
    ) -> SeedDraw:
        request = {
            "op": "draw",
            "n_bytes": n_bytes,
            "required_bits": required_bits,
            "purpose": purpose.decode("utf-8", "replace"),
            "timeout": timeout,
        }

        def progress(update: Any) -> None:
            if isinstance(update, dict) and "waiting" in update:
                if self.on_waiting is not None:
                    self.on_waiting(escape_device_text(str(update["waiting"]), 300))
                return
            if on_progress is not None and isinstance(update, dict):
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    on_progress(float(update["have"]), float(update["need"]))

        answer = await _exchange(self.path, request, progress, timeout + 10.0)
        if not answer.get("ok"):
            message = str(answer.get("message", "draw refused"))[:300]
            if answer.get("error") == "pool":
                raise PoolError(message)
            raise ControlError(f"chaos-host run refused the draw: {message}")
        try:
            seed = bytes.fromhex(answer["seed"])
            if len(seed) != n_bytes:
                raise ValueError
            return SeedDraw(
                data=seed,
                required_bits=float(answer["required_bits"]),
                debited={str(k): float(v) for k, v in answer["debited"].items()},
                debited_total=float(answer["debited_total"]),
                fill_before=float(answer["fill_before"]),
                commitment=str(answer["commitment"]),
                sources={str(k): dict(v) for k, v in answer["sources"].items()},
                via=self.via,
                quorum=dict(answer["quorum"]) if answer.get("quorum") is not None else None,
                dependence=[dict(g) for g in answer["dependence"]] if answer.get("dependence") is not None else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ControlError("malformed draw answer on the control socket") from None
