"""Reading items back as merged-feed entries, with every outlet credited."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, func, or_, select

from aggregator.store.dialect import chunks
from aggregator.store.schema import item_series, item_sources, items, sources
from aggregator.types import Category, Credit, Enclosure, PublishedEntry, Report


def feed_entries(
    connection: Connection,
    *,
    source_filters: Sequence[Sequence[str]] = (),
    series_slugs: Sequence[str] | None,
    limit: int,
) -> tuple[PublishedEntry, ...]:
    """One entry per article, newest first: an item and the near-duplicates that repeat
    its text under other links (wire copy), crediting every outlet. Each source filter
    requires a credit from one of its sources; ``series_slugs`` None: no series filter."""
    group = func.coalesce(items.c.duplicate_of, items.c.id)
    return _grouped_entries(connection, group, source_filters, series_slugs, limit)


def story_entries(
    connection: Connection,
    *,
    source_filters: Sequence[Sequence[str]] = (),
    series_slugs: Sequence[str] | None,
    limit: int,
) -> tuple[PublishedEntry, ...]:
    """One entry per story among the items the filters select, newest story first (by
    its latest such item). An item without a story stands alone."""
    group = func.coalesce(items.c.story_id, -items.c.id)  # story ids are positive
    return _grouped_entries(connection, group, source_filters, series_slugs, limit)


def _grouped_entries(
    connection: Connection,
    group: Any,
    source_filters: Sequence[Sequence[str]],
    series_slugs: Sequence[str] | None,
    limit: int,
) -> tuple[PublishedEntry, ...]:
    """One entry per ``group`` value among the selected items, newest group first (by its
    latest item): the group's earliest report, crediting every outlet and listing
    every report."""
    latest = func.max(items.c.sort_at)
    groups_query = (
        select(group.label("entry_group"), latest.label("latest"))
        .group_by(group)
        .order_by(latest.desc(), group.desc())
        .limit(limit)
    )
    groups = connection.execute(_filtered(groups_query, source_filters, series_slugs)).all()
    order = [row.entry_group for row in groups]
    members: dict[int, list[Any]] = defaultdict(list)
    for part in chunks(order):
        query = select(items, group.label("entry_group")).where(group.in_(part))
        for row in connection.execute(_filtered(query, source_filters, series_slugs)):
            members[row.entry_group].append(row)
    ids = [row.id for rows in members.values() for row in rows]
    credits = _credits(connection, ids)
    series = _series(connection, ids)
    return tuple(_story_entry(members[key], credits, series) for key in order if members[key])


def outlet_entries(
    connection: Connection,
    *,
    source_filters: Sequence[Sequence[str]] = (),
    series_slugs: Sequence[str] | None,
    limit: int,
) -> tuple[PublishedEntry, ...]:
    """One entry per outlet's copy of each selected item, newest first, each crediting
    only its outlet and linking to its copy. Outlets must satisfy every source filter."""
    outlet_name = sources.c.name.label("outlet_name")
    query = (
        select(items, outlet_name)
        .join(item_sources, item_sources.c.item_id == items.c.id)
        .join(sources, sources.c.id == item_sources.c.source_id)
        .order_by(items.c.sort_at.desc(), items.c.id.desc(), sources.c.name)
    )
    for names in source_filters:
        query = query.where(sources.c.name.in_(list(names)))
    rows = connection.execute(_filtered(query, (), series_slugs).limit(limit)).all()
    ids = sorted({row.id for row in rows})
    credits = _credits(connection, ids)
    series = _series(connection, ids)
    entries = []
    for row in rows:
        outlet = row.outlet_name
        own = tuple(c for c in credits.get(row.id, ()) if c.source == outlet)
        entry = _entry(row, own, series.get(row.id, ()))
        link = own[0].link if own and own[0].link else entry.link
        entries.append(replace(entry, outlet=outlet, link=link))
    return tuple(entries)


def _filtered(query: Any, source_filters: Sequence[Sequence[str]], series: Any) -> Any:
    for names in source_filters:
        query = query.where(
            exists()
            .where(item_sources.c.item_id == items.c.id)
            .where(item_sources.c.source_id == sources.c.id)
            .where(sources.c.name.in_(list(names)))
        )
    if series is not None:
        query = query.where(in_series(list(series)))
    return query


def in_series(slugs: Sequence[str]) -> Any:
    """Items of these series: members, and every item of a story a member is in (an
    outlet that never tags joins the series through the story it shares)."""
    members = select(item_series.c.item_id).where(item_series.c.series_slug.in_(slugs))
    member = items.alias("member")
    stories = (
        select(member.c.story_id)
        .where(member.c.id.in_(members))
        .where(member.c.story_id.is_not(None))
    )
    return or_(items.c.id.in_(members), items.c.story_id.in_(stories))


def _story_entry(
    rows: list[Any],
    credits: dict[int, tuple[Credit, ...]],
    series: dict[int, tuple[str, ...]],
) -> PublishedEntry:
    rows = sorted(rows, key=lambda row: (row.sort_at, row.id))
    lead = rows[0]
    entry = _entry(lead, credits.get(lead.id, ()), series.get(lead.id, ()))
    if len(rows) == 1:
        return entry
    outlets: list[Credit] = []
    reports: list[Report] = []
    for row in rows:
        for credit in credits.get(row.id, ()):
            if all(credit.source != known.source for known in outlets):
                outlets.append(credit)
            reports.append(
                Report(
                    title=row.title,
                    link=credit.link or row.link,
                    source=credit.source,
                    source_title=credit.source_title,
                    published=row.sort_at,
                )
            )
    slugs = sorted({slug for row in rows for slug in series.get(row.id, ())})
    return replace(
        entry,
        updated=max(max(row.changed_at, row.sort_at) for row in rows),
        credits=tuple(outlets),
        series=tuple(slugs),
        reports=tuple(reports),
    )


def entries_of(connection: Connection, rows: Sequence[Any]) -> list[PublishedEntry]:
    """Item rows as entries, in the rows' order, with their credits and series."""
    ids = [row.id for row in rows]
    credits = _credits(connection, ids)
    series = _series(connection, ids)
    return [_entry(row, credits.get(row.id, ()), series.get(row.id, ())) for row in rows]


def _credits(connection: Connection, ids: Sequence[int]) -> dict[int, tuple[Credit, ...]]:
    found: dict[int, list[Credit]] = defaultdict(list)
    for part in chunks(ids):
        rows = connection.execute(
            select(
                item_sources.c.item_id,
                item_sources.c.guid,
                item_sources.c.link,
                item_sources.c.first_seen,
                sources.c.name,
                sources.c.title,
            )
            .join(sources, sources.c.id == item_sources.c.source_id)
            .where(item_sources.c.item_id.in_(part))
            .order_by(item_sources.c.first_seen, sources.c.name)
        )
        for row in rows:
            found[row.item_id].append(
                Credit(
                    source=row.name,
                    source_title=row.title,
                    link=row.link,
                    guid=row.guid,
                    first_seen=row.first_seen,
                )
            )
    return {item_id: tuple(_one_per_outlet(c)) for item_id, c in found.items()}


def _one_per_outlet(credits: list[Credit]) -> list[Credit]:
    """An outlet listing the same article under two entries is credited once."""
    seen: set[str] = set()
    kept = []
    for credit in credits:
        if credit.source not in seen:
            seen.add(credit.source)
            kept.append(credit)
    return kept


def _series(connection: Connection, ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    """The series of each item: its own, and those of every item of its story."""
    found: dict[int, set[str]] = defaultdict(set)
    member = items.alias("member")
    for part in chunks(ids):
        own = select(item_series.c.item_id, item_series.c.series_slug).where(
            item_series.c.item_id.in_(part)
        )
        through_story = (
            select(items.c.id.label("item_id"), item_series.c.series_slug)
            .join(member, member.c.story_id == items.c.story_id)
            .join(item_series, item_series.c.item_id == member.c.id)
            .where(items.c.id.in_(part))
        )
        for row in connection.execute(own.union(through_story)):
            found[row.item_id].add(row.series_slug)
    return {item_id: tuple(sorted(slugs)) for item_id, slugs in found.items()}


def _entry(row: Any, credits: tuple[Credit, ...], series: tuple[str, ...]) -> PublishedEntry:
    updated: datetime = row.changed_at
    return PublishedEntry(
        id=row.id,
        identity=row.identity,
        link=row.link,
        title=row.title,
        content_html=row.content_html,
        summary_html=row.summary_html,
        published=row.sort_at,
        updated=max(updated, row.sort_at),
        authors=tuple(row.authors),
        categories=tuple(Category(**c) for c in row.categories),
        enclosures=tuple(Enclosure(**e) for e in row.enclosures),
        language=row.language,
        credits=credits,
        series=series,
    )
