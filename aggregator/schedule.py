"""APScheduler wiring. It only ticks: what is due comes from the store.

Each tick asks the store which sources are due and hands the ones not already being
polled to a small pool of worker threads. The workers are daemon threads, so a poll
stuck in the network cannot hold the process past its shutdown deadline; each poll
writes in one transaction, so an abandoned poll leaves no partial rows.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import UTC, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from aggregator.pipeline import Pipeline
from aggregator.types import PollOutcome, SourceForPoll

log = logging.getLogger(__name__)

TICK = timedelta(seconds=5)
# Items are put into stories when the due polls are all done (in time order, whichever
# finished first), and at least this often while polls keep coming.
ASSIGN_AT_LEAST_EVERY = 30.0  # seconds
# How often series.auto looks for new running-story tags in what the polls stored.
AUTO_SERIES_EVERY = timedelta(hours=6)


class Poller:
    def __init__(self, pipeline: Pipeline, *, workers: int = 8, tick: timedelta = TICK) -> None:
        self.pipeline = pipeline
        self.tick_interval = tick
        self._queue: queue.Queue[SourceForPoll | None] = queue.Queue()
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        # Polls stored new items no story has yet; at start, the batch's end also brings
        # the static copy and the WebSub hub up to date with what is stored.
        self._unassigned = True
        self._settling = threading.Lock()
        self._assigned_at = time.monotonic()
        self._workers = [
            threading.Thread(target=self._work, name=f"poll-{i}", daemon=True)
            for i in range(workers)
        ]
        self._scheduler = BackgroundScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1}
        )

    def start(self) -> None:
        self.pipeline.sync_sources()
        for worker in self._workers:
            worker.start()
        self._scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.tick_interval.total_seconds(),
            next_run_time=self.pipeline.clock.now(),
            id="tick",
        )
        if self.pipeline.settings.auto_series.enabled:
            self._scheduler.add_job(
                self.refresh_series,
                "interval",
                seconds=AUTO_SERIES_EVERY.total_seconds(),
                id="auto-series",
            )
        self._scheduler.start()

    def refresh_series(self) -> None:
        if self._stopping.is_set():
            return
        try:
            self.pipeline.refresh_series()
        except Exception:
            log.exception("series.auto: cannot refresh series; trying again later")

    def tick(self) -> None:
        if self._stopping.is_set():
            return
        names = [s.name for s in self.pipeline.settings.sources]
        try:
            due = self.pipeline.store.due_sources(names, self.pipeline.clock.now())
        except Exception:
            log.exception("cannot read due sources from the store; retrying next tick")
            return
        with self._lock:
            fresh = [s for s in due if s.name not in self._in_flight]
            self._in_flight.update(s.name for s in fresh)
        for source in fresh:
            self._queue.put(source)
        # A poll stuck until its deadline holds the others' items back no longer than this;
        # what changed without new items, and what could not be published, as often. Not
        # in this thread: a hub that does not answer must not hold up the ticks.
        if time.monotonic() - self._assigned_at >= ASSIGN_AT_LEAST_EVERY:
            threading.Thread(target=self._settle, name="settle", daemon=True).start()

    def _work(self) -> None:
        while True:
            source = self._queue.get()
            if source is None:
                return
            try:
                if not self._stopping.is_set():
                    outcome = self.pipeline.poll_guarded(source)
                    log_outcome(outcome)
                    if outcome.items_new:
                        self._unassigned = True
            finally:
                with self._lock:
                    self._in_flight.discard(source.name)
                    self._idle.notify_all()
                    drained = not self._in_flight and self._queue.empty()
            if drained or time.monotonic() - self._assigned_at >= ASSIGN_AT_LEAST_EVERY:
                self._settle()

    def _settle(self) -> None:
        """Put new items into stories, and publish what changed (the static copy, the
        WebSub hub): by one thread at a time; another that comes meanwhile leaves it."""
        if not self._settling.acquire(blocking=False):
            return
        try:
            self._assigned_at = time.monotonic()
            if self._stopping.is_set():
                return
            if self._unassigned:
                self._unassigned = False
                self.pipeline.assign_stories()
            self.pipeline.publish_changes()
        finally:
            self._settling.release()

    def stop(self, timeout: float) -> bool:
        """Stop ticking, let in-flight polls finish for up to ``timeout`` seconds.

        Returns False when some polls were abandoned (their transactions never commit).
        """
        self._stopping.set()
        self._scheduler.shutdown(wait=False)
        for _ in self._workers:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log.warning(
                        "abandoning in-flight polls: %s", ", ".join(sorted(self._in_flight))
                    )
                    return False
                self._idle.wait(remaining)
        return True


def log_outcome(outcome: PollOutcome) -> None:
    if outcome.status == "error":
        log.warning("%s: error: %s", outcome.source, outcome.error)
    elif outcome.status == "not_modified":
        log.info("%s: not modified", outcome.source)
    else:
        log.info("%s: %d items, %d new", outcome.source, outcome.items_seen, outcome.items_new)
