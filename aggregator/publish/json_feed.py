"""JSON Feed 1.1 rendering of a merged feed (https://www.jsonfeed.org/version/1.1/).

Besides the standard fields, each item carries an ``_aggregator`` extension object
listing every outlet that carried it, the series it belongs to and why (the rule, and
the item that matched it), and the story it reports.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aggregator.publish.credits import (
    entry_body_html,
    entry_id,
    feed_language,
    first_credit_link,
    is_web_url,
    site_base_url,
)
from aggregator.publish.paging import page_url
from aggregator.types import Enclosure, FeedPage, PublishedEntry, StorySeries

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
JSON_FEED_MEDIA_TYPE = "application/feed+json"
# JSON Feed requires a mime_type on every attachment.
_UNKNOWN_MEDIA_TYPE = "application/octet-stream"

JsonObject = dict[str, object]


def render_json_feed(page: FeedPage) -> bytes:
    """The page as a UTF-8 JSON Feed 1.1 document, items in the page's order."""
    document: JsonObject = {
        "version": JSON_FEED_VERSION,
        "title": page.title,
        "home_page_url": page.home_url,
        "feed_url": page_url(page, "json", page.page),
    }
    if page.has_next:
        document["next_url"] = page_url(page, "json", page.page + 1)
    if page.hub:
        document["hubs"] = [{"type": "WebSub", "url": page.hub}]
    if page.description:
        document["description"] = page.description
    language = feed_language(page)
    if language:
        document["language"] = language
    base_url = site_base_url(page)
    document["items"] = [_item(entry, base_url=base_url) for entry in page.entries]
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _item(entry: PublishedEntry, *, base_url: str) -> JsonObject:
    item: JsonObject = {"id": entry_id(entry)}
    url = entry.link or first_credit_link(entry.credits)
    if url is not None:
        item["url"] = url
    if entry.title:
        item["title"] = entry.title
    item["content_html"] = entry_body_html(entry)
    item["date_published"] = _rfc3339(entry.published)
    item["date_modified"] = _rfc3339(entry.updated)

    authors: list[JsonObject] = []
    for credit in entry.credits:
        author: JsonObject = {"name": credit.source_title}
        if is_web_url(credit.link):
            author["url"] = credit.link
        authors.append(author)
    authors.extend({"name": name} for name in entry.authors if name)
    if authors:
        item["authors"] = authors

    tags = list(dict.fromkeys(c.term for c in entry.categories if c.term))
    if tags:
        item["tags"] = tags
    if entry.language:
        item["language"] = entry.language
    if entry.enclosures:
        item["attachments"] = [_attachment(enclosure) for enclosure in entry.enclosures]

    why = {found.slug: found for found in entry.why}
    extension: JsonObject = {
        "outlets": [
            {
                "source": credit.source,
                "title": credit.source_title,
                "url": credit.link,
                "guid": credit.guid,
            }
            for credit in entry.credits
        ],
        "series": [_series(slug, why.get(slug), base_url) for slug in entry.series],
    }
    if entry.story is not None:
        extension["story"] = f"{base_url}/stories/{entry.story}.json"
    item["_aggregator"] = extension
    return item


def _series(slug: str, why: StorySeries | None, base_url: str) -> JsonObject:
    """A series the entry is in, and why: the rule that matched, and the item it matched
    (the entry's own, or the report that brought its story in)."""
    found: JsonObject = {"slug": slug, "feed_url": f"{base_url}/series/{slug}.json"}
    if why is not None:
        found["reason"] = why.reason
        found["item"] = why.item_id
    return found


def _attachment(enclosure: Enclosure) -> JsonObject:
    attachment: JsonObject = {
        "url": enclosure.url,
        "mime_type": enclosure.type or _UNKNOWN_MEDIA_TYPE,
    }
    if enclosure.length is not None:
        attachment["size_in_bytes"] = enclosure.length
    return attachment


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()
