"""One poll of one source, end to end: the only module that imports every stage.

for each due source, in parallel (threads: polling.concurrency, polling.per_host):
    fetch(source)              -> Fetched | NotModified        (FetchError: failed poll)
    process_document(bytes)    -> Items, series      in a worker process, on every core:
      parse -> normalize -> series_for                       pure, under a time budget
    store.save_poll(...)       one transaction: items, credits, series, validators
    next_poll_time(...)        -> when to come back            pure
-> one PollOutcome per source: a failing source is a value, never an exception
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from random import Random
from typing import TYPE_CHECKING, Any, Protocol

from aggregator.clock import Clock, SystemClock
from aggregator.exceptions import (
    AggregatorError,
    FetchError,
    HTTPStatusError,
    ParseError,
    ParseInterrupted,
    ParserDied,
    ParseTimeout,
    SourceGone,
    StoreError,
)
from aggregator.fetch import Fetcher as HTTPFetcher
from aggregator.fetch import FetchLimits
from aggregator.fetch.fetcher import user_agent
from aggregator.fetch.hosts import HostLimiter
from aggregator.grouping import StoryAssigner
from aggregator.logs import POLL_LOGGER, log_poll
from aggregator.process.duplicates import DuplicateRules
from aggregator.process.schedule import (
    ItemRate,
    ScheduleRules,
    next_poll_time,
    observe_new_items,
)
from aggregator.process.series import SeriesRule
from aggregator.process.stories import GroupingRules
from aggregator.process.unreadable import document_digest
from aggregator.reading_code import reading_code_key
from aggregator.series import (
    redecide,
    refresh_auto_series,
    regroup_if_changed,
    rules_for_source,
    series_rules,
)
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.store.roles import Role
from aggregator.types import (
    NO_HINTS,
    Fetched,
    FetchResult,
    NotModified,
    PollHints,
    PollOutcome,
    PollSchedule,
    ProcessedDocument,
    SourceDefinition,
    SourceForPoll,
    SourceNotModified,
)
from aggregator.workers import TimedProcessPool, WorkerDied, WorkTimeout

if TYPE_CHECKING:
    from aggregator.metrics import Metrics
    from aggregator.publish.catalog import StoreCatalog
    from aggregator.publish.websub import HubNotifier

log = logging.getLogger(__name__)
poll_log = logging.getLogger(POLL_LOGGER)


class Fetcher(Protocol):
    def fetch(self, source: SourceForPoll) -> FetchResult: ...


class DocumentProcessor(Protocol):
    """Runs ``process_document``: in this thread, or in a worker under a time budget."""

    def __call__(
        self,
        content: bytes,
        *,
        content_type: str | None,
        url: str,
        source_name: str,
        now: datetime,
        rules: Sequence[SeriesRule],
        code_key: bytes,
        split_categories: str | None,
        listed: frozenset[bytes],
    ) -> ProcessedDocument: ...


PROCESS_DOCUMENT = "aggregator.process.document:process_document"


def process_here(content: bytes, **arguments: Any) -> ProcessedDocument:
    """``process_document`` in the calling thread (tests, one-off runs)."""
    from aggregator.process.document import process_document

    return process_document(content, **arguments)


class PooledProcessor:
    """``process_document`` in worker processes; overruns and crashes are parse errors.

    Only the workers import the parsers: this process stays small."""

    def __init__(self, pool: TimedProcessPool) -> None:
        self.pool = pool

    def __call__(self, content: bytes, **arguments: Any) -> ProcessedDocument:
        try:
            document: ProcessedDocument = self.pool.run(PROCESS_DOCUMENT, content, **arguments)
            return document
        except WorkTimeout as exc:
            raise ParseTimeout(f"parsing was stopped: it {exc}") from exc
        except WorkerDied as exc:
            raise ParserDied(f"the parser failed on this document: {exc}") from exc


def fetch_limits(settings: Settings) -> FetchLimits:
    polling = settings.polling
    return FetchLimits(
        timeout=polling.timeout.total_seconds(),
        max_bytes=polling.max_bytes,
        user_agent=user_agent(polling.contact),
        allow_networks=polling.allow_networks,
    )


@contextmanager
def open_pipeline(settings: Settings, *, once: bool = False) -> Iterator[Pipeline]:
    """The composition root of a polling process: store, fetcher and parser workers,
    wired into a pipeline and closed again on the way out. ``once``: for one batch of
    polls (``aggregator poll``), whose parse workers stop as soon as its polls are done,
    before the stories are assigned: their memory is not needed for the rest."""
    store = Store.open(settings.database)

    made: list[HTTPFetcher] = []  # the first, and any a reloaded config asked for

    def make_fetcher(settings: Settings) -> HTTPFetcher:
        made.append(HTTPFetcher(fetch_limits(settings)))
        return made[-1]

    fetcher = make_fetcher(settings)
    pool = parse_pool(settings)
    stories = story_assigner(store, settings, Role(store.engine, "stories"))
    try:
        pipeline = Pipeline(
            settings=settings,
            store=store,
            fetcher=fetcher,
            clock=SystemClock(),
            processor=PooledProcessor(pool),
            stories=stories,
            make_fetcher=make_fetcher,
            after_polls=pool.close if once else None,
        )
        if settings.server.websub_hub or settings.server.static_dir:
            _wire_publishing(pipeline, settings, store)
        pipeline.refresh_series()
        yield pipeline
    finally:
        pool.close()
        stories.close()
        for made_fetcher in made:
            made_fetcher.close()
        store.close()


def _wire_publishing(pipeline: Pipeline, settings: Settings, store: Store) -> None:
    """The WebSub hub and the static copy a poller keeps up to date. Imported only
    then: the publishing side (Starlette among it) stays out of other pollers."""
    from functools import partial

    from aggregator.publish.catalog import StoreCatalog
    from aggregator.publish.export import export_site
    from aggregator.publish.websub import HubNotifier

    catalog = StoreCatalog(settings, store)
    pipeline.publishing = catalog
    server = settings.server
    if server.websub_hub:

        def remember(key: str, value: str) -> None:  # what the hub knows is no feed's
            store.set_state(key, value, changes_feeds=False)

        pipeline.hub = HubNotifier(server.websub_hub, catalog, state=(store.state, remember))
    if server.static_dir is not None:
        pipeline.static_copy = partial(
            export_site, catalog, server.static_dir, base_url=server.public_url, only_changed=True
        )


def parse_pool(settings: Settings) -> TimedProcessPool:
    """Workers for parsing: one per core, the time budget from polling.parse_timeout."""
    return TimedProcessPool(
        max(1, os.cpu_count() or 1),
        settings.polling.parse_timeout.total_seconds(),
        preload=("aggregator.process.document",),
    )


def story_assigner(store: Store, settings: Settings, role: Role | None = None) -> StoryAssigner:
    """The story assigner the settings describe (``role``: shared with other processes)."""
    return StoryAssigner(
        store,
        grouping_rules(settings),
        standalone=standalone_sources(settings),
        duplicates=duplicate_rules(settings),
        role=role,
    )


def standalone_sources(settings: Settings) -> frozenset[str]:
    """The sources whose items stay out of stories (``dedupe: false``)."""
    return frozenset(s.name for s in settings.sources if not s.dedupe)


def grouping_rules(settings: Settings) -> GroupingRules:
    grouping = settings.grouping
    return GroupingRules(
        threshold=grouping.threshold,
        pair_threshold=grouping.pair_threshold,
        unnamed_threshold=grouping.unnamed_threshold,
        subject_threshold=grouping.subject_threshold,
        merge_threshold=grouping.merge_threshold,
        window=grouping.window,
        capital_boost=grouping.capital_boost,
        summary_weight=grouping.summary_weight,
    )


def duplicate_rules(settings: Settings) -> DuplicateRules:
    grouping = settings.grouping
    return DuplicateRules(threshold=grouping.duplicate_threshold, window=grouping.window)


def source_definitions(settings: Settings) -> tuple[SourceDefinition, ...]:
    return tuple(
        SourceDefinition(name=s.name, title=s.display_title, url=s.url) for s in settings.sources
    )


def schedule_rules(settings: Settings, name: str) -> ScheduleRules:
    source = settings.source(name)
    polling = settings.polling
    interval = settings.interval_for(source) if source else None
    return ScheduleRules(
        interval=interval,
        min_interval=polling.min_interval,
        max_interval=polling.max_interval,
        jitter=polling.jitter,
    )


@dataclass(slots=True)
class Pipeline:
    settings: Settings
    store: Store
    fetcher: Fetcher
    clock: Clock
    rules: tuple[SeriesRule, ...] = field(default=())
    random: Random = field(default_factory=Random)
    hosts: HostLimiter | None = None
    processor: DocumentProcessor = process_here
    # The key of the code that reads documents: their digests and those of their
    # entries are made under it (reading_code.py).
    reading_code: bytes = field(default_factory=reading_code_key)
    stories: StoryAssigner | None = None  # None: items are not assigned to stories
    hub: HubNotifier | None = None  # None: no WebSub hub to tell of changed feeds
    static_copy: Callable[[], object] | None = None  # rewrites server.static_dir's files
    # The publication counter when the static copy and the hub were last brought up to
    # date: publishing is skipped while it stands still.
    published_version: int | None = None
    # While poll_many runs, 304s are gathered here and recorded in one transaction.
    not_modified_batch: list[SourceNotModified] | None = None
    # How a reloaded config's fetch limits make a new fetcher; None: they cannot change.
    make_fetcher: Callable[[Settings], Fetcher] | None = None
    # The catalog the static copy and the hub render from, when configured.
    publishing: StoreCatalog | None = None
    metrics: Metrics | None = None  # counts polls and their timings when set
    # Readies the story index while a batch of polls fetches (StoryAssigner.prepare).
    preparing: threading.Thread | None = None
    preparing_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Called once a batch's polls are done, before its stories are assigned.
    after_polls: Callable[[], object] | None = None

    def __post_init__(self) -> None:
        if not self.rules:
            self.rules = series_rules(self.settings)
        if self.hosts is None:
            self.hosts = HostLimiter(self.settings.polling.per_host)

    def _next_poll(
        self,
        source: SourceForPoll,
        now: datetime,
        *,
        hints: PollHints = NO_HINTS,
        errors: int = 0,
        rate: ItemRate | None = None,
    ) -> datetime:
        return next_poll_time(
            now=now,
            rules=schedule_rules(self.settings, source.name),
            hints=hints,
            consecutive_errors=errors,
            rate=rate or ItemRate(gap=source.new_item_gap, last_new_at=source.last_new_at),
            jitter_draw=self.random.random(),
        )

    def assign_stories(self) -> None:
        """Put the items polls stored since the last call into stories, oldest first.

        Called once a batch of polls is done, not after each poll: items are then
        assigned in time order whichever polling thread finished first, and the stories
        of a cycle do not depend on thread timing. Stories are a view of stored items:
        when assigning fails, the polls stand, and the items are assigned next time."""
        if self.stories is None:
            return
        if self.preparing is not None:
            self.preparing.join()
            self.preparing = None
        try:
            assigned = self.stories.assign_pending(self.clock.now())
            if assigned:
                log.info("stories: %d new items placed", assigned)
        except StoreError as exc:
            log.warning("stories: assignment postponed: %s", exc)
            self.stories.forget()
        except Exception:  # a bug in grouping: the poll itself succeeded
            log.exception("stories: assignment failed (a bug, please report it)")
            self.stories.forget()

    def _decide_series(self, identities: Sequence[str]) -> None:
        """The written items' series, decided again from the store with every carrier's
        rules (see ``series.redecide``). Derived, like stories: when it fails, the poll
        stands with the memberships it wrote, and a regroup decides them again."""
        try:
            redecide(self.store, self.settings, self.rules, identities)
        except StoreError as exc:
            log.warning("series: deciding memberships postponed: %s", exc)

    def _fetch(self, source: SourceForPoll) -> FetchResult:
        assert self.hosts is not None
        with self.hosts.slot(source.url):
            return self.fetcher.fetch(source)

    def poll_source(self, source: SourceForPoll) -> PollOutcome:
        """Poll one source; errors of the source become a failed outcome."""
        timings: dict[str, float] = {}
        outcome = self._poll_source(source, timings)
        return replace(
            outcome, fetch_seconds=timings.get("fetch"), parse_seconds=timings.get("parse")
        )

    def _poll_source(self, source: SourceForPoll, timings: dict[str, float]) -> PollOutcome:
        try:
            started = time.perf_counter()
            try:
                result = self._fetch(source)
            finally:
                timings["fetch"] = time.perf_counter() - started
            if isinstance(result, NotModified):
                return self._not_modified(source, result)
            now = self.clock.now()
            started = time.perf_counter()
            try:
                document = self._read(source, result, now)
            finally:
                timings["parse"] = time.perf_counter() - started
            if isinstance(document, PollOutcome):
                return document  # not read: the failure is recorded
            return self._save(source, result, document, now)
        except SourceGone as exc:
            self.store.save_gone(
                source.name,
                error=exc.message,
                http_status=exc.status_code,
                now=self.clock.now(),
                lease_owner=source.lease_owner,
            )
            return PollOutcome(
                source=source.name, status="gone", http_status=exc.status_code, error=exc.message
            )
        except (FetchError, ParseError) as exc:
            http_status = exc.status_code if isinstance(exc, HTTPStatusError) else None
            hints = exc.hints if isinstance(exc, HTTPStatusError) else NO_HINTS
            message = exc.message if isinstance(exc, FetchError) else str(exc)
            return self._failed(source, message, http_status, hints)

    def _not_modified(self, source: SourceForPoll, result: NotModified) -> PollOutcome:
        now = self.clock.now()
        record = SourceNotModified(
            name=source.name,
            etag=result.etag,
            last_modified=result.last_modified,
            polled_at=now,
            next_poll_at=self._next_poll(source, now, hints=result.hints),
            moved_to=_moved(source, result.moved_to),
            lease_owner=source.lease_owner,
        )
        if self.not_modified_batch is not None:
            self.not_modified_batch.append(record)
        else:
            self.store.save_not_modified([record])
        return PollOutcome(source=source.name, status="not_modified", http_status=304)

    def _read(
        self, source: SourceForPoll, result: Fetched, now: datetime
    ) -> ProcessedDocument | PollOutcome:
        """The fetched document's items, or the outcome of a poll whose document could
        not be read (recorded, with the document's digest when the same bytes would
        fail the same way: ``process/unreadable.py``)."""
        code_key = self.reading_code
        # Only a source whose last document could not be read has its bytes digested.
        known = source.unreadable
        digest = document_digest(result.content, code_key) if known is not None else None
        if digest is not None and digest == known:
            # The same bytes as last time: they fail the same way, unread.
            message = source.last_error or UNREADABLE_AGAIN
            return self._failed(source, message, None, unreadable=digest)
        settings = self.settings.source(source.name)
        try:
            return self.processor(
                result.content,
                content_type=result.content_type,
                url=result.url,
                source_name=source.name,
                now=now,
                rules=rules_for_source(self.rules, self.settings, source.name),
                code_key=code_key,
                split_categories=settings.split_categories if settings else None,
                listed=source.listed,
            )
        except ParseInterrupted as exc:  # not known to happen again
            return self._failed(source, str(exc), None)
        except ParseError as exc:
            digest = digest or document_digest(result.content, code_key)
            return self._failed(source, str(exc), None, unreadable=digest)

    def _save(
        self, source: SourceForPoll, result: Fetched, document: ProcessedDocument, now: datetime
    ) -> PollOutcome:
        batch = document.items
        hints = replace(result.hints, ttl=document.ttl)

        def schedule(new_items: int) -> PollSchedule:
            seen = ItemRate(gap=source.new_item_gap, last_new_at=source.last_new_at)
            rate = observe_new_items(seen, now=now, new_items=new_items)
            return PollSchedule(
                next_poll_at=self._next_poll(source, now, hints=hints, rate=rate),
                new_item_gap=rate.gap,
                last_new_at=rate.last_new_at,
            )

        saved = self.store.save_poll(
            source.name,
            batch=batch,
            series=document.series,
            http_status=result.status_code,
            etag=result.etag,
            last_modified=result.last_modified,
            now=now,
            schedule=schedule,
            moved_to=_moved(source, result.moved_to),
            lease_owner=source.lease_owner,
            unchanged=document.unchanged,
        )
        if document.warning:
            log.info("%s: feed has errors but was read: %s", source.name, document.warning)
        new = saved.new
        if saved.touched and self.rules:
            self._decide_series(saved.touched)
        return PollOutcome(
            source=source.name,
            status="ok",
            http_status=result.status_code,
            items_seen=len(batch) + len(document.unchanged),
            items_new=new,
            items_updated=max(0, len(saved.touched) - new),
            bytes=len(result.content),
        )

    def _failed(
        self,
        source: SourceForPoll,
        message: str,
        http_status: int | None,
        hints: PollHints = NO_HINTS,
        *,
        unreadable: bytes | None = None,
    ) -> PollOutcome:
        """Record a failed poll; ``unreadable``: the digest of the document that could not
        be read (``process/unreadable.py``)."""
        now = self.clock.now()
        self.store.save_failure(
            source.name,
            error=message,
            http_status=http_status,
            now=now,
            next_poll_at=lambda errors: self._next_poll(source, now, hints=hints, errors=errors),
            lease_owner=source.lease_owner,
            unreadable=unreadable,
        )
        return PollOutcome(
            source=source.name, status="error", http_status=http_status, error=message
        )

    def poll_guarded(self, source: SourceForPoll) -> PollOutcome:
        """Like poll_source, but a bug or a store outage fails this source, not the cycle.

        The failure is recorded on the source (so it backs off) when the store allows.
        """
        outcome = self._poll_guarded(source)
        log_poll(poll_log, outcome)
        if self.metrics is not None:
            self.metrics.poll(outcome)
        return outcome

    def _poll_guarded(self, source: SourceForPoll) -> PollOutcome:
        try:
            return self.poll_source(source)
        except AggregatorError as exc:
            log.error("%s: poll failed: %s", source.name, exc)
            message = str(exc)
        except Exception as exc:
            log.exception(
                "%s: unexpected error while polling (a bug, please report it)", source.name
            )
            message = f"internal error: {type(exc).__name__}: {exc}"
        try:
            return self._failed(source, message, None)
        except AggregatorError:
            return PollOutcome(source=source.name, status="error", error=message)

    def refresh_series(self) -> None:
        """Make the series series.auto finds in what is stored, decide memberships again
        if that changed the rules, and match what later polls store against them."""
        auto = refresh_auto_series(self.store, self.settings, self.clock.now())
        regroup_if_changed(self.store, self.settings, auto)
        self.rules = series_rules(self.settings, auto)

    def reconfigure(self, settings: Settings) -> None:
        """Take up a reloaded config (what ``settings.live_changes`` lets through):
        added sources are polled from the next tick, removed ones no more (their items
        stay), shortened intervals bring next polls forward, changed series rules
        regroup, new grouping rules restart the story index. Polls in flight finish
        with what they started with."""
        old, self.settings = self.settings, settings
        if settings.polling.per_host != old.polling.per_host:
            self.hosts = HostLimiter(settings.polling.per_host)
        if self.make_fetcher is not None and fetch_limits(settings) != fetch_limits(old):
            self.fetcher = self.make_fetcher(settings)  # the old one is closed at exit
        if self.publishing is not None:
            self.publishing.settings = settings
        if self.stories is not None:
            self.stories.reconfigure(
                grouping_rules(settings),
                standalone=standalone_sources(settings),
                duplicates=duplicate_rules(settings),
            )
        self.sync_sources()
        self.refresh_series()
        self.store.poll_sooner(_shortened(old, settings), self.clock.now())

    def reclaim_dead_leases(self) -> None:
        """Give back at once the leases of processes on this machine that are gone (one
        killed mid-poll, restarted now); other machines' run out in their time."""
        for owner in self.store.lease_owners(self.clock.now()):
            if is_dead_local_process(owner):
                log.info("taking back the sources leased by %s, which is gone", owner)
                self.store.release_leases(owner)

    def sync_sources(self) -> None:
        self.store.sync_sources(source_definitions(self.settings), self.clock.now())

    def poll_many(
        self,
        sources: Sequence[SourceForPoll],
        on_done: Callable[[PollOutcome], object] | None = None,
    ) -> tuple[PollOutcome, ...]:
        """Poll these sources, ``polling.concurrency`` at a time; ``on_done`` hears of
        each outcome as it comes (a progress bar)."""
        if not sources:
            return ()
        workers = max(1, min(self.settings.polling.concurrency, len(sources)))

        def poll(source: SourceForPoll) -> PollOutcome:
            outcome = self.poll_guarded(source)
            if outcome.items_new:
                self._prepare_stories()
            if on_done is not None:
                on_done(outcome)
            return outcome

        self.not_modified_batch = []
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                outcomes = tuple(pool.map(poll, sources))
        finally:
            batch, self.not_modified_batch = self.not_modified_batch, None
            self.store.save_not_modified(batch)
        if self.after_polls is not None:
            self.after_polls()
        if any(o.items_new for o in outcomes):
            self.assign_stories()
        self.publish_changes()  # compares every feed with what the hub was last told
        return outcomes

    def _prepare_stories(self) -> None:
        """Load or rebuild the story index in another thread while the other polls
        fetch, once a poll has stored new items and when it is not in memory yet (the
        first such batch of a process): a batch of 304s leaves it unloaded."""
        with self.preparing_lock:
            if self.preparing is not None and not self.preparing.is_alive():
                self.preparing = None  # done, in a batch that stored nothing new
            stories = self.stories
            if stories is None or stories.ready or self.preparing is not None:
                return
            self.preparing = threading.Thread(
                target=self._prepare, args=(stories,), name="stories-prepare", daemon=True
            )
            self.preparing.start()

    def _prepare(self, stories: StoryAssigner) -> None:
        try:
            stories.prepare(self.clock.now())
        except StoreError as exc:  # assign_stories tries again, and says so
            log.debug("stories: index not prepared: %s", exc)
            stories.forget()
        except Exception:
            log.exception("stories: preparing the index failed (a bug, please report it)")
            stories.forget()

    def publish_changes(self) -> None:
        """Bring the static copy (``server.static_dir``) up to date and tell the WebSub
        hub which feeds changed, when configured. What fails now is done after a later
        batch; polling goes on either way."""
        if self.static_copy is None and self.hub is None:
            return
        try:
            version = self.store.published_version()
        except StoreError as exc:
            log.warning("publishing postponed: %s", exc)
            return
        owed = self.hub is not None and self.hub.owed
        if version == self.published_version and not owed:
            return  # nothing changed since
        done = True
        if self.static_copy is not None:
            try:
                self.static_copy()
            except Exception:
                log.exception("static copy: cannot write it; trying again after the next polls")
                done = False
        if self.hub is not None:
            try:
                self.hub.notify()
            except Exception:
                log.exception("websub: cannot tell the hub of changed feeds; trying again later")
                done = False
            done = done and not self.hub.owed
        if done:
            self.published_version = version

    def poll_all(
        self,
        on_start: Callable[[int], object] | None = None,
        on_done: Callable[[PollOutcome], object] | None = None,
    ) -> tuple[PollOutcome, ...]:
        """Poll every configured source once, due or not (gone sources excepted), but
        those a running daemon sharing the store is polling right now. ``on_start``
        hears how many will be polled, ``on_done`` of each outcome."""
        self.sync_sources()
        self.reclaim_dead_leases()
        names = [s.name for s in self.settings.sources]
        leased = self.store.claim_due_sources(
            names,
            self.clock.now(),
            owner=instance_name(),
            lease=self.settings.polling.lease,
            limit=len(names),
            per_host=len(names),  # one process: its host limiter keeps to per_host
            due_only=False,
        )
        busy = self.store.pollable_count(names) - len(leased)
        if busy:
            log.warning("%d sources are being polled by a running daemon; left to it", busy)
        if on_start is not None:
            on_start(len(leased))
        return self.poll_many(leased, on_done)


UNREADABLE_AGAIN = "not a feed: the same document that could not be read last time"


def instance_name() -> str:
    """Who holds a lease: this host and process, and a token for a reused pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def is_dead_local_process(owner: str) -> bool:
    """Whether a lease owner (``instance_name``) is a process of this machine that no
    longer runs."""
    host, _, rest = owner.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _shortened(old: Settings, new: Settings) -> dict[str, timedelta]:
    """The sources a reload gave a shorter interval (or a fixed one instead of auto),
    with their new interval."""
    shortened = {}
    for source in new.sources:
        before = old.source(source.name)
        if before is None:
            continue
        was, interval = old.interval_for(before), new.interval_for(source)
        if interval is not None and (was is None or interval < was):
            shortened[source.name] = interval
    return shortened


def _moved(source: SourceForPoll, moved_to: str | None) -> str | None:
    return moved_to if moved_to and moved_to != source.url else None
