"""Every real and every malformed file of the shared corpus: parse, normalize, stay safe.

Only ParseError may come out of a file. Real-world files must all parse except the
few listed in ``REALWORLD_NOT_FEEDS``, so a file that stops parsing fails a test.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
from dataclasses import fields
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from aggregator.exceptions import ParseError
from aggregator.parse import parse_feed
from aggregator.process.normalize import normalize_items
from aggregator.types import Item

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("AGGREGATOR_CORPUS", REPO.parent / "shared" / "corpus"))
NOW = datetime(2026, 2, 18, 12, 0, tzinfo=UTC)

# Real-world files that are genuinely not feeds, with the reason.
REALWORLD_NOT_FEEDS = {
    "realworld/netnewswire/Subs.opml": "an OPML subscription list",
    "realworld/netnewswire/SubsNoTitleAttributes.opml": "an OPML subscription list",
    "realworld/netnewswire/ScriptingNews.json": "Dave Winer's RSS-in-JSON, not a JSON Feed",
}
MAX_REALWORLD_NOT_FEEDS = 5


MISSING = "corpus-missing"  # stands in for the files, so a missing corpus fails rather than skips


def _corpus_files(folder: str) -> list[str]:
    root = CORPUS / folder
    if not root.is_dir():
        return [MISSING]
    return sorted(str(path.relative_to(CORPUS)) for path in root.rglob("*") if path.is_file())


REALWORLD = _corpus_files("realworld")
MALFORMED = _corpus_files("malformed")


def require_corpus() -> None:
    if not CORPUS.is_dir():
        pytest.fail(
            f"feed corpus not found at {CORPUS}; set AGGREGATOR_CORPUS to the shared corpus folder"
        )


def test_corpus_is_present() -> None:
    require_corpus()
    assert len(REALWORLD) > 300, f"expected the ~341 real-world feeds under {CORPUS / 'realworld'}"
    assert len(MALFORMED) > 400, f"expected the ~424 malformed files under {CORPUS / 'malformed'}"


@functools.cache
def parse_error_of(relative: str) -> str | None:
    """Parse and normalize one corpus file; its ParseError message, or None for a feed.

    Anything but ParseError propagates and fails the calling test; so does an
    unsafe value in any normalized item.
    """
    path = CORPUS / relative
    content = path.read_bytes()
    if path.suffix == ".gz":  # as an HTTP client undoes Content-Encoding: gzip
        content = gzip.decompress(content)
    content_type = "application/feed+json" if path.suffix == ".json" else None
    try:
        feed = parse_feed(
            content, content_type=content_type, url=f"https://corpus.example/{relative}"
        )
    except ParseError as exc:
        return str(exc)
    items = normalize_items(feed.items, source_name="corpus", now=NOW)
    assert len(items) == len(feed.items)
    assert len({item.entry_key for item in items}) == len(items)
    for item in items:
        problems = unsafe_values(item)
        assert not problems, f"{relative}: item {item.entry_key!r}: {problems}"
    return None


@pytest.mark.parametrize("relative", REALWORLD)
def test_realworld_file(relative: str) -> None:
    require_corpus()
    error = parse_error_of(relative)
    if relative in REALWORLD_NOT_FEEDS:
        assert error is not None, f"{relative} is listed as not a feed but parsed"
    else:
        assert error is None, f"{relative} no longer parses: {error}"


@pytest.mark.parametrize("relative", MALFORMED)
def test_malformed_file(relative: str) -> None:
    require_corpus()
    error = parse_error_of(relative)
    if "/html-instead-of-feed/" in relative or relative.endswith(".html"):
        assert error is not None and "HTML page" in error


def test_realworld_failures_are_few_and_exactly_the_listed_ones() -> None:
    require_corpus()
    failing = {relative for relative in REALWORLD if parse_error_of(relative) is not None}
    assert failing == set(REALWORLD_NOT_FEEDS)
    assert len(failing) <= MAX_REALWORLD_NOT_FEEDS


# --- what "safe" means for a normalized item ----------------------------------------

_SAFE_SCHEMES = {"http", "https", "mailto"}


class _MarkupAudit(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style", "iframe", "object", "embed", "form", "applet"}:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"{tag}@{name}")
            if name in {"href", "src"} and value and ":" in value:
                scheme = re.sub(r"[\x00-\x20]", "", value).partition(":")[0].lower()
                if scheme not in _SAFE_SCHEMES and "/" not in scheme:
                    self.problems.append(f"{tag}@{name}={value[:60]}")


def unsafe_values(item: Item) -> list[str]:
    problems = []
    strings = [v for v in (getattr(item, f.name) for f in fields(item)) if isinstance(v, str)]
    strings += item.authors
    strings += [s for c in item.categories for s in (c.term, c.domain, c.label) if s]
    strings += [s for e in item.enclosures for s in (e.url, e.type) if s]
    for value in strings:
        lowered = value.lower()
        if "<script" in lowered or "onerror=" in lowered:
            problems.append(value[:80])
    for markup in (item.content_html, item.summary_html):
        if markup is not None:
            audit = _MarkupAudit()
            audit.feed(markup)
            audit.close()
            problems += audit.problems
    for url in (item.link, item.source_link, *(e.url for e in item.enclosures)):
        if url is not None and not url.startswith(("http://", "https://")):
            problems.append(f"url {url[:60]}")
    return problems
