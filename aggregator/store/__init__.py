"""The store: SQLAlchemy on SQLite (default) or PostgreSQL, one module per aggregate.

``Store`` is the facade the pipeline and the web app use; each method is one
transaction. ORM/Core rows never leave this package: values from ``aggregator.types``
go in and come out.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from aggregator.exceptions import StoreError
from aggregator.process import retention as _retention_rules
from aggregator.store import entries as _entries
from aggregator.store import items as _items
from aggregator.store import publication as _publication
from aggregator.store import retention as _retention
from aggregator.store import series as _series
from aggregator.store import sources as _sources
from aggregator.store import stories as _stories
from aggregator.store.database import (
    create_store_engine,
    describe,
    ensure_schema,
    is_transient,
    migrate,
)
from aggregator.store.dialect import write_first
from aggregator.store.items import SavedItems
from aggregator.types import (
    SERIES_STORY_SHARE,
    FeedMerge,
    Item,
    PollSchedule,
    PruneReport,
    PublishedEntry,
    SavedStoryIndex,
    SeriesCounts,
    SeriesMembership,
    SourceDefinition,
    SourceForPoll,
    SourceNotModified,
    SourceState,
    StoredItemText,
    StoryAssignment,
    StoryMember,
    StorySummary,
    StoryView,
    TagUse,
    UnchangedEntry,
)

log = logging.getLogger(__name__)
WRITE_ATTEMPTS = 3
PRUNE_BATCH = 1000  # items removed per transaction

__all__ = ["Store", "create_store_engine", "ensure_schema", "migrate"]


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time, and a writer that finds the file locked
        # sleeps in its busy handler (1, 2, 5 ... 100 ms) while the lock may long be
        # free: this process's writers take turns here instead, and the busy timeout is
        # left to other processes'. PostgreSQL locks rows, not the database.
        self._writing: AbstractContextManager[object] = (
            threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    @classmethod
    def open(cls, url: str) -> Store:
        """Open the database at ``url``, creating the schema if the database is empty."""
        engine = create_store_engine(url)
        ensure_schema(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {describe(exc)}") from exc

    @contextmanager
    def _write_transaction(self) -> Iterator[Connection]:
        """A transaction that writes: this process's SQLite writers one at a time."""
        with self._writing, self._transaction() as connection:
            yield connection

    # --- series ------------------------------------------------------------------

    def item_texts(self, after_id: int, limit: int) -> tuple[StoredItemText, ...]:
        with self._transaction() as connection:
            return _series.item_texts(connection, after_id, limit)

    def redecide_series(
        self,
        identities: Sequence[str],
        decide: Callable[[Sequence[StoredItemText]], Sequence[tuple[int, SeriesMembership]]],
    ) -> None:
        """Replace these items' series with what ``decide`` makes of them as stored now.

        One transaction, the items' rows locked first: two processes that credit the
        same item at once decide in turn, and the later one sees both credits."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self._write_transaction() as connection:
                    write_first(connection)
                    texts = _series.item_texts_of(connection, identities, lock=True)
                    _series.replace_memberships(
                        connection, [text.item_id for text in texts], decide(texts)
                    )
                    _publication.count_change(connection)
                    return
            except StoreError as exc:
                if attempt == WRITE_ATTEMPTS or not is_transient(exc.__cause__):
                    raise
        raise AssertionError("unreachable")

    def replace_series_memberships(
        self, item_ids: Sequence[int], memberships: Sequence[tuple[int, SeriesMembership]]
    ) -> None:
        with self._write_transaction() as connection:
            _series.replace_memberships(connection, item_ids, memberships)
            _publication.count_change(connection)

    def series_counts(self, slug: str, *, story_share: float = SERIES_STORY_SHARE) -> SeriesCounts:
        with self._transaction() as connection:
            return _series.series_counts(connection, slug, story_share)

    def tag_uses(self, since: datetime) -> tuple[list[TagUse], dict[str, int]]:
        """The tags of items dated ``since`` or later, and items per source."""
        with self._transaction() as connection:
            return _series.tag_uses(connection, since)

    def clear_series_memberships(self) -> None:
        with self._write_transaction() as connection:
            _series.clear_memberships(connection)
            _publication.count_change(connection)

    def state(self, key: str) -> str | None:
        with self._transaction() as connection:
            return _series.read_state(connection, key)

    def set_state(self, key: str, value: str, *, changes_feeds: bool = True) -> None:
        """Keep a fact; ``changes_feeds``: it changes what feeds show (the series
        series.auto made, say), which every server learns."""
        with self._write_transaction() as connection:
            _series.write_state(connection, key, value)
            if changes_feeds:
                _publication.count_change(connection)

    def published_version(self) -> int:
        """How many times what the feeds show has changed (by any process)."""
        with self._transaction() as connection:
            return _publication.version(connection)

    def ping(self) -> None:
        with self._transaction() as connection:
            connection.execute(text("SELECT 1"))

    # --- sources ---------------------------------------------------------------

    def sync_sources(self, definitions: Sequence[SourceDefinition], now: datetime) -> None:
        with self._write_transaction() as connection:
            _sources.sync_sources(connection, definitions, now)
            _publication.count_change(connection)  # outlets' titles

    def due_sources(self, names: Sequence[str], now: datetime) -> tuple[SourceForPoll, ...]:
        with self._transaction() as connection:
            return _sources.due_sources(connection, names, now)

    def claim_due_sources(
        self,
        names: Sequence[str],
        now: datetime,
        *,
        owner: str,
        lease: timedelta,
        limit: int,
        per_host: int,
        due_only: bool = True,
    ) -> tuple[SourceForPoll, ...]:
        """Lease due sources to ``owner`` (see ``sources.claim_due_sources``)."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self._write_transaction() as connection:
                    return _sources.claim_due_sources(
                        connection,
                        names,
                        now,
                        owner=owner,
                        lease=lease,
                        limit=limit,
                        per_host=per_host,
                        due_only=due_only,
                    )
            except StoreError as exc:
                if attempt == WRITE_ATTEMPTS or not is_transient(exc.__cause__):
                    raise
        raise AssertionError("unreachable")

    def scheduling_lag(self, names: Sequence[str], now: datetime) -> timedelta:
        """How long the longest-waiting due source has waited for a poll."""
        with self._transaction() as connection:
            oldest = _sources.oldest_due(connection, names, now)
        return now - oldest if oldest is not None else timedelta(0)

    def poll_sooner(self, intervals: Mapping[str, timedelta], now: datetime) -> None:
        with self._write_transaction() as connection:
            _sources.poll_sooner(connection, intervals, now)

    def lease_owners(self, now: datetime) -> list[str]:
        with self._transaction() as connection:
            return _sources.lease_owners(connection, now)

    def release_leases(self, owner: str, *, keep: Sequence[str] = ()) -> None:
        with self._write_transaction() as connection:
            _sources.release_leases(connection, owner, keep)

    def pollable_count(self, names: Sequence[str]) -> int:
        with self._transaction() as connection:
            return _sources.pollable_count(connection, names)

    def sources_for_poll(self, names: Sequence[str]) -> tuple[SourceForPoll, ...]:
        with self._transaction() as connection:
            return _sources.sources_for_poll(connection, names)

    def source_states(self) -> tuple[SourceState, ...]:
        with self._transaction() as connection:
            return _sources.source_states(connection)

    # --- one poll ----------------------------------------------------------------

    def save_poll(
        self,
        name: str,
        *,
        batch: Sequence[Item],
        series: Mapping[str, tuple[SeriesMembership, ...]],
        http_status: int | None,
        etag: str | None,
        last_modified: str | None,
        now: datetime,
        schedule: Callable[[int], PollSchedule],
        moved_to: str | None = None,
        lease_owner: str | None = None,
        unchanged: Sequence[UnchangedEntry] = (),
    ) -> SavedItems:
        """Store a successful poll in one transaction: the number of new items, and the
        identities of the items written. ``unchanged``: the document's entries left
        out of ``batch`` (``ProcessedDocument.unchanged``).

        ``schedule`` maps the number of new items to the source's next poll.

        The validators are saved in the same transaction as the items, so a poll that
        dies half-way keeps the old ETag and the next poll stores everything again.
        A transaction that lost a deadlock or a lock wait to another writer is retried.
        """
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self._write_transaction() as connection:
                    saved = _items.save_items(
                        connection,
                        source_id=_sources.source_id(connection, name),
                        batch=batch,
                        series=series,
                        now=now,
                        unchanged=unchanged,
                    )
                    plan = schedule(saved.new)
                    _sources.record_success(
                        connection,
                        name,
                        status="ok",
                        http_status=http_status,
                        etag=etag,
                        last_modified=last_modified,
                        now=now,
                        next_poll_at=plan.next_poll_at,
                        moved_to=moved_to,
                        new_item_gap=plan.new_item_gap,
                        last_new_at=plan.last_new_at,
                        lease_owner=lease_owner,
                        listed=saved.listed,
                    )
                    if saved.touched:
                        _publication.count_change(connection)
                    return saved
            except StoreError as exc:
                if attempt == WRITE_ATTEMPTS or not is_transient(exc.__cause__):
                    raise
                log.info("%s: retrying the write after: %s", name, exc)
        raise AssertionError("unreachable")

    def save_not_modified(self, records: Sequence[SourceNotModified]) -> None:
        """Record any number of 304s in one transaction (they change no items)."""
        if not records:
            return
        with self._write_transaction() as connection:
            _sources.record_not_modified(connection, records)

    def save_gone(
        self,
        name: str,
        *,
        error: str,
        http_status: int,
        now: datetime,
        lease_owner: str | None = None,
    ) -> None:
        with self._write_transaction() as connection:
            _sources.record_gone(
                connection,
                name,
                error=error,
                http_status=http_status,
                now=now,
                lease_owner=lease_owner,
            )

    def save_failure(
        self,
        name: str,
        *,
        error: str,
        http_status: int | None,
        now: datetime,
        next_poll_at: Callable[[int], datetime],
        lease_owner: str | None = None,
        unreadable: bytes | None = None,
    ) -> int:
        """Record a failed poll; ``next_poll_at`` maps the new error count to the retry time.
        ``unreadable``: the digest of a document that could not be read."""
        with self._write_transaction() as connection:
            return _sources.record_failure(
                connection,
                name,
                error=error,
                http_status=http_status,
                now=now,
                next_poll_at=next_poll_at,
                lease_owner=lease_owner,
                unreadable=unreadable,
            )

    # --- retention -----------------------------------------------------------------

    def prune(
        self,
        retentions: Mapping[str, timedelta | None],
        default: timedelta | None,
        now: datetime,
        *,
        dry_run: bool = False,
        batch: int = PRUNE_BATCH,
    ) -> PruneReport:
        """Remove the items past the retention of every outlet carrying them, ``batch``
        items per transaction (a poll waits for one batch at most). ``retentions``: per
        source name, None for forever; a source not named follows ``default``."""
        with self._transaction() as connection:
            ids = _sources.ids_by_name(connection)
        source_cutoffs = _retention_rules.cutoffs(
            {ids[name]: kept for name, kept in retentions.items() if name in ids}, now
        )
        default_cutoff = now - default if default is not None else None
        removed, stories, credits, dry_stories = 0, 0, Counter[int](), Counter[int]()
        after: tuple[datetime, int] | None = None
        while True:
            with self._write_transaction() as connection:
                found = _retention.expired_batch(
                    connection, source_cutoffs, default_cutoff, after=after, limit=batch
                )
                if dry_run:
                    dry_stories.update(_retention.stories_of(connection, found.items))
                elif found.items:
                    stories += _retention.remove_items(connection, found.items, now)
                    _publication.count_change(connection)
            removed += len(found.items)
            credits.update(found.credits)
            if found.resume_after is None:
                break
            after = found.resume_after
        with self._write_transaction() as connection:
            if dry_run:
                stories = _retention.stories_emptied(connection, dry_stories)
            forgotten = _retention.forget_pruned(
                connection, source_cutoffs, default_cutoff, dry_run=dry_run
            )
        names = {source_id: name for name, source_id in ids.items()}
        return PruneReport(
            items=removed,
            credits={names[s]: n for s, n in sorted(credits.items())},
            stories=stories,
            forgotten=forgotten,
        )

    # --- stories -------------------------------------------------------------------

    def unassigned_ids(self) -> list[int]:
        """Items no story has yet, oldest first."""
        with self._transaction() as connection:
            return _stories.unassigned_ids(connection)

    def unassigned_members(self, ids: Sequence[int]) -> tuple[StoryMember, ...]:
        """Those of these items that still have no story, in the order given."""
        with self._transaction() as connection:
            return _stories.unassigned_members(connection, ids)

    def assigned_items_since(self, since: datetime) -> tuple[StoryMember, ...]:
        with self._transaction() as connection:
            return _stories.assigned_since(connection, since)

    def next_story_id(self) -> int:
        with self._transaction() as connection:
            return _stories.next_story_id(connection)

    def save_story_assignments(self, assignments: Sequence[StoryAssignment]) -> int | None:
        """Write these decisions; the count of assignment writes after this one (None:
        nothing to write)."""
        if not assignments:
            return None
        with self._write_transaction() as connection:
            _stories.save_assignments(connection, assignments)
            written = _stories.count_assignment_write(connection)
            _publication.count_change(connection)
            return written

    def saved_story_index(self) -> SavedStoryIndex:
        """How many assignment writes were made, and the indexes a process saved (only
        when nothing was assigned since)."""
        with self._transaction() as connection:
            return _stories.saved_index(connection)

    def save_story_index(
        self, *, version: int, fingerprint: str, snapshot: bytes, now: datetime
    ) -> bool:
        """Keep the story assigner's indexes, made after the ``version``-th assignment
        write, for the next process; False when a later write made them stale."""
        with self._write_transaction() as connection:
            return _stories.save_index(
                connection, version=version, fingerprint=fingerprint, snapshot=snapshot, now=now
            )

    def recent_stories(self, *, limit: int = 20, min_outlets: int = 2) -> list[StorySummary]:
        with self._transaction() as connection:
            return _stories.recent_stories(connection, limit=limit, min_outlets=min_outlets)

    def story(self, story_id: int, *, story_share: float = SERIES_STORY_SHARE) -> StoryView | None:
        with self._transaction() as connection:
            return _stories.story_view(connection, story_id, story_share)

    # --- reading for publication ----------------------------------------------------

    def feed_entries(
        self,
        *,
        source_filters: Sequence[Sequence[str]] = (),
        series_slugs: Sequence[str] | None,
        limit: int,
        offset: int = 0,
        merge: FeedMerge = "duplicates",
        story_share: float = SERIES_STORY_SHARE,
    ) -> tuple[PublishedEntry, ...]:
        """The feed's entries, newest first: one per article (``duplicates``), one per
        story (``story``: its earliest report, listing every report) or one per outlet's
        copy (``none``); ``limit`` of them, after the first ``offset``. A story is in a
        series when ``story_share`` of its items are."""
        read = {
            "story": _entries.story_entries,
            "duplicates": _entries.feed_entries,
            "none": _entries.outlet_entries,
        }[merge]
        with self._transaction() as connection:
            return read(
                connection,
                source_filters=source_filters,
                series_slugs=series_slugs,
                limit=limit,
                offset=offset,
                story_share=story_share,
            )
