"""The items aggregate: articles, the outlets that carried them, their series.

All writes for one poll happen in the caller's transaction, in a fixed handful of
batched statements whatever the number of items; none per item. What to write is
decided first, by a pure function (``plan_writes``) over what the store already
holds; then the plan is executed.

Rows are always written in a sorted order (identities, keys, ids), so two polls
writing overlapping items take their locks in the same order and cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, exists, func, or_, select, update

from aggregator.store.dialect import chunks, upsert
from aggregator.store.retention import pruned_keys
from aggregator.store.schema import item_series, item_sources, items
from aggregator.store.series import write_memberships
from aggregator.types import Item, SeriesMembership, UnchangedEntry

# Undated items of one document sort in document order: each is stamped this much
# earlier than the one before it.
DOCUMENT_ORDER_STEP = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredItem:
    """What the store holds for an item, as far as planning a poll needs."""

    id: int
    identity: str
    origin_source_id: int
    content_hash: str
    link: str | None
    # Credits of it besides this entry's: other sources', or this source's other entries'
    # (one link under two guids): a rename would take it from them.
    other_credits: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSnapshot:
    """What the store knows about one poll's entries, read in two batched queries."""

    by_key: Mapping[str, StoredItem]  # this source's credits, by entry key
    by_identity: Mapping[str, StoredItem]  # every stored item with a batch identity
    keys_by_identity: Mapping[str, tuple[str, ...]]  # this source's keys per identity


@dataclass(slots=True, kw_only=True)
class WritePlan:
    new_items: list[tuple[int, Item]] = field(default_factory=list)  # (position, item)
    new_credits: list[Item] = field(default_factory=list)
    content_updates: list[tuple[int, Item]] = field(default_factory=list)  # (item id, item)
    renames: list[tuple[int, Item]] = field(default_factory=list)  # item moves to new identity
    credit_moves: list[Item] = field(default_factory=list)  # this source's credit -> identity
    rekeys: list[tuple[str, Item]] = field(default_factory=list)  # (old key, item)
    vacated: set[int] = field(default_factory=set)  # items that may have lost their last credit


def plan_writes(batch: Sequence[Item], snapshot: StoreSnapshot, source_id: int) -> WritePlan:
    """Decide one poll's writes. Pure: the same batch and snapshot give the same plan.

    - A new entry credits this source; its item is inserted when no outlet has it yet.
    - The first entry of the document for an identity speaks for the item's text, and
      only when this source brought the item (outlets never overwrite each other).
    - An entry whose link changed moves: the item is renamed when nobody else carries
      it and the new link is free; otherwise this source's credit moves to the item of
      the new link, and an item left without credits is removed.
    - An entry known by its identity under an older key (it gained a guid) is re-keyed,
      not stored again.
    """
    plan = WritePlan()
    batch_keys = {item.entry_key for item in batch}
    speaks: set[str] = set()
    planned_identities: set[str] = set()
    for position, item in enumerate(batch):
        first_for_identity = item.identity not in speaks
        speaks.add(item.identity)
        known = snapshot.by_key.get(item.entry_key)
        if known is not None and known.identity == item.identity:
            if (
                first_for_identity
                and known.origin_source_id == source_id
                and known.content_hash != item.content_hash
            ):
                plan.content_updates.append((known.id, item))
            continue
        target = snapshot.by_identity.get(item.identity)
        if known is not None:
            if (
                target is None
                and item.identity not in planned_identities
                and known.origin_source_id == source_id
                and known.other_credits == 0
            ):
                plan.renames.append((known.id, item))
            else:
                if target is None and item.identity not in planned_identities:
                    plan.new_items.append((position, item))
                plan.credit_moves.append(item)
                plan.vacated.add(known.id)
            planned_identities.add(item.identity)
            continue
        older_keys = [
            key for key in snapshot.keys_by_identity.get(item.identity, ()) if key not in batch_keys
        ]
        if older_keys:
            plan.rekeys.append((older_keys[0], item))
            continue
        if target is None and item.identity not in planned_identities:
            plan.new_items.append((position, item))
        planned_identities.add(item.identity)
        plan.new_credits.append(item)
    return plan


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedItems:
    new: int  # items new to the source
    touched: tuple[str, ...]  # identities of the items written: new, moved or changed
    listed: tuple[bytes, ...] = ()  # entry digests the store now holds as sent


def save_items(
    connection: Connection,
    *,
    source_id: int,
    batch: Sequence[Item],
    series: Mapping[str, tuple[SeriesMembership, ...]],
    now: datetime,
    unchanged: Sequence[UnchangedEntry] = (),
) -> SavedItems:
    """Store one poll's items for one source: how many were new to it, which items
    were written, and the digests of the entries the store now holds as sent.

    ``batch`` must have unique ``entry_key`` values, in document order; ``series`` maps
    entry keys to the series the item belongs to; ``unchanged``: the document's
    entries left out of the batch (``normalize_entries``).
    """
    saved, pruned = _save_items(
        connection, source_id=source_id, batch=batch, series=series, now=now
    )
    listed = _held_as_sent(connection, source_id, batch, pruned, unchanged, now)
    return replace(saved, listed=listed)


def _held_as_sent(
    connection: Connection,
    source_id: int,
    batch: Sequence[Item],
    pruned: set[str],
    unchanged: Sequence[UnchangedEntry],
    now: datetime,
) -> tuple[bytes, ...]:
    """The digests of the entries that saving them again would leave as they are, read
    back after the writes: a re-keyed credit, or one moved onto an item this source
    brought under another entry, leaves that item's text as it was (the next save
    writes it); an item may be renamed under another entry crediting it; retention may
    have pruned a left-out entry since its digest was read."""
    wanted: list[tuple[bytes, str, str, str | None]] = [
        (item.digest, item.entry_key, item.identity, item.content_hash)
        for item in batch
        if item.digest and item.entry_key not in pruned
    ]
    wanted += [(entry.digest, entry.entry_key, entry.identity, None) for entry in unchanged]
    if not wanted:
        return ()
    held: dict[str, Any] = {}
    for part in chunks(sorted(key for _, key, _, _ in wanted)):
        rows = connection.execute(
            select(
                item_sources.c.entry_key,
                items.c.identity,
                items.c.origin_source_id,
                items.c.content_hash,
            )
            .join(items, items.c.id == item_sources.c.item_id)
            .where(item_sources.c.source_id == source_id)
            .where(item_sources.c.entry_key.in_(part))
        )
        held.update((row.entry_key, row) for row in rows)
    gone = [entry.entry_key for entry in unchanged if entry.entry_key not in held]
    if gone:  # pruned meanwhile: marked as still listed, as a poll of them would
        pruned_keys(connection, source_id, gone, now)
    return tuple(
        digest
        for digest, key, identity, content_hash in wanted
        if (row := held.get(key)) is not None
        and row.identity == identity
        and (
            content_hash is None  # left out: its text is the one it had when listed
            or row.origin_source_id != source_id  # another outlet's text: not ours to write
            or row.content_hash == content_hash
        )
    )


def _save_items(
    connection: Connection,
    *,
    source_id: int,
    batch: Sequence[Item],
    series: Mapping[str, tuple[SeriesMembership, ...]],
    now: datetime,
) -> tuple[SavedItems, set[str]]:
    """``save_items``' writes; also the batch's keys retention pruned, left out."""
    if not batch:
        return SavedItems(new=0, touched=()), set()
    snapshot = _snapshot(connection, source_id, batch)
    # Only a key this source has no credit under can be one retention pruned (pruning
    # removes the credit): a poll of entries it knows asks nothing more.
    unknown = [item.entry_key for item in batch if item.entry_key not in snapshot.by_key]
    pruned = pruned_keys(connection, source_id, unknown, now) if unknown else set()
    if pruned:  # retention removed them: the feed lists them still
        batch = [item for item in batch if item.entry_key not in pruned]
        if not batch:
            return SavedItems(new=0, touched=()), pruned
        snapshot = _snapshot(connection, source_id, batch)
    plan = plan_writes(batch, snapshot, source_id)
    _rename_items(connection, plan.renames, now)
    ids = {identity: stored.id for identity, stored in snapshot.by_identity.items()}
    ids |= _insert_items(connection, source_id, plan.new_items, now)
    inserted = _insert_credits(connection, source_id, plan.new_credits, ids, now)
    _move_credits(connection, source_id, plan.credit_moves, ids, now)
    _rekey_credits(connection, source_id, plan.rekeys)
    _update_items(connection, plan.content_updates, now)
    _remove_vacated(connection, plan.vacated)
    final_ids = {
        **ids,
        **{item.identity: item_id for item_id, item in plan.renames},
        **{item.identity: item_id for item_id, item in plan.content_updates},
    }
    touched = [
        *(i for i in plan.new_credits if i.entry_key in inserted),
        *plan.credit_moves,
        *(item for _, item in plan.renames),
        *(item for _, item in plan.content_updates),
    ]
    _add_memberships(connection, touched, final_ids, series)
    return SavedItems(new=len(inserted), touched=tuple(item.identity for item in touched)), pruned


def _snapshot(connection: Connection, source_id: int, batch: Sequence[Item]) -> StoreSnapshot:
    mine = item_sources.alias("mine")
    others = (
        select(func.count())
        .where(item_sources.c.item_id == items.c.id)
        .where(
            or_(
                item_sources.c.source_id != source_id,
                item_sources.c.entry_key != mine.c.entry_key,
            )
        )
        .scalar_subquery()
        .label("other_credits")
    )
    columns = (
        items.c.id,
        items.c.identity,
        items.c.origin_source_id,
        items.c.content_hash,
        items.c.link,
        others,
    )
    by_key: dict[str, StoredItem] = {}
    for part in chunks(sorted(item.entry_key for item in batch)):
        rows = connection.execute(
            select(mine.c.entry_key, *columns)
            .join(items, items.c.id == mine.c.item_id)
            .where(mine.c.source_id == source_id)
            .where(mine.c.entry_key.in_(part))
        )
        for row in rows:
            by_key[row.entry_key] = _stored(row)
    by_identity: dict[str, StoredItem] = {}
    keys_by_identity: dict[str, list[str]] = {}
    for part in chunks(sorted({item.identity for item in batch})):
        rows = connection.execute(
            select(*columns, mine.c.entry_key)
            .outerjoin(mine, and_(mine.c.item_id == items.c.id, mine.c.source_id == source_id))
            .where(items.c.identity.in_(part))
        )
        for row in rows:
            by_identity[row.identity] = _stored(row)
            if row.entry_key is not None:
                keys_by_identity.setdefault(row.identity, []).append(row.entry_key)
    return StoreSnapshot(
        by_key=by_key,
        by_identity=by_identity,
        keys_by_identity={k: tuple(sorted(v)) for k, v in keys_by_identity.items()},
    )


def _stored(row: Any) -> StoredItem:
    return StoredItem(
        id=row.id,
        identity=row.identity,
        origin_source_id=row.origin_source_id,
        content_hash=row.content_hash,
        link=row.link,
        other_credits=row.other_credits,
    )


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
        "fingerprint": item.fingerprint or None,
        "lead": item.lead or None,
    }


def sort_time(item: Item, first_seen: datetime, position: int = 0) -> datetime:
    """When the item sorts: its date, but never later than when we first saw it.

    Items that sort at first-seen time keep their document's order (``position``).
    """
    latest = first_seen - position * DOCUMENT_ORDER_STEP
    dated = item.published or item.updated
    return min(dated, latest) if dated else latest


def _insert_items(
    connection: Connection, source_id: int, new: Sequence[tuple[int, Item]], now: datetime
) -> dict[str, int]:
    """Insert items no outlet had yet; return identity -> id for each of them."""
    if not new:
        return {}
    rows = sorted(
        (
            {
                "identity": item.identity,
                "origin_source_id": source_id,
                "first_seen": now,
                "sort_at": sort_time(item, now, position),
                "changed_at": now,
                **_item_values(item),
            }
            for position, item in new
        ),
        key=lambda row: str(row["identity"]),
    )
    statement = upsert(connection, items).on_conflict_do_nothing(index_elements=["identity"])
    for part in chunks(rows, 100):
        connection.execute(statement, list(part))
    return _item_ids(connection, {str(row["identity"]) for row in rows})


def _item_ids(connection: Connection, identities: set[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for part in chunks(sorted(identities)):
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
    if not new:
        return set()
    statement = (
        upsert(connection, item_sources)
        .on_conflict_do_nothing(index_elements=["source_id", "entry_key"])
        .returning(item_sources.c.entry_key, item_sources.c.item_id)
    )
    inserted: set[str] = set()
    credited_items: set[int] = set()
    for part in chunks(sorted(new, key=lambda item: item.entry_key), 100):
        result = connection.execute(
            statement, [_credit(source_id, item, ids, now) for item in part]
        )
        for row in result:
            inserted.add(row.entry_key)
            credited_items.add(row.item_id)
    _touch_items_of_others(connection, source_id, credited_items, now)
    return inserted


def _credit(source_id: int, item: Item, ids: Mapping[str, int], now: datetime) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "entry_key": item.entry_key,
        "item_id": ids[item.identity],
        "guid": item.guid,
        "link": item.source_link,
        "first_seen": now,
    }


def _touch_items_of_others(
    connection: Connection, source_id: int, item_ids: set[int], now: datetime
) -> None:
    """An outlet joining an item another outlet brought changes how feeds show it."""
    for part in chunks(sorted(item_ids)):
        connection.execute(
            update(items)
            .where(items.c.id.in_(part))
            .where(items.c.origin_source_id != source_id)
            .values(changed_at=now)
        )


def _move_credits(
    connection: Connection,
    source_id: int,
    moves: Sequence[Item],
    ids: Mapping[str, int],
    now: datetime,
) -> None:
    if not moves:
        return
    connection.execute(
        update(item_sources)
        .where(item_sources.c.source_id == source_id)
        .where(item_sources.c.entry_key == bindparam("b_key"))
        .values(item_id=bindparam("b_item"), link=bindparam("b_link"), guid=bindparam("b_guid")),
        [
            {
                "b_key": item.entry_key,
                "b_item": ids[item.identity],
                "b_link": item.source_link,
                "b_guid": item.guid,
            }
            for item in sorted(moves, key=lambda item: item.entry_key)
        ],
    )
    _touch_items_of_others(connection, source_id, {ids[item.identity] for item in moves}, now)


def _rekey_credits(
    connection: Connection, source_id: int, rekeys: Sequence[tuple[str, Item]]
) -> None:
    if not rekeys:
        return
    connection.execute(
        update(item_sources)
        .where(item_sources.c.source_id == source_id)
        .where(item_sources.c.entry_key == bindparam("b_old"))
        .values(entry_key=bindparam("b_new"), guid=bindparam("b_guid")),
        [
            {"b_old": old, "b_new": item.entry_key, "b_guid": item.guid}
            for old, item in sorted(rekeys, key=lambda pair: pair[0])
        ],
    )


def _rename_items(
    connection: Connection, renames: Sequence[tuple[int, Item]], now: datetime
) -> None:
    """The origin outlet moved an article to a new link nobody else has: follow it."""
    if not renames:
        return
    values = [
        {"b_id": item_id, "identity": item.identity, "changed_at": now, **_item_values(item)}
        for item_id, item in sorted(renames)
    ]
    connection.execute(_update_by_id(values[0]), values)
    connection.execute(
        update(item_sources)
        .where(item_sources.c.item_id == bindparam("b_id"))
        .where(item_sources.c.entry_key == bindparam("b_key"))
        .values(link=bindparam("b_link")),
        [
            {"b_id": item_id, "b_key": item.entry_key, "b_link": item.source_link}
            for item_id, item in sorted(renames)
        ],
    )


def _update_items(
    connection: Connection, changed: Sequence[tuple[int, Item]], now: datetime
) -> None:
    """The origin outlet changed an item's text: keep identity, replace the content."""
    if not changed:
        return
    values = [
        {"b_id": item_id, "changed_at": now, **_item_values(item)}
        for item_id, item in sorted(changed)
    ]
    connection.execute(_update_by_id(values[0]), values)


def _update_by_id(example: Mapping[str, Any]) -> Any:
    return (
        update(items)
        .where(items.c.id == bindparam("b_id"))
        .values({column: bindparam(column) for column in example if column != "b_id"})
    )


def _remove_vacated(connection: Connection, item_ids: set[int]) -> None:
    """Drop items that no outlet carries any more (their credits all moved away)."""
    orphan = ~exists().where(item_sources.c.item_id == items.c.id)
    for part in chunks(sorted(item_ids)):
        orphans = select(items.c.id).where(items.c.id.in_(part)).where(orphan)
        connection.execute(delete(item_series).where(item_series.c.item_id.in_(orphans)))
        connection.execute(delete(items).where(items.c.id.in_(part)).where(orphan))


def _add_memberships(
    connection: Connection,
    touched: Sequence[Item],
    ids: Mapping[str, int],
    series: Mapping[str, tuple[SeriesMembership, ...]],
) -> None:
    write_memberships(
        connection,
        [
            (ids[item.identity], found)
            for item in touched
            if item.identity in ids
            for found in series.get(item.entry_key, ())
        ],
    )
