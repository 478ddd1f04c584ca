"""Retention in the store: removing items past it, a batch per transaction, and keeping
each outlet's entry key (``pruned_entries``) so that a feed still listing a removed
item does not bring it back.

Stories and series are views of items: a removed item's memberships go with it, a
story left without items goes (with the stories that were merged into it), and the
counts read later are of what remains.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    case,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    tuple_,
    update,
)

from aggregator.process.retention import expired
from aggregator.store.dialect import chunks, upsert
from aggregator.store.schema import (
    UTCDateTime,
    item_series,
    item_sources,
    items,
    pruned_entries,
    sources,
    stories,
)
from aggregator.store.stories import count_assignment_write


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpiredBatch:
    items: tuple[int, ...]  # ids, past every carrier's retention
    credits: Counter[int]  # credits removed with them, per source id
    resume_after: tuple[datetime, int] | None  # where the next batch starts; None: done


def expired_batch(
    connection: Connection,
    source_cutoffs: Mapping[int, datetime | None],
    default_cutoff: datetime | None,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
) -> ExpiredBatch:
    """The next ``limit`` items in (sort_at, id) order dated before the latest cutoff,
    and which of them are past every carrier's retention."""
    latest = max((c for c in [*source_cutoffs.values(), default_cutoff] if c), default=None)
    if latest is None:
        return ExpiredBatch(items=(), credits=Counter(), resume_after=None)
    credited = select(item_sources.c.item_id).where(item_sources.c.item_id == items.c.id)
    query = (
        select(items.c.id, items.c.sort_at)
        .where(items.c.sort_at < latest)
        .where(credited.exists())
        # Passed over in SQL: items an outlet keeps (each hourly run would read them all
        # again); ``expired`` decides over what is left.
        .where(~credited.where(_keeps(source_cutoffs, default_cutoff)).exists())
    )
    if after is not None:
        query = query.where(tuple_(items.c.sort_at, items.c.id) > tuple_(*after))
    rows = connection.execute(query.order_by(items.c.sort_at, items.c.id).limit(limit)).all()
    carriers: dict[int, list[int]] = defaultdict(list)
    for part in chunks([row.id for row in rows]):
        for credit in connection.execute(
            select(item_sources.c.item_id, item_sources.c.source_id).where(
                item_sources.c.item_id.in_(part)
            )
        ):
            carriers[credit.item_id].append(credit.source_id)
    chosen = tuple(
        row.id
        for row in rows
        if expired(row.sort_at, carriers[row.id], source_cutoffs, default_cutoff)
    )
    credits = Counter(source for item in chosen for source in carriers[item])
    resume = (rows[-1].sort_at, rows[-1].id) if len(rows) == limit else None
    return ExpiredBatch(items=chosen, credits=credits, resume_after=resume)


def _keys_of(cutoffs: Mapping[int, datetime | None]) -> dict[datetime | None, list[int]]:
    """The sources of each cutoff (most share the top-level retention's)."""
    grouped: dict[datetime | None, list[int]] = defaultdict(list)
    for source, cutoff in cutoffs.items():
        grouped[cutoff].append(source)
    return grouped


def _keeps(
    source_cutoffs: Mapping[int, datetime | None], default_cutoff: datetime | None
) -> ColumnElement[bool]:
    """SQL over a credit (``item_sources``) and its item: the credit's outlet keeps the
    item, as ``expired`` decides it."""
    grouped = _keys_of(source_cutoffs)

    def as_sql(cutoff: datetime | None) -> ColumnElement[Any]:
        return null() if cutoff is None else literal(cutoff, UTCDateTime())

    whens = [(item_sources.c.source_id.in_(ids), as_sql(c)) for c, ids in grouped.items()]
    cutoff = case(*whens, else_=as_sql(default_cutoff)) if whens else as_sql(default_cutoff)
    return cutoff.is_(None) | (items.c.sort_at >= cutoff)


def remove_items(connection: Connection, ids: Sequence[int], now: datetime) -> int:
    """Remove these items, their credits and memberships, keeping each credit's entry
    key as pruned; remove the stories left empty. Returns the number of stories removed."""
    if not ids:
        return 0
    story_ids: set[int] = set()
    for part in chunks(sorted(ids)):
        credits = connection.execute(
            select(item_sources.c.source_id, item_sources.c.entry_key).where(
                item_sources.c.item_id.in_(part)
            )
        ).all()
        if credits:
            # Their sources' last documents listed these entries as stored: no more.
            connection.execute(
                update(sources)
                .where(sources.c.id.in_(sorted({c.source_id for c in credits})))
                .values(listed_entries=None)
            )
            statement = upsert(connection, pruned_entries)
            connection.execute(
                statement.on_conflict_do_nothing(index_elements=["source_id", "entry_key"]),
                [
                    {
                        "source_id": c.source_id,
                        "entry_key": c.entry_key,
                        "pruned_at": now,
                        "last_listed_at": now,
                    }
                    for c in sorted(credits)
                ],
            )
        story_ids.update(stories_of(connection, part))
        connection.execute(delete(item_series).where(item_series.c.item_id.in_(part)))
        connection.execute(delete(item_sources).where(item_sources.c.item_id.in_(part)))
        connection.execute(
            update(items).where(items.c.duplicate_of.in_(part)).values(duplicate_of=None)
        )
        connection.execute(delete(items).where(items.c.id.in_(part)))
    return _remove_empty_stories(connection, story_ids)


def _remove_empty_stories(connection: Connection, candidates: Iterable[int]) -> int:
    """Remove the candidates that have no items left, and the stories merged into them
    (pointers kept so that old links led somewhere: now they would lead nowhere)."""
    ids = sorted(candidates)
    still_used: set[int] = set()
    for part in chunks(ids):
        still_used.update(
            connection.scalars(
                select(items.c.story_id).where(items.c.story_id.in_(part)).distinct()
            )
        )
    every = _with_merged(connection, [story for story in ids if story not in still_used])
    if every:  # a saved story index may hold them: it is stale now
        count_assignment_write(connection)
    for part in chunks(sorted(every)):
        connection.execute(update(stories).where(stories.c.id.in_(part)).values(merged_into=None))
    for part in chunks(sorted(every)):
        connection.execute(delete(stories).where(stories.c.id.in_(part)))
    return len(every)


def _with_merged(connection: Connection, doomed: list[int]) -> list[int]:
    """These stories and those merged into them, however deep."""
    every = list(doomed)
    while doomed:
        pointers: list[int] = []
        for part in chunks(doomed):
            pointers += connection.scalars(
                select(stories.c.id).where(stories.c.merged_into.in_(part))
            ).all()
        every += pointers
        doomed = pointers
    return every


def stories_of(connection: Connection, ids: Sequence[int]) -> Counter[int]:
    """How many of these items each story has."""
    found: Counter[int] = Counter()
    for part in chunks(sorted(ids)):
        found.update(
            connection.scalars(
                select(items.c.story_id)
                .where(items.c.id.in_(part))
                .where(items.c.story_id.is_not(None))
            )
        )
    return found


def stories_emptied(connection: Connection, removed: Counter[int]) -> int:
    """How many stories removing items (``removed``: how many of each story's) would
    remove, the stories merged into them included: what a dry run reports."""
    emptied: list[int] = []
    for part in chunks(sorted(removed)):
        for story, count in connection.execute(
            select(items.c.story_id, func.count())
            .where(items.c.story_id.in_(part))
            .group_by(items.c.story_id)
        ):
            if count == removed[story]:
                emptied.append(story)
    return len(_with_merged(connection, emptied))


def forget_pruned(
    connection: Connection,
    source_cutoffs: Mapping[int, datetime | None],
    default_cutoff: datetime | None,
    *,
    dry_run: bool = False,
) -> int:
    """Drop pruned entry keys their feed has stopped listing for the source's
    retention: listed last before the cutoff, and a later poll got the feed's content
    without them (a feed answering 304 still lists what it listed). Returns how many
    were (or, ``dry_run``, would be) dropped."""
    conditions = [
        pruned_entries.c.source_id.in_(ids) & (pruned_entries.c.last_listed_at < cutoff)
        for cutoff, ids in _keys_of(source_cutoffs).items()
        if cutoff is not None
    ]
    if default_cutoff is not None:
        conditions.append(
            pruned_entries.c.source_id.not_in(list(source_cutoffs))
            & (pruned_entries.c.last_listed_at < default_cutoff)
        )
    if not conditions:
        return 0
    unlisted = (
        select(sources.c.id)
        .where(sources.c.id == pruned_entries.c.source_id)
        .where(sources.c.last_content_at > pruned_entries.c.last_listed_at)
        .exists()
    )
    stale = or_(*conditions) & unlisted
    if dry_run:
        return int(
            connection.execute(
                select(func.count()).select_from(pruned_entries).where(stale)
            ).scalar_one()
        )
    return int(connection.execute(delete(pruned_entries).where(stale)).rowcount)


def pruned_keys(
    connection: Connection, source_id: int, keys: Sequence[str], now: datetime
) -> set[str]:
    """Which of a poll's entry keys were pruned; they are marked as still listed."""
    pruned: set[str] = set()
    for part in chunks(sorted(keys)):
        pruned.update(
            connection.scalars(
                select(pruned_entries.c.entry_key)
                .where(pruned_entries.c.source_id == source_id)
                .where(pruned_entries.c.entry_key.in_(part))
            )
        )
    for part in chunks(sorted(pruned)):
        connection.execute(
            update(pruned_entries)
            .where(pruned_entries.c.source_id == source_id)
            .where(pruned_entries.c.entry_key.in_(part))
            .values(last_listed_at=now)
        )
    return pruned
