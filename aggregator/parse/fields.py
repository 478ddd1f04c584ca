"""Field conversions shared by the XML readers (feedparser's and lxml's)."""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

from aggregator.types import Enclosure

MAX_TTL_MINUTES = 7 * 24 * 60
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def as_html(value: str | None, media_type: str | None) -> str | None:
    """A text construct as HTML: text escaped, markup kept, other media types dropped."""
    if value is None:
        return None
    media_type = (media_type or "text/html").lower()
    if media_type in HTML_TYPES:
        return value
    if media_type.startswith("text/"):
        return html.escape(value)
    return None


def struct_to_datetime(parsed: object) -> datetime | None:
    """feedparser's UTC struct_time as an aware datetime; None when it is not a real date."""
    if not isinstance(parsed, time.struct_time):
        return None
    try:
        return datetime(*parsed[:5], min(parsed.tm_sec, 59), tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def ttl_of(value: str | None) -> timedelta | None:
    """RSS <ttl>, in minutes; nonsense (negative, huge, not a number) is ignored."""
    try:
        minutes = int((value or "").strip())
    except ValueError:
        return None
    return timedelta(minutes=minutes) if 0 < minutes <= MAX_TTL_MINUTES else None


def enclosures_of(links: Sequence[Mapping[str, Any]], url: str) -> tuple[Enclosure, ...]:
    """Enclosures among an entry's links, hrefs resolved against the document URL."""
    enclosures = []
    for link in links:
        href = link.get("href")
        if link.get("rel") != "enclosure" or not isinstance(href, str) or not href:
            continue
        try:
            absolute = urljoin(url, href.strip())
        except ValueError:  # e.g. a malformed IPv6 host
            continue
        media_type = link.get("type")
        enclosures.append(
            Enclosure(
                url=absolute,
                type=media_type if isinstance(media_type, str) else None,
                length=_length(link.get("length")),
            )
        )
    return tuple(enclosures)


def _length(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    digits = value.strip()
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        return None
    return int(digits)
