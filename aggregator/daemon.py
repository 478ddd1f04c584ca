"""The long-running process: the poller and the HTTP server, stopped cleanly by signals."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import uvicorn

from aggregator.exceptions import AggregatorError, ConfigError
from aggregator.metrics import Metrics
from aggregator.pipeline import Pipeline, open_pipeline
from aggregator.publish.app import create_app
from aggregator.publish.catalog import StoreCatalog
from aggregator.schedule import Poller
from aggregator.settings import Settings, live_changes, load_settings
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
    settings: Settings,
    store: Store,
    readiness: Callable[[], list[str]] | None = None,
    catalog: StoreCatalog | None = None,
    metrics: Metrics | None = None,
) -> None:
    """Serve the HTTP app until SIGINT/SIGTERM; ``readiness``: a poller's problems."""
    sock = bind_socket(settings.server.host, settings.server.port)
    host, port = sock.getsockname()[:2]
    app = create_app(
        catalog or StoreCatalog(settings, store),
        base_url=settings.server.public_url,
        readiness=readiness,
        metrics=metrics or Metrics(),
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


class Reloader:
    """Reads the config file again on SIGHUP and hands it to whatever runs here."""

    def __init__(
        self,
        path: Path,
        settings: Settings,
        store: Store,
        *,
        pipeline: Pipeline | None = None,
        catalog: StoreCatalog | None = None,
    ) -> None:
        self.path = path
        self.settings = settings
        self.store = store
        self.pipeline = pipeline
        self.catalog = catalog
        self._lock = threading.Lock()

    def install(self) -> None:
        """SIGHUP reloads, in a thread of its own: not inside the signal handler."""

        def handle(_signum: int, _frame: FrameType | None) -> None:
            log.info("received SIGHUP: reloading %s", self.path)
            threading.Thread(target=self.reload, name="reload", daemon=True).start()

        signal.signal(signal.SIGHUP, handle)

    def reload(self) -> bool:
        """Apply the config file as it is now; an invalid one is refused, and the
        running config stays. Returns whether it was applied."""
        with self._lock:
            try:
                reloaded = load_settings(self.path)
            except ConfigError as exc:
                log.error(
                    "config reload refused, the running config stays; fix these and "
                    "reload again:\n%s",
                    "\n".join(f"  {problem}" for problem in exc.problems),
                )
                return False
            applied, waiting = live_changes(self.settings, reloaded)
            for key in waiting:
                log.warning("config reload: %s changed; that takes a restart", key)
            try:
                if self.pipeline is not None:
                    self.pipeline.reconfigure(applied)
                if self.catalog is not None:
                    self.catalog.settings = applied
                # Every server's rendered feeds follow the store's counter: a config
                # change is a change of what they show.
                self.store.set_state(CONFIG_STATE, config_digest(applied))
            except AggregatorError as exc:
                log.error("config reload: could not apply it all (%s); reload again", exc)
                return False
            before = {s.name for s in self.settings.sources}
            after = {s.name for s in applied.sources}
            self.settings = applied
            log.info(
                "config reloaded: %d sources (%d added, %d removed), %d series, %d feeds",
                len(after),
                len(after - before),
                len(before - after),
                len(applied.series),
                len(applied.feeds),
            )
            return True


CONFIG_STATE = "config"


def config_digest(settings: Settings) -> str:
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()


@contextmanager
def pid_file(path: Path) -> Iterator[None]:
    """Write this process's id for `aggregator reload`, and remove it on the way out."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{os.getpid()}\n", encoding="ascii")
    except OSError as exc:
        raise AggregatorError(
            f"cannot write the pid file {path}: {exc.strerror or exc}; set pid_file in the "
            "config to a writable path"
        ) from exc
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if path.read_text(encoding="ascii").strip() == str(os.getpid()):
                path.unlink()


def signal_reload(path: Path) -> int:
    """Send SIGHUP to the daemon whose pid ``path`` holds; return its pid."""
    try:
        pid = int(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        raise AggregatorError(
            f"no running daemon: its pid file {path} does not exist (start it with "
            "'aggregator run', or set pid_file as the daemon's config does)"
        ) from None
    except (OSError, ValueError) as exc:
        raise AggregatorError(f"cannot read the pid file {path}: {exc}") from exc
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise AggregatorError(
            f"no running daemon: process {pid} from {path} is gone (a stale pid file; "
            "remove it and start the daemon)"
        ) from None
    except PermissionError:
        raise AggregatorError(
            f"not allowed to signal process {pid}: run 'aggregator reload' as the user the "
            "daemon runs as"
        ) from None
    return pid


def _note_signal(signum: int, _frame: FrameType | None) -> None:
    log.info("received %s", signal.Signals(signum).name)


def run(settings: Settings, *, config_path: Path, with_server: bool = True) -> None:
    with open_pipeline(settings) as pipeline, pid_file(settings.pid_file):
        poller = Poller(pipeline, workers=settings.polling.concurrency)
        metrics = Metrics()
        pipeline.metrics = metrics
        if pipeline.stories is not None:
            pipeline.stories.on_assigned = metrics.assigned
        metrics.measure_lag(lambda: scheduling_lag(pipeline))
        catalog = None
        if with_server:  # the one the hub and the static copy render from, when they are on
            catalog = pipeline.publishing or StoreCatalog(settings, pipeline.store)
        Reloader(
            config_path, settings, pipeline.store, pipeline=pipeline, catalog=catalog
        ).install()
        try:
            poller.start()
            log.info("polling %d sources", len(settings.sources))
            if with_server:
                serve(settings, pipeline.store, poller.problems, catalog, metrics)
            else:
                wait_for_signal()
        finally:
            log.info("stopping: waiting up to %gs for in-flight polls", POLL_GRACE_SECONDS)
            poller.stop(POLL_GRACE_SECONDS)
    log.info("stopped")


def scheduling_lag(pipeline: Pipeline) -> float:
    """Seconds the most overdue source has waited; NaN while the store cannot say."""
    names = [s.name for s in pipeline.settings.sources]
    try:
        return pipeline.store.scheduling_lag(names, pipeline.clock.now()).total_seconds()
    except AggregatorError:
        return float("nan")


def wait_for_signal() -> None:
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    stop.wait()
