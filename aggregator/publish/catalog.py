"""The catalog of merged feeds and series, backed by settings and the store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from aggregator.series import stored_auto_series
from aggregator.settings import FeedSettings, SeriesSettings, Settings
from aggregator.store import Store
from aggregator.types import (
    FeedInfo,
    FeedKind,
    FeedPage,
    Listing,
    SeriesCounts,
    SourceState,
    StoryView,
)

# What an empty feed reports as its last change: a fixed date keeps its ETag stable.
EMPTY_FEED_UPDATED = datetime(2000, 1, 1, tzinfo=UTC)
SERIES_PAGE_LIMIT = 100
MIN_MAX_AGE = 60  # seconds: however fast a source is polled


RECENT_STORIES = 20  # on the home page


class StoreCatalog:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.base_url = settings.server.public_url

    def listing(self, *, counts: bool = True) -> Listing:
        series = self._series()
        if counts:
            series = [replace(info, counts=self._counts(info.slug)) for info in series]
        return Listing(
            feeds=tuple(_info("feeds", f) for f in self.settings.feeds),
            series=tuple(series),
            stories=tuple(self.store.recent_stories(limit=RECENT_STORIES)),
            sources=self.sources() if counts else (),
        )

    def _series(self) -> list[FeedInfo]:
        """Declared series, then those series.auto made from outlets' tags."""
        declared = [_info("series", s) for s in self.settings.series]
        made = [
            FeedInfo(
                kind="series",
                slug=a.slug,
                title=a.title,
                description=f"{a.title}, as outlets tag it",
                auto=True,
            )
            for a in stored_auto_series(self.store)
        ]
        return declared + made

    def _counts(self, slug: str) -> SeriesCounts:
        return self.store.series_counts(slug, story_share=self.settings.grouping.series_story_share)

    def feed_page(self, kind: FeedKind, slug: str, page: int = 1) -> FeedPage | None:
        if kind == "feeds":
            feed = next((f for f in self.settings.feeds if f.slug == slug), None)
            if feed is None:
                return None
            filters = self.settings.feed_source_filters(feed)
            size = feed.limit
            entries = self.store.feed_entries(
                source_filters=filters,
                series_slugs=feed.series,
                limit=size + 1,  # one more: whether another page follows
                offset=(page - 1) * size,
                merge=feed.merge,
                story_share=self.settings.grouping.series_story_share,
            )
            title, description = feed.title, feed.description or feed.title
            drawn_from = {source.name for source in self.settings.sources}
            for names in filters:
                drawn_from &= set(names)
        else:
            series = next((s for s in self._series() if s.slug == slug), None)
            if series is None:
                return None
            size = SERIES_PAGE_LIMIT
            entries = self.store.feed_entries(
                series_slugs=(series.slug,),
                limit=size + 1,
                offset=(page - 1) * size,
                merge="story",
                story_share=self.settings.grouping.series_story_share,
            )
            title, description = series.title, series.description or series.title
            drawn_from = {source.name for source in self.settings.sources}
        return FeedPage(
            slug=slug,
            kind=kind,
            title=title,
            description=description,
            self_url=f"{self.base_url}/{kind}/{slug}",
            home_url=f"{self.base_url}/",
            entries=entries[:size],
            updated=max((e.updated for e in entries[:size]), default=EMPTY_FEED_UPDATED),
            max_age=self._max_age(drawn_from),
            page=page,
            has_next=len(entries) > size,
            hub=self.settings.server.websub_hub,
        )

    def _max_age(self, names: set[str]) -> int:
        """Seconds until the feed may next change: the shortest polling interval of the
        sources it draws from (an automatic interval may go down to ``min_interval``)."""
        polling = self.settings.polling
        by_name = self.settings.intervals()
        shortest = polling.max_interval
        for interval in {by_name[name] for name in names if name in by_name}:
            shortest = min(shortest, max(interval or polling.min_interval, polling.min_interval))
        return max(MIN_MAX_AGE, int(shortest.total_seconds()))

    def version(self) -> int:
        return self.store.published_version()

    def sources(self) -> tuple[SourceState, ...]:
        configured = {s.name for s in self.settings.sources}
        return tuple(s for s in self.store.source_states() if s.name in configured)

    def ping(self) -> None:
        self.store.ping()

    def story(self, story_id: int) -> StoryView | None:
        return self.store.story(story_id, story_share=self.settings.grouping.series_story_share)


def _info(kind: FeedKind, declared: FeedSettings | SeriesSettings) -> FeedInfo:
    return FeedInfo(
        kind=kind,
        slug=declared.slug,
        title=declared.title,
        description=declared.description or declared.title,
    )
