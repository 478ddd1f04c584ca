"""A pool of worker processes that runs CPU-bound work under a time budget.

Threads cannot be stopped, so a document that makes the parser run away (feedparser's
regexes are quadratic on some inputs) would hold a thread for good. A worker process
can be killed: a job that overruns its budget gets its worker killed and replaced,
and the caller gets ``WorkTimeout``; the other workers, and the other sources, go on.
Running in processes also puts the parsing on every core.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class WorkTimeout(Exception):
    """The job ran past its budget; its worker was killed."""


class WorkerDied(Exception):
    """The worker process ended without answering (killed, or out of memory)."""


def _serve(connection: Connection) -> None:
    """The worker's loop: run each job sent, send back ("ok", value) or ("error", exc)."""
    while True:
        try:
            job = connection.recv()
        except EOFError:
            return
        if job is None:
            return
        function, args, kwargs = job
        try:
            reply: tuple[str, Any] = ("ok", function(*args, **kwargs))
        except Exception as exc:  # sent back to be raised in the caller
            reply = ("error", exc)
        connection.send(reply)


class _Worker:
    def __init__(self, context: BaseContext) -> None:
        self.connection, child = context.Pipe()
        self.process: BaseProcess = context.Process(  # type: ignore[attr-defined]
            target=_serve, args=(child,), daemon=True, name="aggregator-worker"
        )
        self.process.start()
        child.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.send(None)
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.kill()
        else:
            self.connection.close()


class TimedProcessPool:
    """``run(function, ...)`` in one of ``size`` worker processes, within ``timeout``."""

    def __init__(self, size: int, timeout: float, *, preload: tuple[str, ...] = ()) -> None:
        self.size = size
        self.timeout = timeout
        self._context = multiprocessing.get_context("forkserver")
        if preload:
            self._context.set_forkserver_preload(list(preload))
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._started = 0
        self._lock = threading.Lock()
        self._closed = False

    def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        worker: _Worker | None = self._take()
        assert worker is not None
        try:
            worker.connection.send((function, args, kwargs))
            if not worker.connection.poll(self.timeout):
                self._discard(worker)
                worker = None
                raise WorkTimeout(f"took longer than {self.timeout:g}s")
            status, value = worker.connection.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            if worker is not None:
                self._discard(worker)
                worker = None
            raise WorkerDied(f"worker process died: {exc or type(exc).__name__}") from exc
        finally:
            if worker is not None:
                self._idle.put(worker)
        if status == "error":
            raise value
        return value  # type: ignore[no-any-return]

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            if self._idle.empty() and self._started < self.size:
                self._started += 1
                return _Worker(self._context)
        return self._idle.get()

    def _discard(self, worker: _Worker) -> None:
        """Kill a worker and put a fresh one in its place (callers may be waiting)."""
        worker.kill()
        with self._lock:
            if self._closed:
                self._started -= 1
                return
        self._idle.put(_Worker(self._context))

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                return
