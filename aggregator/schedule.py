"""APScheduler wiring. It only ticks: what is due comes from the store.

Each tick leases due sources from the store, as many as there are idle workers, and
hands them to a small pool of worker threads; a worker that finishes a poll leases the
next. The leases are in the store, so any number of processes sharing it poll each
source once per due time (a dead process's leases run out and return to the pool).
The workers are daemon threads, so a poll stuck in the network cannot hold the process
past its shutdown deadline; each poll writes in one transaction, so an abandoned poll
leaves no partial rows.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from aggregator.pipeline import Pipeline, instance_name
from aggregator.retention import PRUNE_EVERY, describe_report, prune, retention_configured
from aggregator.store.roles import Role, Tenure
from aggregator.types import SourceForPoll

log = logging.getLogger(__name__)

TICK = timedelta(seconds=5)
# Items are put into stories when the due polls are all done (in time order, whichever
# finished first), and at least this often while polls keep coming.
ASSIGN_AT_LEAST_EVERY = 30.0  # seconds
# How often series.auto looks for new running-story tags in what the polls stored.
AUTO_SERIES_EVERY = timedelta(hours=6)
# A poll still running this long after its fetch and parse deadlines is stuck.
STUCK_GRACE = timedelta(seconds=30)
# The first prune waits for the first polls, which matter more at start.
PRUNE_FIRST_AFTER = timedelta(minutes=5)


class Poller:
    def __init__(
        self,
        pipeline: Pipeline,
        *,
        workers: int = 8,
        tick: timedelta = TICK,
        stuck_grace: timedelta = STUCK_GRACE,
    ) -> None:
        self.pipeline = pipeline
        self.tick_interval = tick
        self.stuck_grace = stuck_grace
        self._queue: queue.Queue[SourceForPoll | None] = queue.Queue()
        self._in_flight: dict[str, float] = {}  # source -> when its poll was taken (monotonic)
        self._lock = threading.Lock()
        self._claiming = threading.Lock()
        self.owner = instance_name()
        self._retention = Role(pipeline.store.engine, "retention")
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
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
        self.pipeline.reclaim_dead_leases()
        for worker in self._workers:
            worker.start()
        self._scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.tick_interval.total_seconds(),
            next_run_time=datetime.now(UTC),  # the scheduler's clock is the wall clock
            id="tick",
        )
        if retention_configured(self.pipeline.settings):
            self._scheduler.add_job(
                self.prune,
                "interval",
                seconds=PRUNE_EVERY.total_seconds(),
                next_run_time=datetime.now(UTC) + PRUNE_FIRST_AFTER,
                id="prune",
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

    def prune(self) -> None:
        """Remove what is past its retention: in one process of those sharing the store."""
        if self._stopping.is_set() or self._retention.claim() is Tenure.ELSEWHERE:
            return
        try:
            report = prune(self.pipeline.store, self.pipeline.settings, self.pipeline.clock.now())
        except Exception:
            log.exception("retention: cannot prune; trying again in an hour")
            return
        if report.items or report.forgotten:
            log.info("retention: %s", describe_report(report, dry_run=False).splitlines()[0])

    def tick(self) -> None:
        if self._stopping.is_set():
            return
        self._claim()
        # A poll stuck until its deadline holds the others' items back no longer than this;
        # what changed without new items, and what could not be published, as often. Not
        # in this thread: a hub that does not answer must not hold up the ticks.
        if time.monotonic() - self._assigned_at >= ASSIGN_AT_LEAST_EVERY:
            threading.Thread(target=self._settle, name="settle", daemon=True).start()

    def _claim(self) -> None:
        """Lease as many due sources as there are idle workers, and queue them."""
        settings = self.pipeline.settings
        with self._claiming:
            if self._stopping.is_set():
                return
            with self._lock:
                idle = len(self._workers) - len(self._in_flight)
            if idle <= 0:
                return
            try:
                claimed = self.pipeline.store.claim_due_sources(
                    [s.name for s in settings.sources],
                    self.pipeline.clock.now(),
                    owner=self.owner,
                    lease=settings.polling.lease,
                    limit=idle,
                    per_host=settings.polling.per_host,
                )
            except Exception:
                log.exception("cannot read due sources from the store; retrying next tick")
                return
            with self._lock:
                fresh = [s for s in claimed if s.name not in self._in_flight]
                taken = time.monotonic()
                self._in_flight.update((s.name, taken) for s in fresh)
            # Queued before stop() can queue the workers' ends (it waits for this lock).
            for source in fresh:
                self._queue.put(source)

    def _work(self) -> None:
        while True:
            source = self._queue.get()
            if source is None:
                return
            try:
                if not self._stopping.is_set():
                    self.pipeline.poll_guarded(source)
            finally:
                with self._lock:
                    self._in_flight.pop(source.name, None)
                    self._idle.notify_all()
            self._claim()
            with self._lock:
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
            # Whatever process stored them: the one holding the stories role assigns
            # every process's items.
            self.pipeline.assign_stories()
            self.pipeline.publish_changes()
        finally:
            self._settling.release()

    def problems(self) -> list[str]:
        """Why this poller is not doing its work, for /readyz; empty when it is."""
        if self._stopping.is_set():
            return ["stopping"]
        found = []
        if not self._scheduler.running:
            found.append("the scheduler is not running")
        polling = self.pipeline.settings.polling
        deadline = (polling.timeout + polling.parse_timeout + self.stuck_grace).total_seconds()
        now = time.monotonic()
        with self._lock:
            stuck = sorted(
                (name, now - t) for name, t in self._in_flight.items() if now - t > deadline
            )
        found += [
            f"the poll of {name} has run {age:.0f}s, past its deadline" for name, age in stuck
        ]
        return found

    def stop(self, timeout: float) -> bool:
        """Stop ticking, let in-flight polls finish for up to ``timeout`` seconds.

        Returns False when some polls were abandoned (their transactions never commit).
        """
        self._stopping.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        with self._claiming:  # a claim under way has queued what it leased
            never_started = self._drain_queue()
            with self._lock:
                for name in never_started:
                    self._in_flight.pop(name, None)
            for _ in self._workers:
                self._queue.put(None)
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._in_flight and (remaining := deadline - time.monotonic()) > 0:
                self._idle.wait(remaining)
            abandoned = sorted(self._in_flight)
        if abandoned:
            log.warning("abandoning in-flight polls: %s", ", ".join(abandoned))
        self._release(keep=abandoned)
        self._retention.release()
        return not abandoned

    def _drain_queue(self) -> list[str]:
        """Take out the sources leased but not yet handed to a worker."""
        drained: list[str] = []
        while True:
            try:
                source = self._queue.get_nowait()
            except queue.Empty:
                return drained
            if source is not None:
                drained.append(source.name)

    def _release(self, *, keep: Sequence[str]) -> None:
        """Leases of sources this process will not poll go back to the pool at once;
        those of abandoned polls run out instead (their write may yet be landing)."""
        with self._claiming:
            try:
                self.pipeline.store.release_leases(self.owner, keep=keep)
            except Exception as exc:
                log.warning("cannot give back leased sources (they return in time): %s", exc)
