"""Bytes and headers -> ParsedFeed: RSS and Atom through feedparser, JSON Feed by hand.

Whatever the bytes contain, ``parse_feed`` returns a ParsedFeed or raises
ParseError; a library failing on hostile input is translated at this boundary.
"""

from __future__ import annotations

import codecs

from aggregator.exceptions import ParseError
from aggregator.parse.json_feed import is_json_media_type, looks_like_json, parse_json_feed
from aggregator.parse.xml_feed import parse_xml_feed
from aggregator.types import ParsedFeed

__all__ = ["parse_feed"]

_BLANK = b" \t\r\n\x00" + codecs.BOM_UTF8 + codecs.BOM_UTF16_LE + codecs.BOM_UTF16_BE


def parse_feed(content: bytes, *, content_type: str | None, url: str) -> ParsedFeed:
    """Parse a fetched document; relative links are resolved against ``url``.

    JSON Feed is recognised by its first byte ('{') or, failing that, by a JSON
    content type on a body that is not markup; everything else is read as XML.
    """
    if not content.strip(_BLANK):
        raise ParseError("not a feed: the document is empty")
    if looks_like_json(content) or (
        is_json_media_type(content_type) and not content.lstrip(_BLANK).startswith(b"<")
    ):
        return parse_json_feed(content, url=url)
    return parse_xml_feed(content, content_type=content_type, url=url)
