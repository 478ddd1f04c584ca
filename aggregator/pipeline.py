"""One poll of one source, end to end: the only module that imports every stage.

for each due source, in parallel (threads: polling.concurrency, polling.per_host):
    fetch(source)              -> Fetched | NotModified        (FetchError: failed poll)
    parse(bytes, content type) -> ParsedFeed                   (ParseError: failed poll)
    normalize(parsed items)    -> Item...                      pure
    series_for(item, rules)    -> series slugs                 pure
    store.save_poll(...)       one transaction: items, credits, series, validators
    next_poll_time(...)        -> when to come back            pure
-> one PollOutcome per source: a failing source is a value, never an exception
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from random import Random
from typing import Protocol

from aggregator.clock import Clock
from aggregator.exceptions import (
    AggregatorError,
    FetchError,
    HTTPStatusError,
    ParseError,
    SourceGone,
)
from aggregator.fetch.hosts import HostLimiter
from aggregator.parse import parse_feed
from aggregator.process.normalize import normalize_items
from aggregator.process.schedule import (
    ItemRate,
    ScheduleRules,
    next_poll_time,
    observe_new_items,
)
from aggregator.process.series import SeriesRule, compile_rule, series_for
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.types import (
    NO_HINTS,
    FetchResult,
    NotModified,
    PollHints,
    PollOutcome,
    PollSchedule,
    SourceDefinition,
    SourceForPoll,
)

log = logging.getLogger(__name__)


class Fetcher(Protocol):
    def fetch(self, source: SourceForPoll) -> FetchResult: ...


def series_rules(settings: Settings) -> tuple[SeriesRule, ...]:
    return tuple(
        compile_rule(s.slug, s.match.categories, s.match.keywords) for s in settings.series
    )


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

    def _fetch(self, source: SourceForPoll) -> FetchResult:
        assert self.hosts is not None
        with self.hosts.slot(source.url):
            return self.fetcher.fetch(source)

    def poll_source(self, source: SourceForPoll) -> PollOutcome:
        """Poll one source; errors of the source become a failed outcome."""
        try:
            result = self._fetch(source)
            if isinstance(result, NotModified):
                now = self.clock.now()
                self.store.save_not_modified(
                    source.name,
                    etag=result.etag,
                    last_modified=result.last_modified,
                    now=now,
                    next_poll_at=self._next_poll(source, now, hints=result.hints),
                    moved_to=_moved(source, result.moved_to),
                )
                return PollOutcome(source=source.name, status="not_modified", http_status=304)
            parsed = parse_feed(result.content, content_type=result.content_type, url=result.url)
            now = self.clock.now()
            batch = normalize_items(parsed.items, source_name=source.name, now=now)
            memberships = {item.entry_key: series_for(item, self.rules) for item in batch}
            hints = replace(result.hints, ttl=parsed.ttl)

            def schedule(new_items: int) -> PollSchedule:
                seen = ItemRate(gap=source.new_item_gap, last_new_at=source.last_new_at)
                rate = observe_new_items(seen, now=now, new_items=new_items)
                return PollSchedule(
                    next_poll_at=self._next_poll(source, now, hints=hints, rate=rate),
                    new_item_gap=rate.gap,
                    last_new_at=rate.last_new_at,
                )

            new = self.store.save_poll(
                source.name,
                batch=batch,
                series={k: v for k, v in memberships.items() if v},
                http_status=result.status_code,
                etag=result.etag,
                last_modified=result.last_modified,
                now=now,
                schedule=schedule,
                moved_to=_moved(source, result.moved_to),
            )
            if parsed.warning:
                log.info("%s: feed has errors but was read: %s", source.name, parsed.warning)
            return PollOutcome(
                source=source.name,
                status="ok",
                http_status=result.status_code,
                items_seen=len(batch),
                items_new=new,
            )
        except SourceGone as exc:
            self.store.save_gone(
                source.name, error=exc.message, http_status=exc.status_code, now=self.clock.now()
            )
            return PollOutcome(
                source=source.name, status="gone", http_status=exc.status_code, error=exc.message
            )
        except (FetchError, ParseError) as exc:
            http_status = exc.status_code if isinstance(exc, HTTPStatusError) else None
            hints = exc.hints if isinstance(exc, HTTPStatusError) else NO_HINTS
            message = exc.message if isinstance(exc, FetchError) else str(exc)
            return self._failed(source, message, http_status, hints)

    def _failed(
        self,
        source: SourceForPoll,
        message: str,
        http_status: int | None,
        hints: PollHints = NO_HINTS,
    ) -> PollOutcome:
        now = self.clock.now()
        self.store.save_failure(
            source.name,
            error=message,
            http_status=http_status,
            now=now,
            next_poll_at=lambda errors: self._next_poll(source, now, hints=hints, errors=errors),
        )
        return PollOutcome(
            source=source.name, status="error", http_status=http_status, error=message
        )

    def poll_guarded(self, source: SourceForPoll) -> PollOutcome:
        """Like poll_source, but a bug or a store outage fails this source, not the cycle.

        The failure is recorded on the source (so it backs off) when the store allows.
        """
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

    def sync_sources(self) -> None:
        self.store.sync_sources(source_definitions(self.settings), self.clock.now())

    def poll_many(self, sources: Sequence[SourceForPoll]) -> tuple[PollOutcome, ...]:
        if not sources:
            return ()
        workers = max(1, min(self.settings.polling.concurrency, len(sources)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return tuple(pool.map(self.poll_guarded, sources))

    def poll_all(self) -> tuple[PollOutcome, ...]:
        """Poll every configured source once, due or not (gone sources excepted)."""
        self.sync_sources()
        names = [s.name for s in self.settings.sources]
        return self.poll_many(self.store.sources_for_poll(names))


def _moved(source: SourceForPoll, moved_to: str | None) -> str | None:
    return moved_to if moved_to and moved_to != source.url else None
