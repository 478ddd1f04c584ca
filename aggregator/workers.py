"""A pool of worker processes that runs CPU-bound work under a time budget.

Threads cannot be stopped, so a document that makes the parser run away (feedparser's
regexes are quadratic on some inputs) would hold a thread for good. A worker process
can be killed: a job that overruns its budget gets its worker killed and replaced,
and the caller gets ``WorkTimeout``; the other workers, and the other sources, go on.
Running in processes also puts the parsing on every core.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from aggregator.memory import release_free_memory

log = logging.getLogger(__name__)


class WorkTimeout(Exception):
    """The job ran past its budget; its worker was killed."""


class WorkerDied(Exception):
    """The worker process ended without answering (killed, or out of memory)."""


def _serve(jobs: Connection, replies: Connection) -> None:
    """The worker's loop: run each job sent, send back ("ok", value) or ("error", exc)."""
    while True:
        try:
            job = jobs.recv()
        except EOFError:
            return
        if job is None:
            return
        target, args, kwargs = job
        try:
            function = _resolve(target)
            reply: tuple[str, Any] = ("ok", function(*args, **kwargs))
        except Exception as exc:  # sent back to be raised in the caller
            reply = ("error", exc)
        replies.send(reply)
        del reply
        release_free_memory()


@functools.cache
def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return function


class _Worker:
    """A child interpreter running ``_serve``, with a pipe each way.

    A plain child process, not a multiprocessing one: no fork server or resource
    tracker stays around, and the parent never imports what the jobs need.
    """

    def __init__(self, preload: tuple[str, ...]) -> None:
        jobs_read, jobs_write = os.pipe()
        replies_read, replies_write = os.pipe()
        environment = dict(os.environ)
        # The child finds modules where this process does, however it was started.
        environment["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aggregator.workers", str(jobs_read),
                 str(replies_write), *preload],
                pass_fds=(jobs_read, replies_write),
                stdin=subprocess.DEVNULL,
                env=environment,
            )  # fmt: skip
        finally:
            os.close(jobs_read)
            os.close(replies_write)
        self.jobs = Connection(jobs_write, readable=False)
        self.replies = Connection(replies_read, writable=False)

    def kill(self) -> None:
        self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self._close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.jobs.send(None)
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        self._close()

    def _close(self) -> None:
        self.jobs.close()
        self.replies.close()


class TimedProcessPool:
    """``run("module:function", ...)`` in one of ``size`` worker processes, within
    ``timeout``. Workers start when first needed and import ``preload`` first."""

    def __init__(self, size: int, timeout: float, *, preload: tuple[str, ...] = ()) -> None:
        self.size = size
        self.timeout = timeout
        self._preload = preload
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._started = 0
        self._lock = threading.Lock()
        self._closed = False

    def run(self, target: str, *args: Any, **kwargs: Any) -> Any:
        """The result of the function named by ``target`` ("module:function")."""
        worker: _Worker | None = self._take()
        assert worker is not None
        try:
            worker.jobs.send((target, args, kwargs))
            if not worker.replies.poll(self.timeout):
                self._discard(worker)
                worker = None
                raise WorkTimeout(f"took longer than {self.timeout:g}s")
            status, value = worker.replies.recv()
        except (EOFError, OSError) as exc:  # a broken pipe is an OSError
            if worker is not None:
                self._discard(worker)
                worker = None
            raise WorkerDied(f"worker process died: {exc or type(exc).__name__}") from exc
        finally:
            if worker is not None:
                self._idle.put(worker)
        if status == "error":
            raise value
        return value

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            if self._idle.empty() and self._started < self.size:
                self._started += 1
                return _Worker(self._preload)
        return self._idle.get()

    def _discard(self, worker: _Worker) -> None:
        """Kill a worker and put a fresh one in its place (callers may be waiting)."""
        worker.kill()
        with self._lock:
            if self._closed:
                self._started -= 1
                return
        self._idle.put(_Worker(self._preload))

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                return


def _main(argv: list[str]) -> None:
    jobs, replies, *preload = argv
    for module in preload:
        importlib.import_module(module)
    _serve(Connection(int(jobs), writable=False), Connection(int(replies), readable=False))


if __name__ == "__main__":
    _main(sys.argv[1:])
