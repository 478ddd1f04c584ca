"""One poll of one source, end to end: the only module that imports every stage.

for each due source, in parallel (threads, at most `workers` at once):
    fetch(source)              -> Fetched | NotModified        (FetchError: failed poll)
    parse(bytes, content type) -> ParsedFeed                   (ParseError: failed poll)
    normalize(parsed items)    -> Item...                      pure
    series_for(item, rules)    -> series slugs                 pure
    store.save_poll(...)       one transaction: items, credits, series, validators
    next_poll_after_*(...)     -> when to come back            pure
-> one PollOutcome per source: a failing source is a value, never an exception
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from aggregator.clock import Clock
from aggregator.exceptions import AggregatorError, FetchError, HTTPStatusError, ParseError
from aggregator.parse import parse_feed
from aggregator.process.normalize import normalize_items
from aggregator.process.schedule import next_poll_after_failure, next_poll_after_success
from aggregator.process.series import SeriesRule, compile_rule, series_for
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.types import (
    FetchResult,
    NotModified,
    PollOutcome,
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


@dataclass(slots=True)
class Pipeline:
    settings: Settings
    store: Store
    fetcher: Fetcher
    clock: Clock
    rules: tuple[SeriesRule, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.rules:
            self.rules = series_rules(self.settings)

    def _interval(self, name: str) -> timedelta:
        source = self.settings.source(name)
        return self.settings.interval_for(source) if source else self.settings.polling.interval

    def poll_source(self, source: SourceForPoll) -> PollOutcome:
        """Poll one source; errors of the source become a failed outcome."""
        try:
            result = self.fetcher.fetch(source)
            if isinstance(result, NotModified):
                now = self.clock.now()
                self.store.save_not_modified(
                    source.name,
                    etag=result.etag,
                    last_modified=result.last_modified,
                    now=now,
                    next_poll_at=next_poll_after_success(
                        now=now, interval=self._interval(source.name)
                    ),
                )
                return PollOutcome(source=source.name, status="not_modified", http_status=304)
            parsed = parse_feed(result.content, content_type=result.content_type, url=result.url)
            now = self.clock.now()
            batch = normalize_items(parsed.items, source_name=source.name, now=now)
            memberships = {item.entry_key: series_for(item, self.rules) for item in batch}
            new = self.store.save_poll(
                source.name,
                batch=batch,
                series={k: v for k, v in memberships.items() if v},
                http_status=result.status_code,
                etag=result.etag,
                last_modified=result.last_modified,
                now=now,
                next_poll_at=next_poll_after_success(now=now, interval=self._interval(source.name)),
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
        except (FetchError, ParseError) as exc:
            http_status = exc.status_code if isinstance(exc, HTTPStatusError) else None
            message = exc.message if isinstance(exc, FetchError) else str(exc)
            return self._failed(source, message, http_status)

    def _failed(self, source: SourceForPoll, message: str, http_status: int | None) -> PollOutcome:
        now = self.clock.now()
        interval = self._interval(source.name)
        self.store.save_failure(
            source.name,
            error=message,
            http_status=http_status,
            now=now,
            next_poll_at=lambda errors: next_poll_after_failure(
                now=now, interval=interval, consecutive_errors=errors
            ),
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

    def poll_many(
        self, sources: Sequence[SourceForPoll], *, workers: int = 8
    ) -> tuple[PollOutcome, ...]:
        if not sources:
            return ()
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(sources)))) as pool:
            return tuple(pool.map(self.poll_guarded, sources))

    def poll_all(self, *, workers: int = 8) -> tuple[PollOutcome, ...]:
        """Poll every configured source once, due or not."""
        self.sync_sources()
        names = [s.name for s in self.settings.sources]
        return self.poll_many(self.store.sources_for_poll(names), workers=workers)
