"""Reading items back as merged-feed entries, with every outlet credited."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, exists, func, or_, select, tuple_, union

from aggregator.store.dialect import any_of, id_chunks, not_a_key
from aggregator.store.schema import item_series, item_sources, items, sources
from aggregator.types import (
    SERIES_STORY_SHARE,
    Category,
    Credit,
    Enclosure,
    PublishedEntry,
    Report,
    SeriesMembership,
    StorySeries,
)


def feed_entries(
    connection: Connection,
    *,
    source_filters: Sequence[Sequence[str]] = (),
    series_slugs: Sequence[str] | None,
    limit: int,
    offset: int = 0,
    story_share: float = SERIES_STORY_SHARE,
) -> tuple[PublishedEntry, ...]:
    """One entry per article, newest first: an item and the near-duplicates that repeat
    its text under other links (wire copy), crediting every outlet. Each source filter
    requires a credit from one of its sources; ``series_slugs`` None: no series filter."""
    return _grouped_entries(
        connection, _BY_ARTICLE, source_filters, series_slugs, limit, offset, story_share
    )


def story_entries(
    connection: Connection,
    *,
    source_filters: Sequence[Sequence[str]] = (),
    series_slugs: Sequence[str] | None,
    limit: int,
    offset: int = 0,
    story_share: float = SERIES_STORY_SHARE,
) -> tuple[PublishedEntry, ...]:
    """One entry per story among the items the filters select, newest story first (by
    its latest such item). An item without a story stands alone."""
    return _grouped_entries(
        connection, _BY_STORY, source_filters, series_slugs, limit, offset, story_share
    )


@dataclass(frozen=True, slots=True)
class _Grouping:
    """How items make entries: ``key``, the SQL of an item's group; ``members``, the
    SQL selecting the items of some groups (through indexes: an IN over ``key`` itself
    would read every item)."""

    key: Any
    members: Callable[[Connection, Sequence[int]], Any]
    # The stories some groups' items can be in (None: any): a page's series test of
    # its groups' items looks at those stories alone, not at every story of the series.
    stories: Callable[[Sequence[int]], list[int]] | None = None


# An article and the near-duplicates that repeat its text (wire copy).
_BY_ARTICLE = _Grouping(
    key=func.coalesce(items.c.duplicate_of, items.c.id),
    members=lambda connection, keys: or_(
        any_of(connection, items.c.id, keys), any_of(connection, items.c.duplicate_of, keys)
    ),
)


def _story_keys(keys: Sequence[int]) -> list[int]:
    """The stories among ``_BY_STORY``'s group keys (an item alone is its id, negated)."""
    return [k for k in keys if k > 0]


# A story's reports; an item without a story alone (story ids are positive).
_BY_STORY = _Grouping(
    key=func.coalesce(items.c.story_id, -items.c.id),
    members=lambda connection, keys: or_(
        any_of(connection, items.c.story_id, _story_keys(keys)),
        and_(
            items.c.story_id.is_(None),
            any_of(connection, items.c.id, [-k for k in keys if k < 0]),
        ),
    ),
    stories=_story_keys,
)
# What an entry shows of a report that is not its lead.
_REPORT_COLUMNS = (
    items.c.id,
    items.c.title,
    items.c.link,
    items.c.sort_at,
    items.c.changed_at,
    items.c.story_id,
)


class _Report(NamedTuple):
    """A row of ``_REPORT_COLUMNS``. A page reads some 800 and looks at each several
    times: a named tuple's fields are read in a tenth of the time of a Row's."""

    id: int
    title: str
    link: str | None
    sort_at: datetime
    changed_at: datetime
    story_id: int | None


def _grouped_entries(
    connection: Connection,
    grouping: _Grouping,
    source_filters: Sequence[Sequence[str]],
    series_slugs: Sequence[str] | None,
    limit: int,
    offset: int,
    story_share: float,
) -> tuple[PublishedEntry, ...]:
    """One entry per group among the selected items, newest group first (by its latest
    item): the group's earliest report, crediting every outlet and listing every
    report."""
    filters = _Filters(
        connection, _source_ids(connection, source_filters), series_slugs, story_share
    )
    order = _newest_groups(connection, grouping, filters, limit, offset)
    members: dict[int, list[_Report]] = defaultdict(list)
    for part in id_chunks(connection, order):
        query = select(*_REPORT_COLUMNS, grouping.key.label("entry_group"))
        query = query.where(grouping.members(connection, part))
        stories = grouping.stories(part) if grouping.stories is not None else None
        query = filters.applied(query, among_stories=stories)
        for *report, group in connection.execute(query):
            members[group].append(_Report(*report))
    for group_rows in members.values():
        group_rows.sort(key=lambda row: (row.sort_at, row.id))  # the lead first
    # Only the leads are read whole: the other reports show a title and a link, and
    # their text (and JSON columns) would be most of what a page reads.
    leads = _items_by_id(connection, [rows[0].id for rows in members.values()])
    rows = [row for group_rows in members.values() for row in group_rows]
    credits = _credits(connection, [row.id for row in rows])
    # Unfiltered, a story's rows are all of its items: their own memberships tell its series.
    whole = grouping.stories is not None and filters.selects_everything
    series = _series(connection, rows, story_share, whole_stories=whole)
    return tuple(
        _story_entry(members[key], leads[members[key][0].id], credits, series)
        for key in order
        if members[key]
    )


def _items_by_id(connection: Connection, ids: Sequence[int]) -> dict[int, Any]:
    found = {}
    for part in id_chunks(connection, ids):
        query = select(items).where(any_of(connection, items.c.id, part))
        for row in connection.execute(query).all():
            found[row.id] = row
    return found


def _newest_groups(
    connection: Connection,
    grouping: _Grouping,
    filters: _Filters,
    limit: int,
    offset: int,
) -> list[int]:
    """The groups of one page, newest first. The selected items are read newest first
    down the (sort_at, id) index, a batch at a time, and a group takes its place at its
    newest item, until the page is full: a page costs the items it shows (and those of
    the pages before it), not a GROUP BY over every stored item."""
    wanted = offset + limit
    batch = max(2 * wanted, 100)
    found: dict[int, None] = {}
    after: tuple[datetime, int] | None = None
    while len(found) < wanted:
        query = select(items.c.id, items.c.sort_at, grouping.key.label("entry_group"))
        if after is not None:
            query = query.where(tuple_(items.c.sort_at, items.c.id) < tuple_(*after))
        query = query.order_by(items.c.sort_at.desc(), items.c.id.desc()).limit(batch)
        rows = connection.execute(filters.applied(query)).all()
        for row in rows:
            found.setdefault(row.entry_group)
        if len(rows) < batch:
            break
        after = (rows[-1].sort_at, rows[-1].id)
    return list(found)[offset:wanted]


def outlet_entries(
    connection: Connection,
    *,
    source_filters: Sequence[Sequence[str]] = (),
    series_slugs: Sequence[str] | None,
    limit: int,
    offset: int = 0,
    story_share: float = SERIES_STORY_SHARE,
) -> tuple[PublishedEntry, ...]:
    """One entry per outlet's copy of each selected item, newest first, each crediting
    only its outlet and linking to its copy. Outlets must satisfy every source filter."""
    outlet_name = sources.c.name.label("outlet_name")
    # One row per (item, outlet): an outlet that lists an article under two entries
    # carries one copy of it, and pages (offsets) need an order without ties.
    copies = select(item_sources.c.item_id, item_sources.c.source_id).distinct().subquery()
    query = (
        select(items, outlet_name)
        .join(copies, copies.c.item_id == items.c.id)
        .join(sources, sources.c.id == copies.c.source_id)
        .order_by(items.c.sort_at.desc(), items.c.id.desc(), sources.c.name)
    )
    for names in source_filters:
        query = query.where(sources.c.name.in_(list(names)))
    filtered = _Filters(connection, (), series_slugs, story_share).applied(query)
    rows = connection.execute(filtered.limit(limit).offset(offset)).all()
    credits = _credits(connection, sorted({row.id for row in rows}))
    series = _series(connection, rows, story_share)
    entries = []
    for row in rows:
        outlet = row.outlet_name
        own = tuple(c for c in credits.get(row.id, ()) if c.source == outlet)
        entry = _entry(row, own, series.get(row.id, ()))
        link = own[0].link if own and own[0].link else entry.link
        entries.append(replace(entry, outlet=outlet, link=link))
    return tuple(entries)


def _source_ids(
    connection: Connection, source_filters: Sequence[Sequence[str]]
) -> tuple[list[int], ...]:
    """Each filter's source names as ids (a name the store does not know matches
    nothing). Read first: a page tests every item it walks against them, and a join
    to ``sources`` in that test cost a third of walking a 100-outlet feed."""
    return tuple(
        list(connection.scalars(select(sources.c.id).where(sources.c.name.in_(list(names)))))
        for names in source_filters
    )


@dataclass(frozen=True, slots=True)
class _Filters:
    """What a feed selects: items credited to one of each tuple's sources, and in one of
    ``series`` (None: any item)."""

    connection: Connection
    source_ids: Sequence[Sequence[int]]
    series: Sequence[str] | None
    story_share: float  # see in_series

    def applied(self, query: Any, *, among_stories: Sequence[int] | None = None) -> Any:
        """``query`` with these filters; ``among_stories``: the only stories the query's
        items can be in, when known (the series test then reads no other story)."""
        source = not_a_key(self.connection, item_sources.c.source_id)
        for ids in self.source_ids:
            query = query.where(
                exists()
                .where(item_sources.c.item_id == items.c.id)
                .where(any_of(self.connection, source, ids))
            )
        if self.series is not None:
            among = self._story_among(among_stories) if among_stories is not None else None
            query = query.where(_in_series_by_row(list(self.series), self.story_share, among))
        return query

    @property
    def selects_everything(self) -> bool:
        return not self.source_ids and self.series is None

    def _story_among(self, stories: Sequence[int]) -> Callable[[Any], Any]:
        return lambda story_id: any_of(self.connection, story_id, stories)


def _in_series_by_row(
    slugs: Sequence[str], story_share: float, among: Callable[[Any], Any] | None = None
) -> Any:
    """``in_series`` as a test of each row a page walks: its own membership, or its
    story's, each a set computed once (an IN over a union of ids would join every
    item of those stories first); ``among``: a test of a story id that the stories
    worth computing pass."""
    return or_(
        items.c.id.in_(_series_members(slugs)),
        items.c.story_id.in_(_series_stories(slugs, story_share, among)),
    )


def _series_members(slugs: Sequence[str]) -> Any:
    return select(item_series.c.item_id).where(item_series.c.series_slug.in_(slugs))


def _series_stories(
    slugs: Sequence[str], story_share: float, among: Callable[[Any], Any] | None = None
) -> Any:
    """Stories in these series: one a member an outlet tagged is in, or at least
    ``story_share`` of whose items are members of one of them (of those passing
    ``among``, a test of the story id, when given)."""
    member = items.alias("member")
    every = items.alias("every")
    size = select(func.count()).where(every.c.story_id == member.c.story_id).scalar_subquery()
    members = (
        select(member.c.story_id)
        .join(item_series, item_series.c.item_id == member.c.id)
        .where(item_series.c.series_slug.in_(slugs))
        .where(member.c.story_id.is_not(None))
    )
    if among is not None:
        members = members.where(among(member.c.story_id))
    tagged = members.where(item_series.c.tagged)
    shared = members.group_by(member.c.story_id, item_series.c.series_slug).having(
        func.count(func.distinct(member.c.id)) >= story_share * size
    )
    return union(tagged, shared)


def in_series(slugs: Sequence[str], story_share: float = SERIES_STORY_SHARE) -> Any:
    """Items of these series: members, and every item of a story that a member an
    outlet tagged is in (an outlet that never tags joins the series through the story it
    shares with one that does), or at least ``story_share`` of whose items are members
    of one of the series. One IN over a union: an OR of the three made PostgreSQL scan
    every item."""
    reported = items.alias("reported")
    via_story = select(reported.c.id).where(
        reported.c.story_id.in_(_series_stories(slugs, story_share))
    )
    return items.c.id.in_(union(_series_members(slugs), via_story))


def _story_entry(
    rows: list[_Report],
    lead: Any,
    credits: dict[int, tuple[Credit, ...]],
    series: dict[int, tuple[StorySeries, ...]],
) -> PublishedEntry:
    """The entry of a group's reports (``rows``, oldest first), led by the earliest:
    ``lead``, the whole row of ``rows[0]``."""
    if len(rows) == 1:
        return _entry(lead, credits.get(lead.id, ()), series.get(lead.id, ()))
    outlets: dict[str, Credit] = {}  # each outlet's first credit, in order
    reports: list[Report] = []
    why: dict[str, StorySeries] = {}
    updated = lead.changed_at
    for row in rows:  # oldest first: the story's own reasons are every member's
        updated = max(updated, row.changed_at, row.sort_at)
        for credit in credits.get(row.id, ()):
            outlets.setdefault(credit.source, credit)
            reports.append(
                Report(
                    title=row.title,
                    link=credit.link or row.link,
                    source=credit.source,
                    source_title=credit.source_title,
                    published=row.sort_at,
                )
            )
        for found in series.get(row.id, ()):
            why.setdefault(found.slug, found)
    return _entry(
        lead,
        tuple(outlets.values()),
        tuple(why[slug] for slug in sorted(why)),
        updated=updated,
        reports=tuple(reports),
    )


def entries_of(
    connection: Connection,
    rows: Sequence[Any],
    story_share: float = SERIES_STORY_SHARE,
    by_story: dict[int, dict[str, StorySeries]] | None = None,
) -> list[PublishedEntry]:
    """Item rows as entries, in the rows' order, with their credits and series
    (``by_story``: their stories' series, when the caller has read them)."""
    credits = _credits(connection, [row.id for row in rows])
    series = _series(connection, rows, story_share, by_story)
    return [_entry(row, credits.get(row.id, ()), series.get(row.id, ())) for row in rows]


def _credits(connection: Connection, ids: Sequence[int]) -> dict[int, tuple[Credit, ...]]:
    """Each item's outlets, first credited first; a page reads hundreds."""
    found: dict[int, dict[str, Credit]] = defaultdict(dict)
    for part in id_chunks(connection, ids):
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
            .where(any_of(connection, item_sources.c.item_id, part))
            .order_by(item_sources.c.first_seen, sources.c.name)
        ).all()
        for item_id, guid, link, first_seen, name, title in rows:
            by_outlet = found[item_id]
            if name not in by_outlet:  # an outlet listing it under two entries: once
                by_outlet[name] = Credit(
                    source=name, source_title=title, link=link, guid=guid, first_seen=first_seen
                )
    return {item_id: tuple(by_outlet.values()) for item_id, by_outlet in found.items()}


def _series(
    connection: Connection,
    rows: Sequence[Any],
    story_share: float,
    by_story: dict[int, dict[str, StorySeries]] | None = None,
    *,
    whole_stories: bool = False,
) -> dict[int, tuple[StorySeries, ...]]:
    """The series of each item row, with why: its story's (see ``in_series``), each
    through the report that brought the story in, and its own. ``by_story``: the
    stories' series when the caller has them already; ``whole_stories``: ``rows``
    hold every item of their stories, whose memberships are then read with the rows'
    own (by id, not joined through the stories again)."""
    found: dict[int, dict[str, StorySeries]] = defaultdict(dict)
    story_of = {row.id: row.story_id for row in rows if row.story_id is not None}
    if by_story is not None:
        own = memberships_of(connection, [row.id for row in rows])
    elif whole_stories:
        # Every item's own memberships, read once, are also its story's.
        own = memberships_of(connection, [row.id for row in rows])
        sort_at = {row.id: row.sort_at for row in rows}
        matched = [
            _Membership(story_of[item_id], item_id, sort_at[item_id], m.slug, m.reason, m.tagged)
            for item_id, memberships in own.items()
            if item_id in story_of
            for m in memberships
        ]
        by_story = _stories_series(connection, matched, story_share, Counter(story_of.values()))
    else:
        # The memberships of every item of these stories come with their series: only
        # the items without a story are read for their own.
        matched = _story_memberships(connection, sorted(set(story_of.values())))
        by_story = _stories_series(connection, matched, story_share)
        own = memberships_of(connection, [row.id for row in rows if row.story_id is None])
        for row in matched:
            if row.id in story_of:
                own[row.id].append(
                    SeriesMembership(slug=row.series_slug, reason=row.reason, tagged=row.tagged)
                )
        own = memberships_of(connection, [row.id for row in rows])
    for item_id, story_id in story_of.items():
        found[item_id].update(by_story.get(story_id, {}))
    for item_id, memberships in own.items():
        for membership in memberships:
            found[item_id].setdefault(
                membership.slug,
                StorySeries(slug=membership.slug, reason=membership.reason, item_id=item_id),
            )
    return {
        item_id: tuple(why[slug] for slug in sorted(why)) for item_id, why in found.items() if why
    }


def story_series_why(
    connection: Connection, story_ids: Sequence[int], story_share: float
) -> dict[int, dict[str, StorySeries]]:
    """The series each story belongs to: those an outlet tagged one of its items for,
    and those at least ``story_share`` of its items are in; each with the member that
    brought the story in, the earliest an outlet tagged, else the earliest that matched."""
    return _stories_series(connection, _story_memberships(connection, story_ids), story_share)


class _Membership(NamedTuple):
    """A series membership of an item in a story, with what the series test of its
    story reads of the item."""

    story_id: int
    id: int
    sort_at: datetime
    series_slug: str
    reason: str
    tagged: bool


def _story_memberships(connection: Connection, story_ids: Sequence[int]) -> list[_Membership]:
    """The series memberships of every item of these stories, with the item's story."""
    found: list[_Membership] = []
    for part in id_chunks(connection, story_ids):
        found += map(
            _Membership._make,
            connection.execute(
                select(
                    items.c.story_id,
                    items.c.id,
                    items.c.sort_at,
                    item_series.c.series_slug,
                    item_series.c.reason,
                    item_series.c.tagged,
                )
                .join(item_series, item_series.c.item_id == items.c.id)
                .where(any_of(connection, items.c.story_id, part))
            ),
        )
    return found


def _stories_series(
    connection: Connection,
    matched: Sequence[_Membership],
    story_share: float,
    sizes: Mapping[int, int] | None = None,
) -> dict[int, dict[str, StorySeries]]:
    """``sizes``: each story's items, when the caller has counted them."""
    matches: dict[tuple[int, str], list[_Membership]] = defaultdict(list)
    for row in matched:
        matches[(row.story_id, row.series_slug)].append(row)
    if sizes is None:
        sizes = _story_sizes(connection, matches)
    belongs: dict[int, dict[str, StorySeries]] = defaultdict(dict)
    for (story_id, slug), rows in matches.items():
        if _tagged(rows) or len(rows) >= story_share * sizes.get(story_id, len(rows)):
            first = min(rows, key=lambda row: (not row.tagged, row.sort_at, row.id))
            belongs[story_id][slug] = StorySeries(slug=slug, reason=first.reason, item_id=first.id)
    return belongs


def _story_sizes(
    connection: Connection, matches: Mapping[tuple[int, str], Sequence[_Membership]]
) -> dict[int, int]:
    sizes: dict[int, int] = {}
    # Sizes only where a share decides: most pages' stories are in no series at all.
    shared = sorted({story for (story, _), rows in matches.items() if not _tagged(rows)})
    for part in id_chunks(connection, shared):
        sized = connection.execute(
            select(items.c.story_id, func.count().label("n"))
            .where(any_of(connection, items.c.story_id, part))
            .group_by(items.c.story_id)
        )
        sizes.update({row.story_id: row.n for row in sized})
    return sizes


def _tagged(rows: Sequence[_Membership]) -> bool:
    return any(row.tagged for row in rows)


def _entry(
    row: Any,
    credits: tuple[Credit, ...],
    why: tuple[StorySeries, ...],
    *,
    updated: datetime | None = None,
    reports: tuple[Report, ...] = (),
) -> PublishedEntry:
    """An item row as an entry; ``updated`` and ``reports``: a story entry's, when the
    row leads one (``updated``: its latest report's change, else the row's own)."""
    if updated is None:
        updated = row.changed_at
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
        series=tuple(found.slug for found in why),
        why=why,
        story=row.story_id,
        reports=reports,
    )


def memberships_of(
    connection: Connection, item_ids: Sequence[int]
) -> dict[int, list[SeriesMembership]]:
    """Each item's own memberships."""
    found: dict[int, list[SeriesMembership]] = defaultdict(list)
    for part in id_chunks(connection, sorted(item_ids)):
        rows = connection.execute(
            select(
                item_series.c.item_id,
                item_series.c.series_slug,
                item_series.c.reason,
                item_series.c.tagged,
            )
            .where(any_of(connection, item_series.c.item_id, part))
            .order_by(item_series.c.series_slug)
        )
        for row in rows:
            found[row.item_id].append(
                SeriesMembership(slug=row.series_slug, reason=row.reason, tagged=row.tagged)
            )
    return found
