"""The lxml reader must yield exactly what feedparser yields, wherever it answers at all.

feedparser is the reference; aggregator.parse.lxml_feed is a faster path for the
documents it fully understands. Every file of the shared corpus (real-world feeds,
same-story captures, malformed and hostile feeds) plus the bundled demo captures and
the benchmark's generated feeds is parsed both ways and compared field by field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime

import pytest

import aggregator.parse.xml_feed as xml_feed
from aggregator.exceptions import ParseError
from aggregator.parse import parse_feed
from aggregator.parse.lxml_feed import read_plain_feed
from aggregator.types import ParsedFeed
from bench.synthetic import FeedFactory
from tests.conftest import REPO, corpus_dir

URL = "https://news.example.com/feeds/main.xml"
# At the time of writing the lxml path answers for 367 of these 827 files; the floors
# make a change that quietly sends everything to feedparser fail here.
MIN_CORPUS_FILES_READ = 300
MIN_CORPUS_ITEMS_READ = 5000


def _documents() -> Iterator[tuple[str, bytes]]:
    corpus = corpus_dir()
    folders = [corpus / "realworld", corpus / "news-same-story", corpus / "malformed"]
    for folder in [*folders, REPO / "config" / "demo-feeds"]:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            yield str(path.relative_to(folder.parent)), path.read_bytes()
    factory = FeedFactory(seed=7, items=50, anchor=datetime(2026, 1, 1, tzinfo=UTC))
    for index in range(1, 5):
        yield f"bench/{factory.filename(index)}", factory.build(index).body


def _by_feedparser(monkeypatch: pytest.MonkeyPatch, content: bytes) -> ParsedFeed | str:
    with monkeypatch.context() as patch:
        patch.setattr(xml_feed, "read_plain_feed", lambda data, url: None)
        return _parse(content)


def _parse(content: bytes) -> ParsedFeed | str:
    try:
        return parse_feed(content, content_type=None, url=URL)
    except ParseError as exc:
        return f"ParseError: {exc}"


def _differences(fast: ParsedFeed | str, reference: ParsedFeed | str) -> list[str]:
    if isinstance(fast, str) or isinstance(reference, str):
        return [f"{fast!r:.200} != {reference!r:.200}"]
    found = [
        f"feed.{f.name}: {getattr(fast, f.name)!r:.200} != {getattr(reference, f.name)!r:.200}"
        for f in fields(ParsedFeed)
        if f.name != "items" and getattr(fast, f.name) != getattr(reference, f.name)
    ]
    if len(fast.items) != len(reference.items):
        return [*found, f"{len(fast.items)} items != {len(reference.items)}"]
    for index, (mine, theirs) in enumerate(zip(fast.items, reference.items, strict=True)):
        found.extend(
            f"item {index}.{f.name}: {getattr(mine, f.name)!r:.200} != "
            f"{getattr(theirs, f.name)!r:.200}"
            for f in fields(mine)
            if getattr(mine, f.name) != getattr(theirs, f.name)
        )
    return found


def test_lxml_reader_matches_feedparser_on_every_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_files = read_items = 0
    mismatches: dict[str, list[str]] = {}
    bench_read = 0
    for name, content in _documents():
        fast = _parse(content)
        reference = _by_feedparser(monkeypatch, content)
        if fast != reference:
            mismatches[name] = _differences(fast, reference)[:5]
        if read_plain_feed(content, url=URL) is not None:
            read_files += 1
            read_items += len(reference.items) if isinstance(reference, ParsedFeed) else 0
            bench_read += name.startswith("bench/")
    assert not mismatches, "\n".join(f"{k}: {v}" for k, v in mismatches.items())
    assert read_files >= MIN_CORPUS_FILES_READ
    assert read_items >= MIN_CORPUS_ITEMS_READ
    assert bench_read == 4, "the benchmark's RSS and Atom feeds must take the lxml path"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            b'<!DOCTYPE rss><rss version="2.0"><channel><item><title>t</title></item>'
            b"</channel></rss>",
            "a DOCTYPE",
        ),
        (
            b'<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel>'
            b"<item><title>caf\xe9</title></item></channel></rss>",
            "not UTF-8",
        ),
        (
            b'<rss version="2.0"><channel><item><title>a <b>b</b></title></item></channel></rss>',
            "markup inside a text field",
        ),
        (
            b'<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><item>'
            b"<title>t</title><media:title>m</media:title></item></channel></rss>",
            "an element feedparser maps onto a read field",
        ),
        (
            b'<rss version="2.0"><channel><item><title>a</title><title>b</title></item>'
            b"</channel></rss>",
            "a repeated singular field",
        ),
        (
            b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>x</id>'
            b'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">x</div>'
            b"</content></entry></feed>",
            "xhtml content",
        ),
        (b'<rss version="2.0"><channel><item><title>x</item></rss>', "not well-formed"),
    ],
)
def test_lxml_reader_leaves_what_it_does_not_reproduce_to_feedparser(
    document: bytes, reason: str
) -> None:
    assert read_plain_feed(document, url=URL) is None, reason


def test_lxml_reader_repairs_text_as_feedparser_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # UTF-8 read as Latin-1 and encoded again ("cafÃ©"), and a C1 control for a
    # cp1252 quote: both repaired by feedparser, so by the lxml path too.
    document = (
        '<rss version="2.0"><channel><title>x</title><item><title>cafÃ©</title>'
        "<link>/a?x=1&amp;amp;y=2</link><guid>/a</guid>"
        "<author>jane@example.com (Jane Doe)</author>"
        '<category domain="d"></category><category>C</category></item>'
        "<item><title>\x93q\x94</title></item></channel></rss>"
    ).encode()
    fast = read_plain_feed(document, url=URL)
    assert fast is not None
    item, quoted = fast.items
    assert item.title == "café"
    assert quoted.title == "\u201cq\u201d"
    assert item.link == "https://news.example.com/a?x=1&y=2"
    assert item.authors == ("Jane Doe",)
    assert [(c.term, c.domain) for c in item.categories] == [("C", "d")]
    assert fast == _by_feedparser(monkeypatch, document)
