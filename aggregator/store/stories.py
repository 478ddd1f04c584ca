"""Stories in the store: which items report the same event.

The assignment itself is decided in ``process/stories.py``; this module reads what it
needs (items not yet assigned, and the recent assigned ones to rebuild its index) and
writes what it decided, merges included, in one transaction per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, Select, bindparam, case, func, select, update

from aggregator.store.dialect import (
    BINARY_RESULTS,
    chunks,
    count_up,
    field,
    has_json_rows,
    json_rows,
    upsert,
)
from aggregator.store.entries import entries_of, story_series_why
from aggregator.store.schema import item_sources, items, sources, stories, story_index
from aggregator.types import (
    SERIES_STORY_SHARE,
    SavedStoryIndex,
    StoryAssignment,
    StoryMember,
    StorySummary,
    StoryView,
)


def unassigned_ids(connection: Connection) -> list[int]:
    """Items no story has yet, oldest first: their ids alone, in one query, since
    reading them a batch at a time sorted every unassigned item again for each batch
    (2 s of the bench's cold poll)."""
    query = select(items.c.id).where(items.c.story_id.is_(None))
    return list(connection.scalars(query.order_by(items.c.sort_at, items.c.id)))


def unassigned_members(connection: Connection, ids: Sequence[int]) -> tuple[StoryMember, ...]:
    """Those of these items that still have no story, in the order given. Read by id
    alone, the story tested here: given ``story_id IS NULL`` as well, PostgreSQL may walk
    every unassigned item in ix_items_story_id for each batch."""
    query = _members().where(items.c.id.in_(ids))
    found = {row.id: _member(row) for row in connection.execute(query) if row.story_id is None}
    return tuple(found[item_id] for item_id in ids if item_id in found)


def assigned_since(connection: Connection, since: datetime) -> tuple[StoryMember, ...]:
    """Assigned items dated ``since`` or later, oldest first: an index's recent memory."""
    rows = connection.execute(
        _members()
        .where(items.c.story_id.is_not(None))
        .where(items.c.sort_at >= since)
        .order_by(items.c.sort_at, items.c.id)
    )
    return tuple(_member(row) for row in rows)


def next_story_id(connection: Connection) -> int:
    highest = connection.execute(select(func.max(stories.c.id))).scalar_one_or_none()
    return (highest or 0) + 1


def save_assignments(connection: Connection, assignments: Sequence[StoryAssignment]) -> None:
    """Write a batch of decisions, in bulk: new stories, items' stories, stories' latest
    item, then the merges in the order they were decided (each moves every item of the
    merged stories, those of this batch included)."""
    created = [(a.story, a.when, a.last_seen) for a in assignments if a.created]
    # In row order: a batch is decided in date order, and its rows (several KB each,
    # rewritten whole) are then far apart in the table.
    in_row_order = sorted(assignments, key=attrgetter("item_id"))
    placed = [(a.item_id, a.story, a.duplicate_of) for a in in_row_order]
    latest = list({a.story: a.last_seen for a in assignments}.items())
    if has_json_rows(connection):
        _save_in_one_statement_each(connection, created, placed, latest)
    else:
        if created:
            connection.execute(
                stories.insert(),
                [{"id": i, "first_seen": first, "last_seen": last} for i, first, last in created],
            )
        connection.execute(
            update(items)
            .where(items.c.id == bindparam("item"))
            .values(story_id=bindparam("story"), duplicate_of=bindparam("original")),
            [{"item": i, "story": story, "original": of} for i, story, of in placed],
        )
        connection.execute(
            update(stories)
            .where(stories.c.id == bindparam("story"))
            .values(last_seen=bindparam("latest")),
            [{"story": story, "latest": when} for story, when in latest],
        )
    for assignment in assignments:
        if not assignment.merged:
            continue
        merged = list(assignment.merged)
        connection.execute(
            update(items).where(items.c.story_id.in_(merged)).values(story_id=assignment.story)
        )
        connection.execute(
            update(stories).where(stories.c.id.in_(merged)).values(merged_into=assignment.story)
        )


def _save_in_one_statement_each(
    connection: Connection,
    created: list[tuple[int, datetime, datetime]],
    placed: list[tuple[int, int, int | None]],
    latest: list[tuple[int, datetime]],
) -> None:
    """The batch's rows go to SQLite as one JSON array per statement, not one execution
    per row: the driver lets go of the GIL for each execution and must win it back, and
    while the story assigner decides the next batch in another thread (``_Writer`` in
    grouping.py) each win waits out its switch interval. One statement runs whole
    outside the GIL."""
    stamp = _stamper(connection)
    if created:
        rows = json_rows([[i, stamp(first), stamp(last)] for i, first, last in created])
        connection.execute(
            stories.insert().from_select(
                ["id", "first_seen", "last_seen"],
                select(field(rows, 0), field(rows, 1), field(rows, 2)),
            )
        )
    rows = json_rows([list(row) for row in placed])
    connection.execute(
        update(items)
        .where(items.c.id == field(rows, 0))
        .values(story_id=field(rows, 1), duplicate_of=field(rows, 2))
    )
    rows = json_rows([[story, stamp(when)] for story, when in latest])
    connection.execute(
        update(stories).where(stories.c.id == field(rows, 0)).values(last_seen=field(rows, 1))
    )


def _stamper(connection: Connection) -> Callable[[datetime], Any]:
    """A date as the column stores it (what SQLAlchemy would bind for it)."""
    dialect = connection.dialect
    process = stories.c.last_seen.type.dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    return process


_INDEX_ROW = 1


def count_assignment_write(connection: Connection) -> int:
    """Count one more write of assignments (it makes any saved index stale); the count."""
    return count_up(connection, story_index.c.version, _INDEX_ROW)


def saved_index(connection: Connection) -> SavedStoryIndex:
    """The count of assignment writes, and the saved indexes when they are current (a
    stale snapshot is not worth reading)."""
    current = story_index.c.snapshot_version == story_index.c.version
    row = connection.execute(
        select(
            story_index.c.version,
            story_index.c.snapshot_version,
            story_index.c.fingerprint,
            case((current, story_index.c.snapshot)).label("snapshot"),
        )
        .where(story_index.c.id == _INDEX_ROW)
        .execution_options(**{BINARY_RESULTS: True})
    ).first()
    if row is None:
        return SavedStoryIndex(version=0, snapshot_version=None, fingerprint=None, snapshot=None)
    return SavedStoryIndex(
        version=row.version,
        snapshot_version=row.snapshot_version,
        fingerprint=row.fingerprint,
        snapshot=bytes(row.snapshot) if row.snapshot is not None else None,
    )


def save_index(
    connection: Connection, *, version: int, fingerprint: str, snapshot: bytes, now: datetime
) -> bool:
    """Keep these indexes, made after the ``version``-th write of assignments, unless
    another write came since (then they would miss it); whether they were kept."""
    values = {
        "snapshot_version": version,
        "fingerprint": fingerprint,
        "snapshot": snapshot,
        "saved_at": now,
    }
    if version == 0:  # nothing was ever assigned: the row may not exist yet
        statement = upsert(connection, story_index).values(id=_INDEX_ROW, version=0, **values)
        connection.execute(statement.on_conflict_do_nothing(index_elements=["id"]))
    kept = connection.execute(
        update(story_index)
        .where(story_index.c.id == _INDEX_ROW)
        .where(story_index.c.version == version)
        .values(**values)
    )
    return kept.rowcount == 1


def story_view(
    connection: Connection, story_id: int, story_share: float = SERIES_STORY_SHARE
) -> StoryView | None:
    """A story and its members, newest first; a merged story is followed to where it went.
    Its series are those enough of its members belong to (``entries.in_series``)."""
    row = connection.execute(select(stories).where(stories.c.id == story_id)).first()
    seen = {story_id}
    while row is not None and row.merged_into is not None and row.merged_into not in seen:
        seen.add(row.merged_into)
        row = connection.execute(select(stories).where(stories.c.id == row.merged_into)).first()
    if row is None:
        return None
    members = connection.execute(
        select(items)
        .where(items.c.story_id == row.id)
        .order_by(items.c.sort_at.desc(), items.c.id.desc())
    ).all()
    by_story = story_series_why(connection, [row.id], story_share)  # read once, for both
    entries = entries_of(connection, members, story_share, by_story)
    series = by_story.get(row.id, {})
    return StoryView(
        id=row.id,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        entries=tuple(entries),
        series=tuple(series[slug] for slug in sorted(series)),
    )


def _members() -> Select[Any]:
    return select(
        items.c.id,
        items.c.title,
        items.c.sort_at,
        items.c.story_id,
        items.c.fingerprint,
        items.c.duplicate_of,
        items.c.lead,
        sources.c.name.label("source"),
        sources.c.title.label("outlet"),
    ).join(sources, sources.c.id == items.c.origin_source_id)


def _member(row: Any) -> StoryMember:
    return StoryMember(
        item_id=row.id,
        title=row.title,
        source=row.source,
        outlet=row.outlet,
        when=row.sort_at,
        story=row.story_id,
        fingerprint=row.fingerprint or b"",
        duplicate_of=row.duplicate_of,
        summary=row.lead or "",
    )


def recent_stories(connection: Connection, *, limit: int, min_outlets: int) -> list[StorySummary]:
    """The stories with the latest reports among those ``min_outlets`` outlets carried."""
    outlets = func.count(func.distinct(item_sources.c.source_id))
    latest = func.max(items.c.sort_at)
    rows = connection.execute(
        select(
            items.c.story_id,
            outlets.label("outlets"),
            func.count(func.distinct(items.c.id)).label("reports"),
            latest.label("latest"),
        )
        .join(item_sources, item_sources.c.item_id == items.c.id)
        .where(items.c.story_id.is_not(None))
        .group_by(items.c.story_id)
        .having(outlets >= min_outlets)
        .order_by(latest.desc(), items.c.story_id.desc())
        .limit(limit)
    ).all()
    titles = _lead_titles(connection, [row.story_id for row in rows])
    carriers = _outlet_titles(connection, [row.story_id for row in rows])
    return [
        StorySummary(
            id=row.story_id,
            title=titles.get(row.story_id, ""),
            outlets=row.outlets,
            reports=row.reports,
            latest=row.latest,
            outlet_titles=tuple(carriers.get(row.story_id, ())),
        )
        for row in rows
    ]


def _outlet_titles(connection: Connection, story_ids: Sequence[int]) -> dict[int, list[str]]:
    """The outlets that carried each story, the first to report first."""
    found: dict[int, list[str]] = {}
    for part in chunks(story_ids):
        rows = connection.execute(
            select(items.c.story_id, sources.c.title, func.min(item_sources.c.first_seen))
            .join(item_sources, item_sources.c.item_id == items.c.id)
            .join(sources, sources.c.id == item_sources.c.source_id)
            .where(items.c.story_id.in_(part))
            .group_by(items.c.story_id, sources.c.id, sources.c.title)
            .order_by(func.min(item_sources.c.first_seen), sources.c.title)
        )
        for row in rows:
            found.setdefault(row.story_id, []).append(row.title)
    return found


def _lead_titles(connection: Connection, story_ids: Sequence[int]) -> dict[int, str]:
    """Each story's earliest report's title."""
    titles: dict[int, str] = {}
    for part in chunks(story_ids):
        rows = connection.execute(
            select(items.c.story_id, items.c.title)
            .where(items.c.story_id.in_(part))
            .order_by(items.c.sort_at, items.c.id)
        )
        for row in rows:
            titles.setdefault(row.story_id, row.title)
    return titles
