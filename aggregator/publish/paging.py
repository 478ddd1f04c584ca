"""Paged feeds (RFC 5005, section 3): each page of a feed links the first page, the
previous one and the next one, so that a reader can walk back through older entries.

Page 1 is the feed's own address; page N is the same address with ``?page=N``. A
static copy, which no query string can reach, names page N ``{slug}.page{N}.{format}``.
"""

from __future__ import annotations

from typing import Any

from feedgen.ext.base import BaseExtension
from lxml import etree

from aggregator.types import FeedPage

ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
MAX_PAGE = 10_000  # deeper pages are refused: each costs a query that skips all before


def page_url(page: FeedPage, fmt: str, number: int) -> str:
    """Where page ``number`` of this feed is served in format ``fmt``."""
    if number == 1:
        return f"{page.self_url}.{fmt}"
    if page.static:
        return f"{page.self_url}.page{number}.{fmt}"
    return f"{page.self_url}.{fmt}?page={number}"


def page_links(page: FeedPage, fmt: str) -> list[tuple[str, str]]:
    """(rel, href) of the links between pages that this page carries: none for a feed
    that fits on one page."""
    if page.page == 1 and not page.has_next:
        return []
    links = [("first", page_url(page, fmt, 1))]
    if page.page > 1:  # RFC 5005 says "previous"; readers also look for its synonym
        links.append(("previous", page_url(page, fmt, page.page - 1)))
        links.append(("prev", page_url(page, fmt, page.page - 1)))
    if page.has_next:
        links.append(("next", page_url(page, fmt, page.page + 1)))
    return links


def parse_page_number(raw: str | None) -> int | None:
    """The page a ``page`` query parameter asks for (1 when absent); None when it is
    not a page number."""
    if raw is None:
        return 1
    if not raw.isascii() or not raw.isdigit():
        return None
    number = int(raw)
    return number if 1 <= number <= MAX_PAGE else None


class ChannelLinks(BaseExtension):  # type: ignore[misc]  # feedgen ships no types
    """A feedgen extension that puts ``atom:link`` elements into an RSS channel:
    feedgen writes only the one with ``rel="self"``."""

    def __init__(self) -> None:
        self.links: list[tuple[str, str, str | None]] = []  # rel, href, type

    def extend_ns(self) -> dict[str, str]:
        return {"atom": ATOM_NAMESPACE}

    def extend_rss(self, feed: Any) -> Any:
        channel = feed.find("channel")
        items = channel.find("item")
        at = channel.index(items) if items is not None else len(channel)  # before the items
        for offset, (rel, href, media_type) in enumerate(self.links):
            link = etree.Element(f"{{{ATOM_NAMESPACE}}}link", href=href, rel=rel)
            if media_type:
                link.set("type", media_type)
            channel.insert(at + offset, link)
        return feed
