"""Series memberships in the store: reading items back to decide them again, and
replacing what was decided (``aggregator regroup``); the store's own small state."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select

from aggregator.store.dialect import chunks, upsert
from aggregator.store.entries import in_series
from aggregator.store.schema import item_series, item_sources, items, sources, state
from aggregator.types import Category, SeriesCounts, SeriesMembership, StoredItemText, TagUse

_TEXT_COLUMNS = (
    items.c.id,
    items.c.title,
    items.c.summary_html,
    items.c.content_html,
    items.c.categories,
)


def item_texts(connection: Connection, after_id: int, limit: int) -> tuple[StoredItemText, ...]:
    """Up to ``limit`` items with ids above ``after_id``, in id order, with the names of
    the sources that carry them."""
    rows = connection.execute(
        select(*_TEXT_COLUMNS).where(items.c.id > after_id).order_by(items.c.id).limit(limit)
    ).all()
    return _texts(connection, rows)


def item_texts_of(
    connection: Connection, identities: Sequence[str], *, lock: bool = False
) -> tuple[StoredItemText, ...]:
    """The stored items with these identities, in id order, with their carriers;
    ``lock``: their rows locked until the transaction ends (PostgreSQL)."""
    rows: list[Any] = []
    for part in chunks(sorted(set(identities))):
        query = select(*_TEXT_COLUMNS).where(items.c.identity.in_(part)).order_by(items.c.id)
        # NO KEY UPDATE: polls inserting credits of these items (whose foreign keys take
        # KEY SHARE locks) go on; another decision about them waits.
        rows += connection.execute(query.with_for_update(key_share=True) if lock else query).all()
    return _texts(connection, sorted(rows, key=lambda row: row.id))


def _texts(connection: Connection, rows: Sequence[Any]) -> tuple[StoredItemText, ...]:
    carriers: dict[int, list[str]] = defaultdict(list)
    for part in chunks([row.id for row in rows]):
        credits = connection.execute(
            select(item_sources.c.item_id, sources.c.name)
            .join(sources, sources.c.id == item_sources.c.source_id)
            .where(item_sources.c.item_id.in_(part))
            .order_by(sources.c.name)
        )
        for credit in credits:
            carriers[credit.item_id].append(credit.name)
    return tuple(
        StoredItemText(
            item_id=row.id,
            title=row.title,
            summary_html=row.summary_html,
            content_html=row.content_html,
            categories=tuple(Category(**c) for c in row.categories),
            sources=tuple(carriers.get(row.id, ())),
        )
        for row in rows
    )


def replace_memberships(
    connection: Connection,
    item_ids: Sequence[int],
    memberships: Sequence[tuple[int, SeriesMembership]],
) -> None:
    """The series of these items become exactly ``memberships``."""
    for part in chunks(sorted(item_ids)):
        connection.execute(delete(item_series).where(item_series.c.item_id.in_(part)))
    write_memberships(connection, memberships)


def clear_memberships(connection: Connection) -> None:
    connection.execute(delete(item_series))


def write_memberships(
    connection: Connection, memberships: Sequence[tuple[int, SeriesMembership]]
) -> None:
    """Insert these memberships, or update their reason where they exist: a poll and a
    regroup (or two) may write the same rows at once."""
    rows = sorted(
        {(found.slug, item_id, found.reason, found.tagged) for item_id, found in memberships}
    )
    if not rows:
        return
    statement = upsert(connection, item_series)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["series_slug", "item_id"],
            set_={"reason": statement.excluded.reason, "tagged": statement.excluded.tagged},
        ),
        [
            {"series_slug": s, "item_id": i, "reason": reason, "tagged": tagged}
            for s, i, reason, tagged in rows
        ],
    )


def read_state(connection: Connection, key: str) -> str | None:
    value: str | None = connection.execute(
        select(state.c.value).where(state.c.key == key)
    ).scalar_one_or_none()
    return value


def write_state(connection: Connection, key: str, value: str) -> None:
    statement = upsert(connection, state).values(key=key, value=value)
    connection.execute(
        statement.on_conflict_do_update(index_elements=["key"], set_={"value": value})
    )


def tag_uses(connection: Connection, since: datetime) -> tuple[list[TagUse], dict[str, int]]:
    """Every tag of the items dated ``since`` or later, with the source that brought
    each item; and how many such items each source brought."""
    rows = connection.execute(
        select(items.c.id, items.c.categories, items.c.sort_at, sources.c.name)
        .join(sources, sources.c.id == items.c.origin_source_id)
        .where(items.c.sort_at >= since)
        .order_by(items.c.sort_at, items.c.id)  # the same suggestions on every backend
    )
    uses: list[TagUse] = []
    per_source: dict[str, int] = defaultdict(int)
    for row in rows:
        per_source[row.name] += 1
        day = row.sort_at.date()
        for category in row.categories:
            uses.append(
                TagUse(
                    item=row.id,
                    source=row.name,
                    term=category["term"],
                    domain=category.get("domain"),
                    day=day,
                )
            )
    return uses, dict(per_source)


def series_counts(connection: Connection, slug: str, story_share: float) -> SeriesCounts:
    """What a series holds, as its feed shows it (see ``entries.in_series``)."""
    selected = in_series([slug], story_share)
    row = connection.execute(
        select(
            func.count(items.c.id).label("items"),
            func.count(func.distinct(func.coalesce(items.c.story_id, -items.c.id))).label(
                "stories"
            ),
            func.min(items.c.sort_at).label("first"),
            func.max(items.c.sort_at).label("last"),
        ).where(selected)
    ).one()
    outlets = connection.execute(
        select(sources.c.name, func.count(func.distinct(items.c.id)).label("n"))
        .join(item_sources, item_sources.c.item_id == items.c.id)
        .join(sources, sources.c.id == item_sources.c.source_id)
        .where(selected)
        .group_by(sources.c.name)
        .order_by(func.count(func.distinct(items.c.id)).desc(), sources.c.name)
    )
    return SeriesCounts(
        items=row.items,
        stories=row.stories,
        outlets=tuple((o.name, o.n) for o in outlets),
        first_seen=row.first,
        last_seen=row.last,
    )
