"""Builders for values used across tests (fakes with builder methods, no Mock)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, text

from aggregator.types import (
    Category,
    Item,
    ParsedItem,
    PollSchedule,
    SeriesMembership,
    SourceDefinition,
    UnchangedEntry,
)

if TYPE_CHECKING:
    from aggregator.store import Store

T0 = datetime(2026, 2, 18, 2, 0, tzinfo=UTC)
# Three outlets' headlines of one event (2026-02-17), as (source, title).
JACKSON = [
    ("bbc", "US civil rights leader Jesse Jackson dies aged 84"),
    ("npr", "Jesse Jackson, civil rights leader and presidential hopeful, dies at 84"),
    ("abc", "Civil rights leader Jesse Jackson dies, aged 84"),
]


def make_item(key: str, **overrides: Any) -> Item:
    """An Item whose identity is its link (https://example.com/<key>) unless overridden."""
    link = overrides.pop("link", f"https://example.com/{key}")
    title = overrides.pop("title", f"Title {key}")
    content = overrides.pop("content_html", f"<p>Body {key}</p>")
    values: dict[str, Any] = {
        "entry_key": f"guid:{key}",
        "identity": f"link:{link}" if link else f"src:test:guid:{key}",
        "guid": key,
        "link": link,
        "source_link": link,
        "title": title,
        "content_html": content,
        "summary_html": None,
        "published": T0,
        "updated": None,
        "authors": (),
        "categories": (Category(term="World", domain="https://example.com/tags"),),
        "enclosures": (),
        "language": "en",
        "content_hash": hashlib.sha256(f"{title}\0{content}".encode()).hexdigest(),
    }
    values.update(overrides)
    return Item(**values)


def save_batch(
    store: Store,
    source: str,
    batch: Sequence[Item],
    *,
    now: datetime = T0,
    series: dict[str, tuple[str, ...]] | None = None,
    etag: str | None = None,
    tagged: bool = False,
    unchanged: Sequence[UnchangedEntry] = (),
) -> int:
    """One successful poll of ``source`` that read ``batch``, as the pipeline saves it;
    the number of items new to the source. ``series``: entry key -> series slugs (as an
    outlet's tag when ``tagged``); ``unchanged``: the entries left out."""
    memberships = {
        key: tuple(
            SeriesMembership(slug=slug, reason=f"test {slug}", tagged=tagged) for slug in slugs
        )
        for key, slugs in (series or {}).items()
    }
    return store.save_poll(
        source,
        batch=batch,
        series=memberships,
        http_status=200,
        etag=etag,
        last_modified=None,
        now=now,
        schedule=lambda new: PollSchedule(next_poll_at=now + timedelta(minutes=15)),
        unchanged=unchanged,
    ).new


def define_outlets(store: Store, *names: str, now: datetime = T0) -> None:
    """Configured sources named ``names``, titled in capitals (bbc: BBC)."""
    definitions = [
        SourceDefinition(name=n, title=n.upper(), url=f"https://{n}.example/f") for n in names
    ]
    store.sync_sources(definitions, now)


def save_titled(
    store: Store, source: str, key: str, title: str, when: datetime, link: str | None = None
) -> None:
    """One item of ``source`` with this title, dated and polled at ``when``."""
    link = link or f"https://{source}.example/{key}"
    save_batch(store, source, [make_item(key, title=title, link=link, published=when)], now=when)


def story_ids_by_title(url: str) -> dict[str, int | None]:
    """Each stored item's title with its story (None: not assigned yet)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT title, story_id FROM items"))
            return {row.title: row.story_id for row in rows}
    finally:
        engine.dispose()


def make_parsed(*, guid: str | None, link: str | None, title: str) -> ParsedItem:
    """An entry as a parser would hand it over: just an id, a link and a title."""
    return ParsedItem(
        guid=guid,
        link=link,
        title=title,
        title_is_html=False,
        content_html=None,
        summary_html=None,
        published=None,
        updated=None,
    )


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment
