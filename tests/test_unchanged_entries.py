"""Entries a feed sends again as they were are not normalized again (normalize_entries,
sources.listed_entries), and the store ends up exactly as if they had been."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields, replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from aggregator.exceptions import ParseError
from aggregator.parse import parse_feed
from aggregator.process.document import process_document
from aggregator.process.normalize import (
    digest_context,
    entry_digest,
    normalize_entries,
    normalize_items,
)
from aggregator.store import Store
from aggregator.store.schema import item_sources, items, sources
from aggregator.types import Category, Enclosure, ParsedItem
from tests.builders import T0, define_outlets, make_parsed, save_batch

DATA = Path(__file__).parent / "data"


def _entry(n: int, **overrides: object) -> ParsedItem:
    entry = make_parsed(guid=f"g{n}", link=f"https://outlet.example/{n}", title=f"Story {n}")
    body = f"<p>Body of story {n} with a <a href='/more/{n}'>relative link</a>.</p>"
    return replace(entry, content_html=body, published=T0, **overrides)  # type: ignore[arg-type]


def _digests(entries: list[ParsedItem], listed: frozenset[bytes] = frozenset()) -> set[bytes]:
    made = normalize_entries(entries, source_name="s", now=T0, listed=listed)
    return {item.digest for item in made.items} | set(made.unchanged)


# --- normalize_entries, pure ---------------------------------------------------------


def test_entries_sent_again_are_left_out_and_changed_ones_normalized() -> None:
    first = [_entry(n) for n in range(5)]
    listed = frozenset(_digests(first))
    assert len(listed) == 5
    again = [first[4], replace(first[1], title="Story 1, updated"), first[0], first[2], _entry(9)]
    made = normalize_entries(again, source_name="s", now=T0, listed=listed)
    assert [item.title for item in made.items] == ["Story 1, updated", "Story 9"]
    assert len(made.unchanged) == 3 and set(made.unchanged) <= listed
    # What is normalized is what normalize_items makes, digest aside.
    expected = normalize_items([again[1], again[4]], source_name="s", now=T0)
    assert [replace(item, digest=b"") for item in made.items] == list(expected)


def _feeds() -> list[tuple[str, list[ParsedItem]]]:
    """The entries of every feed kept for the parser's tests (some files are no feed)."""
    feeds = []
    for path in sorted((DATA / "parse").iterdir()):
        try:
            feed = parse_feed(path.read_bytes(), content_type=None, url="https://outlet.example/f")
        except (ParseError, IsADirectoryError):
            continue
        feeds.append((path.name, list(feed.items)))
    return feeds


FEEDS = _feeds()


@pytest.mark.parametrize("entries", [f[1] for f in FEEDS], ids=[f[0] for f in FEEDS])
def test_real_feeds_sent_again_normalize_to_nothing_new(entries: list[ParsedItem]) -> None:
    first = normalize_entries(entries, source_name="s", now=T0)
    assert first.unchanged == ()
    expected = normalize_items(entries, source_name="s", now=T0)
    assert [replace(item, digest=b"") for item in first.items] == list(expected)
    listed = frozenset(item.digest for item in first.items if item.digest)
    again = normalize_entries(entries, source_name="s", now=T0, listed=listed)
    assert set(again.unchanged) == listed
    assert [replace(item, digest=b"") for item in again.items] == [
        item
        for item in expected
        if item.entry_key not in {i.entry_key for i in first.items if i.digest}
    ]


def test_the_corpus_of_this_suite_holds_feeds_of_every_kind() -> None:
    """The test above must see entries left out and entries made again."""
    kinds = Counter()
    for _, entries in FEEDS:
        made = normalize_entries(entries, source_name="s", now=T0)
        kinds.update("listed" if item.digest else "made again" for item in made.items)
    assert len(FEEDS) >= 10 and kinds["listed"] >= 100 and kinds["made again"] >= 20


@pytest.mark.parametrize(
    "context",
    [{"source_name": "other"}, {"split_categories": ","}],
    ids=["another source", "split categories"],
)
def test_a_digest_holds_only_in_the_context_it_was_made_in(context: dict[str, str]) -> None:
    entries = [_entry(n) for n in range(3)]
    listed = frozenset(_digests(entries))
    made = normalize_entries(
        entries,
        **{"source_name": "s", **context},
        now=T0,
        listed=listed,  # type: ignore[arg-type]
    )
    assert made.unchanged == () and len(made.items) == 3


def test_every_field_of_an_entry_bears_on_its_digest() -> None:
    entry = _entry(1)
    other = {
        "guid": "g2",
        "link": "https://outlet.example/2",
        "title": "Story 2",
        "title_is_html": True,
        "content_html": "<p>Other</p>",
        "summary_html": "<p>A summary</p>",
        "published": T0 + timedelta(seconds=1),
        "updated": T0,
        "authors": ("Ann",),
        "categories": (Category(term="World"),),
        "enclosures": (Enclosure(url="https://outlet.example/a.mp3"),),
        "language": "en",
        "base": "https://outlet.example/",
    }
    assert set(other) == {f.name for f in fields(ParsedItem)}  # a new field needs a line
    context = digest_context("s", None)
    digests = {
        entry_digest(replace(entry, **{name: value}), context) for name, value in other.items()
    }  # type: ignore[arg-type]
    assert entry_digest(entry, context) not in digests and len(digests) == len(other)
    assert entry_digest(replace(entry), context) == entry_digest(entry, context)


def test_entries_keyed_by_their_content_are_always_normalized() -> None:
    entries = [replace(_entry(n), guid=None, link=None) for n in range(3)]
    assert _digests(entries) == {b""}  # none is listed
    assert normalize_entries(entries, source_name="s", now=T0).items[0].digest == b""


def test_entries_sharing_a_key_or_an_identity_are_made_again_and_not_listed() -> None:
    twins = [_entry(1), replace(_entry(2), guid="g1"), _entry(3)]  # one guid, two articles
    same_link = [_entry(4), replace(_entry(5), link="https://outlet.example/4"), _entry(6)]
    for document in (twins, same_link):
        made = normalize_entries(document, source_name="s", now=T0)
        assert [bool(item.digest) for item in made.items] == [False, False, True]
    # Listed alone once, an entry whose key another entry comes to share is made again
    # (its key is qualified now); the entry sharing nothing is still left out.
    listed = _digests([_entry(1), _entry(3)])
    made = normalize_entries(twins, source_name="s", now=T0, listed=frozenset(listed))
    assert made.unchanged == (_digests([_entry(3)]).pop(),)
    expected = normalize_items(twins, source_name="s", now=T0)[:2]
    assert [replace(item, digest=b"") for item in made.items] == list(expected)
    assert expected[0].entry_key != "guid:g1"  # qualified, as the first time


# --- through the store: the same rows as normalizing everything ----------------------


def _poll(store: Store, document: bytes, *, listed: bool, when: int) -> tuple[int, int]:
    """One poll of source "s" reading ``document``; (new items, entries left out)."""
    now = T0 + timedelta(hours=when)
    source = store.sources_for_poll(["s"])[0]
    processed = process_document(
        document,
        content_type="application/rss+xml",
        url="https://outlet.example/feed",
        source_name="s",
        now=now,
        rules=(),
        listed=source.listed if listed else frozenset(),
    )
    assert not processed.series  # no series rules: nothing but the items to save
    new = save_batch(store, "s", processed.items, now=now, unchanged=processed.unchanged)
    return new, len(processed.unchanged)


def _rss(*entries: tuple[str, str, str]) -> bytes:
    """An RSS document of (guid, link path, title) entries."""
    body = "".join(
        f"<item><guid isPermaLink='false'>{guid}</guid><link>https://outlet.example/{path}</link>"
        f"<title>{title}</title><description>&lt;p&gt;{title}: the text.&lt;/p&gt;</description>"
        f"<pubDate>Wed, 18 Feb 2026 01:00:00 GMT</pubDate></item>"
        for guid, path, title in entries
    )
    return f"<rss version='2.0'><channel><title>Outlet</title>{body}</channel></rss>".encode()


def _rows(store: Store) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with store.engine.connect() as connection:
        stored = connection.execute(
            select(items.c.identity, items.c.title, items.c.content_hash, items.c.link).order_by(
                items.c.identity
            )
        ).all()
        credits = connection.execute(
            select(item_sources.c.entry_key, items.c.identity, item_sources.c.link)
            .join(items, items.c.id == item_sources.c.item_id)
            .order_by(item_sources.c.entry_key)
        ).all()
    return [tuple(r) for r in stored], [tuple(r) for r in credits]


# Each document as the feed sends it over time: reordered, retitled, a link moved, a
# guid given to two articles and taken back, an entry dropped and sent again, an
# entry sent again beside a new one with its link (one identity, two keys).
DOCUMENTS = [
    _rss(("a", "a", "Alpha"), ("b", "b", "Bravo"), ("c", "c", "Charlie")),
    _rss(("d", "d", "Delta"), ("c", "c", "Charlie"), ("a", "a", "Alpha"), ("b", "b", "Bravo")),
    _rss(("d", "d", "Delta"), ("c", "c", "Charlie, corrected"), ("a", "a2", "Alpha")),
    _rss(("d", "d", "Delta"), ("x", "c", "Charlie, corrected"), ("a", "a2", "Alpha")),
    _rss(("d", "d", "Delta"), ("c", "c", "Charlie, corrected"), ("a", "a2", "Alpha"),
         ("b", "b", "Bravo")),
    _rss(("d", "d", "Delta"), ("c", "c", "Charlie, corrected"), ("a", "a2", "Alpha"),
         ("b", "b", "Bravo")),
    _rss(("e1", "e", "Echo"), ("d", "d", "Delta")),
    _rss(("e2", "e", "Echo, again"), ("e1", "e", "Echo"), ("d", "d", "Delta")),
    _rss(("e2", "e", "Echo, again"), ("e1", "e", "Echo"), ("d", "d", "Delta")),
]  # fmt: skip


def test_a_store_fed_the_digests_ends_up_as_one_that_normalized_everything(
    store: Store, tmp_path: Path
) -> None:
    reference = Store.open(f"sqlite:///{tmp_path / 'reference.db'}")
    try:
        for each in (store, reference):
            define_outlets(each, "s")
        left_out = []
        for when, document in enumerate(DOCUMENTS):
            new, skipped = _poll(store, document, listed=True, when=when)
            assert (new, 0) == _poll(reference, document, listed=False, when=when)
            left_out.append(skipped)
            assert _rows(store) == _rows(reference), f"after document {when}"
        # It was the path taken: entries sent again were left out, the rest was not.
        assert left_out == [0, 3, 1, 2, 2, 4, 1, 1, 1]
    finally:
        reference.close()


def test_pruning_an_entry_unlists_its_source_and_the_feed_does_not_bring_it_back(
    store: Store,
) -> None:
    define_outlets(store, "s")
    document = _rss(("a", "a", "Alpha"), ("b", "b", "Bravo"))
    _poll(store, document, listed=True, when=0)
    assert len(store.sources_for_poll(["s"])[0].listed) == 2
    store.prune({}, timedelta(hours=1), T0 + timedelta(days=3))
    with store.engine.connect() as connection:
        assert connection.execute(select(sources.c.listed_entries)).scalar_one() is None
    assert _poll(store, document, listed=True, when=72) == (0, 0)
    assert _rows(store) == ([], [])
    assert len(store.sources_for_poll(["s"])[0].listed) == 0  # pruned entries stay unlisted
