"""RSS 2.0 rendering of a merged feed, via feedgen."""

from __future__ import annotations

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
    is_web_url,
    rendered_xml,
    series_scheme,
    xml_safe,
)
from aggregator.publish.paging import ChannelLinks, page_links, page_url
from aggregator.types import FeedPage, PublishedEntry

RSS_MEDIA_TYPE = "application/rss+xml"
# RSS requires a type on <enclosure>; this is what "unknown bytes" is called.
_UNKNOWN_MEDIA_TYPE = "application/octet-stream"


def render_rss(page: FeedPage) -> bytes:
    """The page as an RSS 2.0 document, entries in the page's order (newest first)."""
    return rendered_xml(page, _rss, "RSS")


def _rss(page: FeedPage, clean_body: CleanBody) -> bytes:
    feed = FeedGenerator()
    feed.title(xml_safe(page.title))
    # RSS requires a non-empty channel description.
    feed.description(xml_safe(page.description) or xml_safe(page.title))
    feed.link(href=page_url(page, "rss", page.page), rel="self", type=RSS_MEDIA_TYPE)
    # feedgen's RSS <link> is the href of the link added last.
    feed.link(href=page.home_url, rel="alternate")
    feed.register_extension("channel_links", ChannelLinks, atom=False, rss=True)
    links: list[tuple[str, str, str | None]] = [
        (rel, href, RSS_MEDIA_TYPE) for rel, href in page_links(page, "rss")
    ]
    if page.hub:
        links.append(("hub", page.hub, None))
    feed.channel_links.links = links
    language = feed_language(page)
    if language:
        feed.language(language)
    feed.generator("aggregator", version=__version__)
    # updated() also sets lastBuildDate, which feedgen otherwise stamps with "now".
    feed.updated(page.updated)
    feed.pubDate(page.updated)

    scheme = series_scheme(page)
    for entry in page.entries:
        _add_item(feed.add_entry(order="append"), entry, scheme, clean_body)
    document: bytes = feed.rss_str(pretty=True, encoding="UTF-8")
    return document


def _add_item(
    item: FeedEntry, entry: PublishedEntry, series_scheme: str, clean_body: CleanBody
) -> None:
    item.guid(entry_id(entry), permalink=False)
    item.title(entry_title(entry))
    if entry.link is not None:
        item.link(href=entry.link, rel="alternate")
    body = entry_body_html(entry)
    if body:
        item.description(clean_body(body))
    item.published(entry.published)

    for fields in category_fields(entry, series_scheme, with_label=False):
        item.category(fields)

    if entry.enclosures:  # RSS allows one enclosure per item
        enclosure = entry.enclosures[0]
        item.link(
            href=enclosure.url,
            rel="enclosure",
            type=enclosure.type or _UNKNOWN_MEDIA_TYPE,
            length=str(enclosure.length or 0),
        )

    # <source> names one outlet; the description footer credits all of them.
    credited = next((c for c in entry.credits if is_web_url(c.link)), None)
    if credited is not None and credited.link is not None:
        item.source(url=credited.link, title=xml_safe(credited.source_title))
