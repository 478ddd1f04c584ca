"""The sources aggregate: configured outlets and their polling state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, case, func, select, text, update

from aggregator.process.urls import host_of
from aggregator.store.dialect import ADVISORY_KEYS, upsert, write_first
from aggregator.store.schema import item_sources, sources
from aggregator.types import (
    DIGEST_SIZE,
    SourceDefinition,
    SourceForPoll,
    SourceNotModified,
    SourceState,
)


def sync_sources(
    connection: Connection, definitions: Sequence[SourceDefinition], now: datetime
) -> None:
    """Insert new sources, refresh title/URL of known ones; never delete (items stay)."""
    if not definitions:
        return
    existing = {
        row.name: row
        for row in connection.execute(
            select(sources.c.name, sources.c.url, sources.c.title).where(
                sources.c.name.in_([d.name for d in definitions])
            )
        )
    }
    new = [d for d in definitions if d.name not in existing]
    if new:
        statement = upsert(connection, sources).on_conflict_do_nothing(index_elements=["name"])
        connection.execute(
            statement,
            [
                {
                    "name": d.name,
                    "title": d.title,
                    "url": d.url,
                    "consecutive_errors": 0,
                    "created_at": now,
                    "next_poll_at": now,
                }
                for d in new
            ],
        )
    for d in definitions:
        row = existing.get(d.name)
        if row is None or (row.url == d.url and row.title == d.title):
            continue
        values: dict[str, object] = {"title": d.title, "url": d.url}
        if row.url != d.url:
            # A new URL is a new resource: old validators and errors do not apply.
            values |= {
                "etag": None,
                "last_modified": None,
                "consecutive_errors": 0,
                "next_poll_at": now,
                "fetch_url": None,
                "gone_at": None,
            }
        connection.execute(update(sources).where(sources.c.name == d.name).values(**values))


def source_id(connection: Connection, name: str) -> int:
    found = connection.execute(select(sources.c.id).where(sources.c.name == name)).scalar()
    if found is None:
        raise KeyError(f"unknown source {name!r}")
    return int(found)


_FOR_POLL = (
    sources.c.name,
    func.coalesce(sources.c.fetch_url, sources.c.url).label("url"),
    sources.c.etag,
    sources.c.last_modified,
    sources.c.new_item_gap,
    sources.c.last_new_at,
    sources.c.listed_entries,
    sources.c.unreadable_digest,
    sources.c.last_error,
)


def ids_by_name(connection: Connection) -> dict[str, int]:
    """Every stored source's id, by name."""
    return {row.name: row.id for row in connection.execute(select(sources.c.name, sources.c.id))}


def due_sources(
    connection: Connection, names: Sequence[str], now: datetime
) -> tuple[SourceForPoll, ...]:
    """Sources whose time has come, most overdue first; gone sources never are."""
    rows = connection.execute(
        select(*_FOR_POLL)
        .where(*_pollable(names))
        .where((sources.c.next_poll_at.is_(None)) | (sources.c.next_poll_at <= now))
        .order_by(sources.c.next_poll_at, sources.c.name)
    )
    return tuple(_for_poll(row) for row in rows)


def _released(owner: Any) -> dict[str, Any]:
    """What recording a poll does to its source's lease: ends it when it is ``owner``'s.
    A process whose lease ran out leaves alone the lease of the one that took over."""
    mine = sources.c.lease_owner == owner
    return {
        "lease_owner": case((mine, None), else_=sources.c.lease_owner),
        "lease_until": case((mine, None), else_=sources.c.lease_until),
    }


_RELEASED: dict[str, object] = {"lease_owner": None, "lease_until": None}


def _waiting(names: Sequence[str], now: datetime, *, due_only: bool) -> list[ColumnElement[bool]]:
    """Named sources that are not gone, nobody is polling, and (``due_only``) are due:
    what a claim takes and what the scheduling lag measures."""
    conditions = [*_pollable(names), _lease_free(now)]
    if due_only:
        conditions.append(sources.c.next_poll_at.is_(None) | (sources.c.next_poll_at <= now))
    return conditions


def _lease_free(now: datetime) -> ColumnElement[bool]:
    return sources.c.lease_until.is_(None) | (sources.c.lease_until <= now)


# Due sources read per claim, per free slot: the rest of a busy host's are passed over.
_CANDIDATES_PER_SLOT = 8


def claim_due_sources(
    connection: Connection,
    names: Sequence[str],
    now: datetime,
    *,
    owner: str,
    lease: timedelta,
    limit: int,
    per_host: int,
    due_only: bool = True,
) -> tuple[SourceForPoll, ...]:
    """Lease up to ``limit`` due sources (any not gone, with ``due_only`` false) to
    ``owner`` until ``now + lease``, most overdue first, never more than ``per_host``
    leased to one host at a time (by any owner): what several processes sharing the
    store poll. A source stays leased until its poll is recorded or the lease runs out
    (its owner died), so no two processes poll it for the same due time.

    On PostgreSQL claims take turns (an advisory lock held to the commit), so the
    hosts' counts cannot go stale between reading and leasing; the due rows are read
    FOR UPDATE SKIP LOCKED, passing over a source whose poll is being recorded."""
    if limit <= 0:
        return ()
    write_first(connection)  # SQLite: claims take turns too
    if connection.dialect.name == "postgresql":
        connection.execute(
            text(f"SELECT pg_advisory_xact_lock({ADVISORY_KEYS})"), {"lock_name": "claims"}
        )
    busy = Counter(
        host_of(url)
        for url in connection.scalars(
            select(func.coalesce(sources.c.fetch_url, sources.c.url)).where(
                sources.c.lease_until > now
            )
        )
    )
    due = (
        select(sources.c.id, *_FOR_POLL)
        .where(*_waiting(names, now, due_only=due_only))
        .order_by(sources.c.next_poll_at, sources.c.name)
        .with_for_update(skip_locked=True)
    )
    page = limit * _CANDIDATES_PER_SLOT
    chosen: list[Any] = []
    offset = 0
    while len(chosen) < limit:  # past a busy host's sources to other hosts' ones
        rows = connection.execute(due.limit(page).offset(offset)).all()
        for row in rows:
            host = host_of(row.url)
            if busy[host] >= per_host:
                continue
            busy[host] += 1
            chosen.append(row)
            if len(chosen) == limit:
                break
        if len(rows) < page:
            break
        offset += page
    if not chosen:
        return ()
    # Leased again only if still free: on SQLite the rows above were read outside the
    # write lock (the driver begins a transaction at the first write), and another
    # process may have leased some of them since.
    leased = set(
        connection.scalars(
            update(sources)
            .where(sources.c.id.in_([row.id for row in chosen]))
            .where(_lease_free(now))
            .values(lease_owner=owner, lease_until=now + lease)
            .returning(sources.c.id)
        )
    )
    return tuple(replace(_for_poll(row), lease_owner=owner) for row in chosen if row.id in leased)


def poll_sooner(connection: Connection, intervals: Mapping[str, timedelta], now: datetime) -> None:
    """Bring each named source's next poll forward to its last poll plus the interval
    given (now plus it, if never polled), if it was due later: its interval was
    shortened. Gone sources stay gone."""
    if not intervals:
        return
    last = dict(
        connection.execute(
            select(sources.c.name, sources.c.last_polled_at).where(
                sources.c.name.in_(list(intervals))
            )
        ).all()
    )
    if not last:
        return
    connection.execute(
        update(sources)
        .where(sources.c.name == bindparam("b_name"))
        .where(sources.c.gone_at.is_(None))
        .where(sources.c.next_poll_at > bindparam("b_when"))
        .values(next_poll_at=bindparam("b_when")),
        [
            {"b_name": name, "b_when": (last[name] or now) + intervals[name]}
            for name in sorted(last)
        ],
    )


def oldest_due(connection: Connection, names: Sequence[str], now: datetime) -> datetime | None:
    """When the longest-waiting due source, not being polled, became due."""
    return connection.execute(
        select(func.min(sources.c.next_poll_at)).where(*_waiting(names, now, due_only=True))
    ).scalar_one_or_none()


def lease_owners(connection: Connection, now: datetime) -> list[str]:
    """Who holds leases that have not run out."""
    return list(
        connection.scalars(
            select(sources.c.lease_owner)
            .where(sources.c.lease_owner.is_not(None))
            .where(sources.c.lease_until > now)
            .distinct()
        )
    )


def release_leases(connection: Connection, owner: str, keep: Sequence[str] = ()) -> None:
    """Give back what ``owner`` leased, but for the sources named in ``keep``."""
    connection.execute(
        update(sources)
        .where(sources.c.lease_owner == owner)
        .where(sources.c.name.not_in(keep))
        .values(**_RELEASED)
    )


def _pollable(names: Sequence[str]) -> tuple[ColumnElement[bool], ...]:
    """The named sources that are not gone, due or not."""
    return sources.c.name.in_(names), sources.c.gone_at.is_(None)


def pollable_count(connection: Connection, names: Sequence[str]) -> int:
    """How many ``sources_for_poll`` would return, counted without reading them."""
    count = connection.scalar(select(func.count()).select_from(sources).where(*_pollable(names)))
    return int(count or 0)


def sources_for_poll(connection: Connection, names: Sequence[str]) -> tuple[SourceForPoll, ...]:
    """Every named source that is not gone, due or not."""
    rows = connection.execute(select(*_FOR_POLL).where(*_pollable(names)).order_by(sources.c.name))
    return tuple(_for_poll(row) for row in rows)


def _for_poll(row: Any) -> SourceForPoll:
    gap = row.new_item_gap
    return SourceForPoll(
        name=row.name,
        url=row.url,
        etag=row.etag,
        last_modified=row.last_modified,
        new_item_gap=timedelta(seconds=gap) if gap is not None else None,
        last_new_at=row.last_new_at,
        listed=listed_digests(row.listed_entries),
        unreadable=row.unreadable_digest,
        last_error=row.last_error,
    )


def listed_digests(packed: bytes | None) -> frozenset[bytes]:
    if not packed:
        return frozenset()
    return frozenset(packed[i : i + DIGEST_SIZE] for i in range(0, len(packed), DIGEST_SIZE))


def record_success(
    connection: Connection,
    name: str,
    *,
    status: str,
    http_status: int | None,
    etag: str | None,
    last_modified: str | None,
    now: datetime,
    next_poll_at: datetime,
    moved_to: str | None = None,
    new_item_gap: timedelta | None = None,
    last_new_at: datetime | None = None,
    lease_owner: str | None = None,
    listed: Iterable[bytes] = (),
) -> None:
    values: dict[str, object] = {
        "etag": etag,
        "last_modified": last_modified,
        "last_polled_at": now,
        "last_content_at": now,
        "listed_entries": b"".join(sorted(set(listed))) or None,
        "next_poll_at": next_poll_at,
        "last_status": status,
        "last_http_status": http_status,
        "last_error": None,
        "unreadable_digest": None,
        "consecutive_errors": 0,
        **_released(lease_owner),
    }
    if moved_to is not None:
        values["fetch_url"] = moved_to
    if last_new_at is not None:
        values["last_new_at"] = last_new_at
        values["new_item_gap"] = new_item_gap.total_seconds() if new_item_gap else None
    connection.execute(update(sources).where(sources.c.name == name).values(**values))


def record_not_modified(connection: Connection, records: Sequence[SourceNotModified]) -> None:
    """One batched UPDATE for every 304: validators, times, and a clean slate of errors."""
    ordered = sorted(records, key=lambda r: r.name)
    connection.execute(
        update(sources)
        .where(sources.c.name == bindparam("b_name"))
        .values(
            etag=bindparam("b_etag"),
            last_modified=bindparam("b_last_modified"),
            last_polled_at=bindparam("b_polled_at"),
            next_poll_at=bindparam("b_next_poll_at"),
            last_status="not_modified",
            last_http_status=304,
            last_error=None,
            consecutive_errors=0,
            **_released(bindparam("b_owner")),
        ),
        [
            {
                "b_owner": r.lease_owner,
                "b_name": r.name,
                "b_etag": r.etag,
                "b_last_modified": r.last_modified,
                "b_polled_at": r.polled_at,
                "b_next_poll_at": r.next_poll_at,
            }
            for r in ordered
        ],
    )
    moved = [r for r in ordered if r.moved_to]
    if moved:
        connection.execute(
            update(sources)
            .where(sources.c.name == bindparam("b_name"))
            .values(fetch_url=bindparam("b_moved_to")),
            [{"b_name": r.name, "b_moved_to": r.moved_to} for r in moved],
        )


def record_gone(
    connection: Connection,
    name: str,
    *,
    error: str,
    http_status: int,
    now: datetime,
    lease_owner: str | None = None,
) -> None:
    """410 Gone: stop polling until the config gives the source a new URL."""
    connection.execute(
        update(sources)
        .where(sources.c.name == name)
        .values(
            last_polled_at=now,
            next_poll_at=None,
            gone_at=now,
            last_status="gone",
            last_http_status=http_status,
            last_error=error,
            **_released(lease_owner),
        )
    )


def record_failure(
    connection: Connection,
    name: str,
    *,
    error: str,
    http_status: int | None,
    now: datetime,
    next_poll_at: Callable[[int], datetime],
    lease_owner: str | None = None,
    unreadable: bytes | None = None,
) -> int:
    """Count the failure and schedule the retry from the new count; return that count.
    ``unreadable``: the digest of the document that could not be read; None forgets an
    earlier one, whose reason ``last_error`` no longer holds.

    The validators are kept: the next poll must still be able to get a 304.
    """
    errors = connection.execute(
        update(sources)
        .where(sources.c.name == name)
        .values(
            last_polled_at=now,
            last_status="error",
            last_http_status=http_status,
            last_error=error,
            consecutive_errors=sources.c.consecutive_errors + 1,
            unreadable_digest=unreadable,
        )
        .returning(sources.c.consecutive_errors)
    ).scalar_one()
    connection.execute(
        update(sources)
        .where(sources.c.name == name)
        .values(next_poll_at=next_poll_at(errors), **_released(lease_owner))
    )
    return int(errors)


def source_states(connection: Connection) -> tuple[SourceState, ...]:
    counts = (
        select(item_sources.c.source_id, func.count().label("n"))
        .group_by(item_sources.c.source_id)
        .subquery()
    )
    rows = connection.execute(
        select(sources, func.coalesce(counts.c.n, 0).label("item_count"))
        .outerjoin(counts, counts.c.source_id == sources.c.id)
        .order_by(sources.c.name)
    )
    return tuple(
        SourceState(
            name=row.name,
            url=row.url,
            fetch_url=row.fetch_url,
            gone=row.gone_at is not None,
            etag=row.etag,
            last_modified=row.last_modified,
            last_polled_at=row.last_polled_at,
            next_poll_at=row.next_poll_at,
            last_status=row.last_status,
            last_http_status=row.last_http_status,
            last_error=row.last_error,
            consecutive_errors=row.consecutive_errors,
            item_count=row.item_count,
        )
        for row in rows
    )
