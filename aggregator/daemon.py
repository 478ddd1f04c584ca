"""The long-running process: the poller and the HTTP server, stopped cleanly by signals."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn

from aggregator.exceptions import AggregatorError
from aggregator.pipeline import open_pipeline
from aggregator.publish.app import create_app
from aggregator.publish.catalog import StoreCatalog
from aggregator.schedule import Poller
from aggregator.settings import Settings
from aggregator.store import Store

log = logging.getLogger(__name__)

# Polls get this long to finish after SIGTERM; the whole stop stays well under 10 s.
POLL_GRACE_SECONDS = 4.0
HTTP_GRACE_SECONDS = 3


class ListenError(AggregatorError):
    """The HTTP server cannot listen where the config says."""


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "change server.listen in the config or stop the other process"
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(
    settings: Settings, store: Store, readiness: Callable[[], list[str]] | None = None
) -> None:
    """Serve the HTTP app until SIGINT/SIGTERM; ``readiness``: a poller's problems."""
    sock = bind_socket(settings.server.host, settings.server.port)
    host, port = sock.getsockname()[:2]
    app = create_app(
        StoreCatalog(settings, store), base_url=settings.server.public_url, readiness=readiness
    )
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=HTTP_GRACE_SECONDS,
    )
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    log.info("serving merged feeds on http://%s:%d/", shown, port)
    # uvicorn re-raises the signal that stopped it once it has shut down, to the
    # handler that was installed before it: make that one a no-op so our cleanup runs.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _note_signal)
    server.run(sockets=[sock])


def _note_signal(signum: int, _frame: FrameType | None) -> None:
    log.info("received %s", signal.Signals(signum).name)


def run(settings: Settings, *, with_server: bool = True) -> None:
    with open_pipeline(settings) as pipeline:
        poller = Poller(pipeline, workers=settings.polling.concurrency)
        try:
            poller.start()
            log.info("polling %d sources", len(settings.sources))
            if with_server:
                serve(settings, pipeline.store, poller.problems)
            else:
                wait_for_signal()
        finally:
            log.info("stopping: waiting up to %gs for in-flight polls", POLL_GRACE_SECONDS)
            poller.stop(POLL_GRACE_SECONDS)
    log.info("stopped")


def wait_for_signal() -> None:
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    stop.wait()
