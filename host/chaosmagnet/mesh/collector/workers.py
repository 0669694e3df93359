"""The collector's verify workers: processes that check the structure and signature of messages.

Each worker is a process with one pipe to the collector; a chunk of messages goes
down as one pickled list, the verdicts come back as one, and the collector's event
loop reads them when the pipe is readable.  At most two chunks per worker at a
time (it works on one while the next waits in its pipe), and a chunk is small
enough for the pipe's buffer, so the collector does not block on a full pipe.  (concurrent.futures' ProcessPoolExecutor did the same job
with two helper threads and a wake-up pipe per submit, which took a fifth of the
collector's time at a few thousand messages per second.)
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import pickle
from collections import deque
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from chaosmagnet.mesh.messages import CheckedMessage, check_signed

Items = list[tuple[str, bytes, bytes]]  # topic, payload, the sender's audit key
CHUNKS_PER_WORKER = 2


def _serve(connection: Connection, mesh: str) -> None:
    """Worker side: load the signature backend, then check chunks until the pipe closes."""
    from chaosmagnet.pqc import backend_for

    backend_for("ML-DSA-65", prefer_seeded=False)
    while True:
        try:
            keys, items = pickle.loads(connection.recv_bytes())
        except (EOFError, OSError, KeyboardInterrupt):
            return
        checked = (check_signed(mesh, None, topic, payload, keys[k]) for topic, payload, k in items)
        verdicts = [(c.reason, c.doc) for c in checked]  # the keys stay with the collector
        try:
            connection.send_bytes(pickle.dumps(verdicts, protocol=pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, OSError):
            return


class _Worker:
    def __init__(self, process: BaseProcess, connection: Connection) -> None:
        self.process = process
        self.connection = connection
        # its chunks, in order: the verdicts' future and each message's key
        self.waiting: deque[tuple[asyncio.Future[list[CheckedMessage]], list[bytes]]] = deque()


class VerifyPool:
    """``count`` verify worker processes; ``submit`` a chunk to an idle one, await its verdicts."""

    def __init__(self, mesh: str, count: int) -> None:
        self.mesh = mesh
        self.count = count
        self._workers: list[_Worker] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the processes (forkserver: no copy of the collector's state or threads)."""
        self._loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("forkserver")
        for _ in range(self.count):
            ours, theirs = context.Pipe(duplex=True)
            process = context.Process(target=_serve, args=(theirs, self.mesh), name="collector-verify", daemon=True)
            process.start()
            theirs.close()
            worker = _Worker(process, ours)
            self._workers.append(worker)
            self._loop.add_reader(ours.fileno(), self._on_readable, worker)

    def idle(self) -> bool:
        """Whether a live worker can take a chunk."""
        return any(len(w.waiting) < CHUNKS_PER_WORKER for w in self._workers)

    def alive(self) -> bool:
        """Whether any worker is left (a worker that died is not replaced: the collector then checks here)."""
        return bool(self._workers)

    def submit(self, items: Items) -> asyncio.Future[list[CheckedMessage]]:
        """Send a chunk to an idle worker (``idle()`` must be true); the future holds its verdicts."""
        assert self._loop is not None
        worker = min(self._workers, key=lambda w: len(w.waiting))
        future: asyncio.Future[list[CheckedMessage]] = self._loop.create_future()
        index: dict[bytes, int] = {}  # each sender's key goes down once per chunk, not per message
        numbered = [(topic, payload, index.setdefault(key, len(index))) for topic, payload, key in items]
        try:
            worker.connection.send_bytes(pickle.dumps((list(index), numbered), protocol=pickle.HIGHEST_PROTOCOL))
        except OSError as exc:
            self._lose(worker)
            future.set_exception(exc)
            return future
        worker.waiting.append((future, [key for _, _, key in items]))
        return future

    def _on_readable(self, worker: _Worker) -> None:
        try:
            verdicts = pickle.loads(worker.connection.recv_bytes())
        except (EOFError, OSError, pickle.UnpicklingError):
            self._lose(worker)  # its chunks' futures fail: the collector checks them itself
            return
        if worker.waiting:
            future, keys = worker.waiting.popleft()
            if not future.done():
                future.set_result([CheckedMessage(reason, doc, key) for (reason, doc), key in zip(verdicts, keys)])

    def _lose(self, worker: _Worker) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        if self._loop is not None:
            self._loop.remove_reader(worker.connection.fileno())
        with contextlib.suppress(OSError):
            worker.connection.close()
        while worker.waiting:
            future, _ = worker.waiting.popleft()
            if not future.done():
                future.set_exception(EOFError("verify worker lost"))

    def stop(self) -> None:
        """Close the pipes (the workers then exit) and wait for the processes, briefly."""
        workers, self._workers = self._workers, []
        for worker in workers:
            if self._loop is not None:
                self._loop.remove_reader(worker.connection.fileno())
            with contextlib.suppress(OSError):
                worker.connection.close()
            for future, _ in worker.waiting:
                future.cancel()
        for worker in workers:
            worker.process.join(5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
