"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1), read field by field.

Every field is type-checked: a value of the wrong type is treated as absent, a
non-dict item is skipped. Only a document that is not JSON, is not a JSON Feed,
or has no ``items`` list is a ParseError.
"""

from __future__ import annotations

import codecs
import html
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from aggregator.exceptions import ParseError
from aggregator.types import Category, Enclosure, ParsedFeed, ParsedItem

JSON_MEDIA_TYPES = frozenset({"application/feed+json", "application/json"})
_VERSIONS = {
    "https://jsonfeed.org/version/1": "json10",
    "https://jsonfeed.org/version/1.1": "json11",
}
_WHITESPACE = b" \t\r\n"
_MAX_LENGTH = 2**63  # fits the store's BIGINT


def is_json_media_type(content_type: str | None) -> bool:
    media_type = (content_type or "").partition(";")[0].strip().lower()
    return media_type in JSON_MEDIA_TYPES


def looks_like_json(content: bytes) -> bool:
    """True when the first byte after an optional UTF-8 BOM and whitespace is '{'."""
    body = content[len(codecs.BOM_UTF8) :] if content.startswith(codecs.BOM_UTF8) else content
    return body.lstrip(_WHITESPACE)[:1] == b"{"


def parse_json_feed(content: bytes, *, url: str) -> ParsedFeed:
    """Parse a JSON Feed document; ParseError when it is not one."""
    try:
        document = json.loads(content)
    except (ValueError, RecursionError) as exc:  # invalid, truncated, too deeply nested
        raise ParseError(f"not a feed: invalid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise ParseError("not a feed: the JSON document is not an object")
    version = _version(document.get("version"))
    if version is None:
        raise ParseError(
            "not a feed: the JSON document is not a JSON Feed (no jsonfeed.org version)"
        )
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError("not a feed: the JSON Feed has no items list")
    home_page = _url(url, document.get("home_page_url"))
    base = home_page or url
    language = _str(document.get("language"))
    feed_authors = _authors(document)
    return ParsedFeed(
        version=version,
        title=_str(document.get("title")),
        link=home_page,
        language=language,
        items=tuple(
            _item(item, base=base, feed_language=language, feed_authors=feed_authors)
            for item in items
            if isinstance(item, dict)
        ),
    )


def parse_rfc3339(value: object) -> datetime | None:
    """An RFC 3339 timestamp as aware UTC; None for anything that is not one.

    Lenient where it costs nothing: "Z" or "z", a space for "T", "+0100" offsets;
    a timestamp without an offset is taken as UTC.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _version(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return _VERSIONS.get(value.strip().rstrip("/").replace("http://", "https://", 1))


def _item(
    item: dict[str, Any],
    *,
    base: str,
    feed_language: str | None,
    feed_authors: tuple[str, ...],
) -> ParsedItem:
    content_html = _str(item.get("content_html"))
    content_text = _str(item.get("content_text"))
    summary = _str(item.get("summary"))
    return ParsedItem(
        guid=_id(item.get("id")),
        link=_url(base, item.get("url")) or _url(base, item.get("external_url")),
        title=_str(item.get("title")),
        title_is_html=False,
        content_html=content_html if content_html is not None else _escaped(content_text),
        summary_html=_escaped(summary),
        published=parse_rfc3339(item.get("date_published")),
        updated=parse_rfc3339(item.get("date_modified")),
        authors=_authors(item) or feed_authors,
        categories=tuple(
            Category(term=tag) for tag in _list(item.get("tags")) if isinstance(tag, str)
        ),
        enclosures=_enclosures(item, base),
        language=_str(item.get("language")) or feed_language,
    )


def _id(value: object) -> str | None:
    """The item id; the spec asks readers to coerce a number to a string."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _authors(holder: dict[str, Any]) -> tuple[str, ...]:
    """Names from ``authors`` (1.1), else ``author`` (1.0); a mailto: URL stands in for a name."""
    authors = _list(holder.get("authors")) or [holder.get("author")]
    names = []
    for author in authors:
        if not isinstance(author, dict):
            continue
        name = _str(author.get("name"))
        address = _str(author.get("url"))
        if not name and address and address.lower().startswith("mailto:"):
            name = address[len("mailto:") :]
        if name:
            names.append(name)
    return tuple(names)


def _enclosures(item: dict[str, Any], base: str) -> tuple[Enclosure, ...]:
    enclosures = []
    for attachment in _list(item.get("attachments")):
        if not isinstance(attachment, dict):
            continue
        url = _url(base, attachment.get("url"))
        if url is None:
            continue
        enclosures.append(
            Enclosure(
                url=url,
                type=_str(attachment.get("mime_type")),
                length=_size(attachment.get("size_in_bytes")),
            )
        )
    return tuple(enclosures)


def _size(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and 0 <= value < _MAX_LENGTH else None


def _url(base: str, value: object) -> str | None:
    reference = _str(value)
    if not reference or not reference.strip():
        return None
    try:
        return urljoin(base, reference.strip())
    except ValueError:  # e.g. a malformed IPv6 host
        return None


def _escaped(text: str | None) -> str | None:
    return html.escape(text) if text is not None else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
