"""Entries a feed sends again as they were are not normalized again (normalize_entries,
sources.listed_entries), and the store ends up exactly as if they had been."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from aggregator.exceptions import ParseError
from aggregator.parse import parse_feed
from aggregator.process.document import process_document
from aggregator.process.normalize import (
    NormalizedEntries,
    digest_context,
    entry_digest,
    normalize_entries,
    normalize_items,
)
from aggregator.store import Store
from aggregator.store.schema import item_sources, items, pruned_entries, sources
from aggregator.types import Category, Enclosure, ParsedItem, ProcessedDocument
from tests.builders import T0, define_outlets, make_parsed, save_batch

CODE = b"the reading code"  # reading_code.reading_code_key() in the daemon

DATA = Path(__file__).parent / "data"


def _entry(n: int, **overrides: object) -> ParsedItem:
    entry = make_parsed(guid=f"g{n}", link=f"https://outlet.example/{n}", title=f"Story {n}")
    body = f"<p>Body of story {n} with a <a href='/more/{n}'>relative link</a>.</p>"
    return replace(entry, content_html=body, published=T0, **overrides)  # type: ignore[arg-type]


def _digests(entries: list[ParsedItem], listed: frozenset[bytes] = frozenset()) -> set[bytes]:
    made = normalize_entries(entries, source_name="s", now=T0, code_key=CODE, listed=listed)
    return {item.digest for item in made.items} | _left_out(made)


def _left_out(made: NormalizedEntries) -> set[bytes]:
    return {entry.digest for entry in made.unchanged}


# --- normalize_entries, pure ---------------------------------------------------------


def test_entries_sent_again_are_left_out_and_changed_ones_normalized() -> None:
    first = [_entry(n) for n in range(5)]
    listed = frozenset(_digests(first))
    assert len(listed) == 5
    again = [first[4], replace(first[1], title="Story 1, updated"), first[0], first[2], _entry(9)]
    made = normalize_entries(again, source_name="s", now=T0, code_key=CODE, listed=listed)
    assert [item.title for item in made.items] == ["Story 1, updated", "Story 9"]
    assert len(made.unchanged) == 3 and _left_out(made) <= listed
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
    first = normalize_entries(entries, source_name="s", now=T0, code_key=CODE)
    assert first.unchanged == ()
    expected = normalize_items(entries, source_name="s", now=T0)
    assert [replace(item, digest=b"") for item in first.items] == list(expected)
    listed = frozenset(item.digest for item in first.items if item.digest)
    again = normalize_entries(entries, source_name="s", now=T0, code_key=CODE, listed=listed)
    assert _left_out(again) == listed
    assert [replace(item, digest=b"") for item in again.items] == [
        item
        for item in expected
        if item.entry_key not in {i.entry_key for i in first.items if i.digest}
    ]


def test_the_corpus_of_this_suite_holds_feeds_of_every_kind() -> None:
    """The test above must see entries left out and entries made again."""
    kinds = Counter()
    for _, entries in FEEDS:
        made = normalize_entries(entries, source_name="s", now=T0, code_key=CODE)
        kinds.update("listed" if item.digest else "made again" for item in made.items)
    assert len(FEEDS) >= 10 and kinds["listed"] >= 100 and kinds["made again"] >= 20


@pytest.mark.parametrize(
    "context",
    [{"source_name": "other"}, {"split_categories": ","}, {"code_key": b"the next release"}],
    ids=["another source", "split categories", "other reading code"],
)
def test_a_digest_holds_only_in_the_context_it_was_made_in(context: dict[str, Any]) -> None:
    entries = [_entry(n) for n in range(3)]
    listed = frozenset(_digests(entries))
    made = normalize_entries(
        entries,
        **{"source_name": "s", "code_key": CODE, **context},
        now=T0,
        listed=listed,
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
    context = digest_context(CODE, "s", None)
    digests = {
        entry_digest(replace(entry, **{name: value}), context) for name, value in other.items()
    }  # type: ignore[arg-type]
    assert entry_digest(entry, context) not in digests and len(digests) == len(other)
    assert entry_digest(replace(entry), context) == entry_digest(entry, context)


def test_entries_keyed_by_their_content_are_always_normalized() -> None:
    entries = [replace(_entry(n), guid=None, link=None) for n in range(3)]
    assert _digests(entries) == {b""}  # none is listed
    assert normalize_entries(entries, source_name="s", now=T0, code_key=CODE).items[0].digest == b""


def test_entries_sharing_a_key_or_an_identity_are_made_again_and_not_listed() -> None:
    twins = [_entry(1), replace(_entry(2), guid="g1"), _entry(3)]  # one guid, two articles
    same_link = [_entry(4), replace(_entry(5), link="https://outlet.example/4"), _entry(6)]
    for document in (twins, same_link):
        made = normalize_entries(document, source_name="s", now=T0, code_key=CODE)
        assert [bool(item.digest) for item in made.items] == [False, False, True]
    # Listed alone once, an entry whose key another entry comes to share is made again
    # (its key is qualified now); the entry sharing nothing is still left out.
    listed = _digests([_entry(1), _entry(3)])
    made = normalize_entries(
        twins, source_name="s", now=T0, code_key=CODE, listed=frozenset(listed)
    )
    assert _left_out(made) == _digests([_entry(3)])
    assert [u.entry_key for u in made.unchanged] == ["guid:g3"]
    expected = normalize_items(twins, source_name="s", now=T0)[:2]
    assert [replace(item, digest=b"") for item in made.items] == list(expected)
    assert expected[0].entry_key != "guid:g1"  # qualified, as the first time


# --- through the store: the same rows as normalizing everything ----------------------


def _poll(
    store: Store,
    document: bytes,
    *,
    listed: bool,
    when: int,
    read_before: frozenset[bytes] | None = None,
) -> tuple[int, int]:
    """One poll of source "s" reading ``document``; (new items, entries left out).
    ``read_before``: the listed digests as the poll read them when it began."""
    now = T0 + timedelta(hours=when)
    source = store.sources_for_poll(["s"])[0]
    if read_before is not None:
        source = replace(source, listed=read_before)
    processed = process_document(
        document,
        content_type="application/rss+xml",
        url="https://outlet.example/feed",
        source_name="s",
        now=now,
        rules=(),
        code_key=CODE,
        listed=source.listed if listed else frozenset(),
    )
    assert not processed.series  # no series rules: nothing but the items to save
    new = save_batch(store, "s", processed.items, now=now, unchanged=processed.unchanged)
    return new, len(processed.unchanged)


def _rss(*entries: tuple[str | None, str, str]) -> bytes:
    """An RSS document of (guid or None, link path, title) entries."""
    body = "".join(
        (f"<item><guid isPermaLink='false'>{guid}</guid>" if guid else "<item>")
        + f"<link>https://outlet.example/{path}</link><title>{title}</title>"
        f"<description>&lt;p&gt;{title}: the text.&lt;/p&gt;</description>"
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


# Found in review: the store holds an entry otherwise than as sent after some writes, so
# its digest must not be listed (the next poll normalizes it and writes what is owed).
SEQUENCES = {
    "an entry gains a guid and a new title (its credit is re-keyed, its text not written)": [
        _rss((None, "a", "Alpha")),
        _rss(("g", "a", "Alpha, retitled")),
        _rss(("g", "a", "Alpha, retitled"), ("n", "n", "New")),
    ],
    "a link moves onto an item this source brought under another entry": [
        _rss(("g2", "b", "Bravo"), ("g1", "a", "Alpha")),
        _rss(("g1", "b", "Alpha, moved")),
        _rss(("g1", "b", "Alpha, moved"), ("n", "n", "New")),
    ],
    "two guids on one link, one of them moves: the item is renamed under the other": [
        _rss(("g1", "a", "One"), ("g2", "a", "Two")),
        _rss(("g1", "a", "One"), ("g2", "b", "Two")),
        _rss(("g1", "a", "One"), ("g2", "b", "Two"), ("n", "n", "New")),
    ],
    "the same, renamed under an entry the renaming poll left out": [
        _rss(("g1", "a", "One"), ("g2", "a", "Two")),
        _rss(("g1", "a", "One")),
        _rss(("g1", "a", "One"), ("m", "m", "More")),
        _rss(("g1", "a", "One"), ("m", "m", "More"), ("g2", "b", "Two")),
        _rss(("g1", "a", "One"), ("m", "m", "More"), ("g2", "b", "Two"), ("n", "n", "New")),
    ],
}


@pytest.mark.parametrize("documents", list(SEQUENCES.values()), ids=list(SEQUENCES))
def test_an_entry_the_store_holds_otherwise_than_sent_is_made_again(
    store: Store, tmp_path: Path, documents: list[bytes]
) -> None:
    reference = Store.open(f"sqlite:///{tmp_path / 'reference.db'}")
    try:
        for each in (store, reference):
            define_outlets(each, "s")
        for when, document in enumerate(documents):
            _poll(store, document, listed=True, when=when)
            _poll(reference, document, listed=False, when=when)
            assert _rows(store) == _rows(reference), f"after document {when}"
    finally:
        reference.close()


def _tombstones(store: Store) -> list[tuple[object, ...]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(pruned_entries.c.entry_key, pruned_entries.c.last_listed_at).order_by(
                pruned_entries.c.entry_key
            )
        )
        return [tuple(row) for row in rows]


def test_a_prune_while_a_poll_runs_does_not_bring_the_pruned_entries_back(
    store: Store, tmp_path: Path
) -> None:
    """Retention commits between a poll reading the listed digests and saving: the
    entries it left out are pruned. They are marked as still listed, as a poll that
    normalized them marks them, and are not listed again; so when their tombstones would
    otherwise lapse and the digests be cleared again, they do not come back."""
    reference = Store.open(f"sqlite:///{tmp_path / 'reference.db'}")
    ab = _rss(("a", "a", "Alpha"), ("b", "b", "Bravo"))
    abc = _rss(("a", "a", "Alpha"), ("b", "b", "Bravo"), ("c", "c", "Charlie"))
    try:
        for each in (store, reference):
            define_outlets(each, "s")
            _poll(each, ab, listed=each is store, when=0)
        read_before = store.sources_for_poll(["s"])[0].listed
        for each in (store, reference):
            each.prune({}, timedelta(hours=1), T0 + timedelta(hours=72))
        assert _poll(store, abc, listed=True, when=73, read_before=read_before) == (1, 2)
        _poll(reference, abc, listed=False, when=73)
        assert _rows(store) == _rows(reference) and _tombstones(store) == _tombstones(reference)
        for when in (96, 120):  # the feed lists a, b and c still
            for each in (store, reference):
                _poll(each, abc, listed=each is store, when=when)
            assert _tombstones(store) == _tombstones(reference)
        for each in (store, reference):  # c expires too, and unlists the source
            each.prune({}, timedelta(hours=100), T0 + timedelta(hours=200))
            _poll(each, abc, listed=each is store, when=201)
        assert _rows(store) == _rows(reference) == ([], [])
    finally:
        reference.close()


class _Recording:
    """The pipeline's processor (parse workers), noting how many entries each document
    left out; ``unlisted``: as if nothing were listed."""

    def __init__(self, processor: Any, *, unlisted: bool) -> None:
        self.processor, self.unlisted = processor, unlisted
        self.left_out: list[int] = []

    def __call__(self, content: bytes, **arguments: Any) -> ProcessedDocument:
        if self.unlisted:
            arguments["listed"] = frozenset()
        document: ProcessedDocument = self.processor(content, **arguments)
        self.left_out.append(len(document.unchanged))
        return document


def _poll_twice(config: Path, feed: Path, bodies: list[bytes], *, unlisted: bool) -> tuple:
    from aggregator.pipeline import open_pipeline
    from aggregator.settings import load_settings

    with open_pipeline(load_settings(config, environ={})) as pipeline:
        recording = _Recording(pipeline.processor, unlisted=unlisted)
        pipeline.processor = recording
        outcomes = []
        for n, body in enumerate(bodies):
            feed.write_bytes(body)
            os.utime(feed, (time.time() + n, time.time() + n))  # a new Last-Modified
            (outcome,) = pipeline.poll_all()
            outcomes.append((outcome.status, outcome.items_seen, outcome.items_new))
        return outcomes, recording.left_out, _rows(pipeline.store)


def test_a_poll_process_leaves_out_what_a_real_feed_sends_again(tmp_path: Path) -> None:
    """Through the daemon's pipeline (parse workers, a loopback server, a real feed):
    BBC's feed, first without its first item, then whole. The second poll stores the
    one new item and leaves the others out in the worker; the rows are those of a store
    that normalized everything."""
    from tests.feedserver import serve_directory

    whole = (DATA / "e2e" / "bbc-news-world.xml").read_bytes()
    first, rest = whole.index(b"<item>"), whole.index(b"</item>") + len(b"</item>")
    bodies = [whole[:first] + whole[rest:], whole]
    served = tmp_path / "feeds"
    served.mkdir()
    results = {}
    with serve_directory(served) as server:
        for name in ("listed", "reference"):
            config = tmp_path / f"{name}.yaml"
            config.write_text(
                f"database: sqlite:///{tmp_path / name}.db\n"
                "polling: {allow_networks: [127.0.0.1/32]}\n"
                f"sources: [{{name: s, url: '{server.url('bbc.xml')}'}}]\n"
            )
            unlisted = name == "reference"
            results[name] = _poll_twice(config, served / "bbc.xml", bodies, unlisted=unlisted)
    outcomes, left_out, rows = results["listed"]
    assert outcomes == results["reference"][0] == [("ok", 32, 32), ("ok", 33, 1)]
    assert left_out == [0, 32] and results["reference"][1] == [0, 0]
    assert rows == results["reference"][2] and len(rows[0]) == 33
