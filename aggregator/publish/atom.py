"""Atom 1.0 rendering of a merged feed, via feedgen."""

from __future__ import annotations

from typing import Any

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator

from aggregator import __version__
from aggregator.publish.credits import (
    CleanBody,
    category_fields,
    entry_body_html,
    entry_id,
    entry_title,
    feed_language,
    first_credit_link,
    outlet_names,
    rendered_xml,
    series_scheme,
    xml_safe,
)
from aggregator.publish.paging import page_links, page_url
from aggregator.types import Enclosure, FeedPage, PublishedEntry

ATOM_MEDIA_TYPE = "application/atom+xml"


def render_atom(page: FeedPage) -> bytes:
    """The page as an Atom 1.0 document, entries in the page's order (newest first)."""
    return rendered_xml(page, _atom, "Atom")


def _atom(page: FeedPage, clean_body: CleanBody) -> bytes:
    feed = FeedGenerator()
    feed.id(page.self_url)
    feed.title(xml_safe(page.title))
    if page.description:
        feed.subtitle(xml_safe(page.description))
    feed.link(href=page_url(page, "atom", page.page), rel="self", type=ATOM_MEDIA_TYPE)
    for rel, href in page_links(page, "atom"):
        feed.link(href=href, rel=rel, type=ATOM_MEDIA_TYPE)
    if page.hub:
        feed.link(href=page.hub, rel="hub")
    feed.link(href=page.home_url, rel="alternate", type="text/html")
    language = feed_language(page)
    if language:
        feed.language(language)  # the feed's xml:lang
    feed.generator("aggregator", version=__version__)
    feed.updated(page.updated)  # feedgen would otherwise stamp "now"
    # Atom wants an author on the feed unless every entry names one.
    if any(not (entry.credits or entry.authors) for entry in page.entries):
        feed.author({"name": xml_safe(page.title)})

    scheme = series_scheme(page)
    for entry in page.entries:
        _add_entry(feed.add_entry(order="append"), entry, scheme, clean_body)
    document: bytes = feed.atom_str(pretty=True, encoding="UTF-8")
    return document


def _add_entry(
    item: FeedEntry, entry: PublishedEntry, series_scheme: str, clean_body: CleanBody
) -> None:
    item.id(entry_id(entry))
    item.title(entry_title(entry))
    item.updated(entry.updated)
    item.published(entry.published)

    if entry.credits:
        item.author({"name": xml_safe(outlet_names(entry.credits))})
    for author in entry.authors:
        if author:
            item.author({"name": xml_safe(author)})

    item.content(clean_body(entry_body_html(entry)), type="html")
    if entry.content_html and entry.summary_html:
        item.summary(clean_body(entry.summary_html), type="html")

    link = entry.link or first_credit_link(entry.credits)
    if link is not None:
        item.link(href=link, rel="alternate")
    if entry.enclosures:
        item.register_extension("enclosure_links", _EnclosureLinks, atom=True, rss=False)
        item.enclosure_links.enclosures = entry.enclosures

    for fields in category_fields(entry, series_scheme, with_label=True):
        item.category(fields)


class _EnclosureLinks:
    """A feedgen entry extension that writes ``<link rel="enclosure">`` elements.

    feedgen 1.0 drops every attribute but ``href`` from entry links (its loop variable
    is shadowed by the new element), which would turn enclosures into alternate links.
    """

    def __init__(self) -> None:
        self.enclosures: tuple[Enclosure, ...] = ()

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_rss(self, item: Any) -> Any:
        return item

    def extend_atom(self, entry: Any) -> Any:
        for enclosure in self.enclosures:
            attributes = {"rel": "enclosure", "href": enclosure.url}
            if enclosure.type:
                attributes["type"] = enclosure.type
            if enclosure.length is not None:
                attributes["length"] = str(enclosure.length)
            entry.append(entry.makeelement("link", attributes))
        return entry
