"""The items aggregate: articles, the outlets that carried them, their series.

All writes for one poll happen in the caller's transaction, in batched statements:
a handful of queries per poll whatever the number of items, none per item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from aggregator.store.dialect import chunks, upsert
from aggregator.store.schema import item_series, item_sources, items
from aggregator.types import Item


def save_items(
    connection: Connection,
    *,
    source_id: int,
    batch: Sequence[Item],
    series: Mapping[str, tuple[str, ...]],
    now: datetime,
) -> int:
    """Store one poll's items for one source; return how many were new to that source.

    ``batch`` must have unique ``entry_key`` values; ``series`` maps entry keys to the
    series slugs the item belongs to.
    """
    if not batch:
        return 0
    known = _known_entries(connection, source_id, [item.entry_key for item in batch])
    new = [item for item in batch if item.entry_key not in known]
    changed = [
        (known[item.entry_key][0], item)
        for item in batch
        if item.entry_key in known
        and known[item.entry_key][1] == source_id
        and known[item.entry_key][2] != item.content_hash
    ]
    ids = _insert_items(connection, source_id, new, now) if new else {}
    inserted = _insert_credits(connection, source_id, new, ids, now) if new else []
    if changed:
        _update_items(connection, changed, now)
    memberships = [
        {"series_slug": slug, "item_id": ids[item.identity]}
        for item in new
        if item.entry_key in inserted
        for slug in series.get(item.entry_key, ())
    ] + [
        {"series_slug": slug, "item_id": item_id}
        for item_id, item in changed
        for slug in series.get(item.entry_key, ())
    ]
    if memberships:
        connection.execute(
            upsert(connection, item_series).on_conflict_do_nothing(
                index_elements=["series_slug", "item_id"]
            ),
            memberships,
        )
    return len(inserted)


def _known_entries(
    connection: Connection, source_id: int, keys: Sequence[str]
) -> dict[str, tuple[int, int, str]]:
    """entry_key -> (item id, origin source id, content hash) for this source's known keys."""
    known: dict[str, tuple[int, int, str]] = {}
    for part in chunks(keys):
        rows = connection.execute(
            select(
                item_sources.c.entry_key,
                items.c.id,
                items.c.origin_source_id,
                items.c.content_hash,
            )
            .join(items, items.c.id == item_sources.c.item_id)
            .where(item_sources.c.source_id == source_id)
            .where(item_sources.c.entry_key.in_(part))
        )
        for row in rows:
            known[row.entry_key] = (row.id, row.origin_source_id, row.content_hash)
    return known


def _item_values(item: Item) -> dict[str, Any]:
    return {
        "guid": item.guid,
        "link": item.link,
        "title": item.title,
        "content_html": item.content_html,
        "summary_html": item.summary_html,
        "published": item.published,
        "updated": item.updated,
        "authors": list(item.authors),
        "categories": [asdict(c) for c in item.categories],
        "enclosures": [asdict(e) for e in item.enclosures],
        "language": item.language,
        "content_hash": item.content_hash,
    }


def sort_time(item: Item, first_seen: datetime) -> datetime:
    """When the item sorts: its date, but never later than when we first saw it."""
    dated = item.published or item.updated
    return min(dated, first_seen) if dated else first_seen


def _insert_items(
    connection: Connection, source_id: int, new: Sequence[Item], now: datetime
) -> dict[str, int]:
    """Insert items not yet known under their identity; return identity -> id for all."""
    rows: dict[str, dict[str, Any]] = {}
    for item in new:
        rows.setdefault(
            item.identity,
            {
                "identity": item.identity,
                "origin_source_id": source_id,
                "first_seen": now,
                "sort_at": sort_time(item, now),
                "changed_at": now,
                **_item_values(item),
            },
        )
    # Feeds list newest first: the first entry of a document gets the highest id, so
    # undated items that share a first-seen time keep the document's order.
    identities = list(reversed(rows))
    statement = upsert(connection, items).on_conflict_do_nothing(index_elements=["identity"])
    for part in chunks(identities, 100):
        connection.execute(statement, [rows[identity] for identity in part])
    ids: dict[str, int] = {}
    for part in chunks(identities):
        for row in connection.execute(
            select(items.c.identity, items.c.id).where(items.c.identity.in_(part))
        ):
            ids[row.identity] = row.id
    return ids


def _insert_credits(
    connection: Connection,
    source_id: int,
    new: Sequence[Item],
    ids: Mapping[str, int],
    now: datetime,
) -> set[str]:
    """Credit this source for each new entry; return the entry keys actually inserted."""
    statement = (
        upsert(connection, item_sources)
        .on_conflict_do_nothing(index_elements=["source_id", "entry_key"])
        .returning(item_sources.c.entry_key, item_sources.c.item_id)
    )
    inserted: set[str] = set()
    credited_items: set[int] = set()
    for part in chunks(new, 100):
        result = connection.execute(
            statement,
            [
                {
                    "source_id": source_id,
                    "entry_key": item.entry_key,
                    "item_id": ids[item.identity],
                    "guid": item.guid,
                    "link": item.source_link,
                    "first_seen": now,
                }
                for item in part
            ],
        )
        for row in result:
            inserted.add(row.entry_key)
            credited_items.add(row.item_id)
    # An outlet joining an item another outlet brought changes how feeds show it.
    for ids_part in chunks(sorted(credited_items)):
        connection.execute(
            update(items)
            .where(items.c.id.in_(ids_part))
            .where(items.c.origin_source_id != source_id)
            .values(changed_at=now)
        )
    return inserted


def _update_items(
    connection: Connection, changed: Sequence[tuple[int, Item]], now: datetime
) -> None:
    """The origin outlet changed an item's text: keep identity, replace the content."""
    values = [
        {"b_id": item_id, "changed_at": now, **_item_values(item)} for item_id, item in changed
    ]
    statement = (
        update(items)
        .where(items.c.id == bindparam("b_id"))
        .values({column: bindparam(column) for column in values[0] if column != "b_id"})
    )
    connection.execute(statement, values)
