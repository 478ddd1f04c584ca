"""RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 through feedparser, hardened before and after.

Before feedparser sees the bytes:
  * UTF-16/32 documents are transcoded to UTF-8 (feedparser misreads them without a BOM);
  * an internal DTD subset is cut out, so no entity can expand (billion laughs,
    quadratic blowup, external entities);
  * the root element is noted, to tell an HTML page from other non-feeds.
After: feedparser's loosely typed dicts are mapped to ``ParsedItem``; markup is
left as the outlet sent it (feedparser's sanitizer is off, ``process`` runs nh3).
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass
from typing import Any

import feedparser

from aggregator.exceptions import ParseError
from aggregator.parse.fields import HTML_TYPES, as_html, enclosures_of, struct_to_datetime, ttl_of
from aggregator.parse.lxml_feed import read_plain_feed
from aggregator.types import Category, ParsedFeed, ParsedItem

_HTML_ROOTS = frozenset({b"html", b"head", b"body"})

_WIDE_BOMS = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
_WIDE_CHARSETS = frozenset(
    {"utf-16", "utf16", "utf-16le", "utf-16be", "utf-32", "utf32", "utf-32le", "utf-32be",
     "ucs-2", "ucs-4", "iso-10646-ucs-2", "iso-10646-ucs-4", "csunicode"}
)  # fmt: skip
_CHARSET_PARAM = re.compile(r";\s*charset\s*=\s*[\"']?([^\s;\"']+)", re.IGNORECASE)
_XML_DECL_ENCODING = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*<\?xml[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)"
)
_SPACE = re.compile(rb"[ \t\r\n]*")
_NAME = re.compile(rb"[A-Za-z_][\w:.-]*")
_DOCTYPE_TOKEN = re.compile(rb"[\"'\[>]")
_SUBSET_TOKEN = re.compile(rb"[\"'\]]|<!--")


def parse_xml_feed(content: bytes, *, content_type: str | None, url: str) -> ParsedFeed:
    """Parse an RSS or Atom document; ParseError when it is not one."""
    data, charset = _ascii_compatible(content, _charset_of(content_type))
    prolog = _scan_prolog(data)
    if charset in (None, "utf-8") and prolog.subset is None:
        plain = read_plain_feed(data, url=url)
        if plain is not None:
            return plain
    if prolog.subset is not None:
        start, end = prolog.subset
        data = data[:start] + data[end:]
    result = _dict(_run_feedparser(data, charset=charset, url=url))
    version = _str(result, "version")
    if not version:
        # Decided after feedparser: some real feeds sit inside an XHTML wrapper.
        is_html = prolog.is_html or "html" in (content_type or "").lower()
        raise ParseError(_not_a_feed_message(result, is_html=is_html))
    feed = _dict(_get(result, "feed"))
    language = _str(feed, "language")
    return ParsedFeed(
        version=version,
        title=_str(feed, "title"),
        link=_str(feed, "link"),
        language=language,
        items=tuple(
            _item(_dict(entry), feed_language=language, url=url)
            for entry in _list(result, "entries")
        ),
        warning=_warning(result),
        ttl=ttl_of(_str(feed, "ttl")),
    )


# --- before feedparser -------------------------------------------------------


def _charset_of(content_type: str | None) -> str | None:
    match = _CHARSET_PARAM.search(content_type or "")
    return match.group(1).lower() if match else None


def _ascii_compatible(data: bytes, charset: str | None) -> tuple[bytes, str | None]:
    """The document in an ASCII-compatible encoding, and the charset to declare for it.

    The declared charset wins over the XML declaration (RFC 7303), except when it
    names a UTF-16/32 encoding that the bytes plainly are not.
    """
    wide = _sniff_wide_encoding(data)
    if wide is not None:
        codec, bom_length = wide
        return data[bom_length:].decode(codec, "replace").encode("utf-8"), "utf-8"
    if charset in _WIDE_CHARSETS:
        charset = None
    declared = _XML_DECL_ENCODING.match(data[:300])
    if charset is None and declared and declared.group(1).decode().lower() in _WIDE_CHARSETS:
        charset = "utf-8"  # an ASCII-readable declaration cannot be UTF-16
    return data, charset


def _sniff_wide_encoding(data: bytes) -> tuple[str, int] | None:
    """(codec, BOM length) for UTF-16/32 text, told by its BOM or by where the NULs are."""
    for bom, codec in _WIDE_BOMS:
        if data.startswith(bom):
            return codec, len(bom)
    if len(data) < 4:
        return None
    zero = [byte == 0 for byte in data[:4]]
    if zero == [True, True, True, False]:
        return "utf-32-be", 0
    if zero == [False, True, True, True]:
        return "utf-32-le", 0
    if zero == [True, False, True, False]:
        return "utf-16-be", 0
    if zero == [False, True, False, True]:
        return "utf-16-le", 0
    return None


@dataclass(frozen=True, slots=True)
class _Prolog:
    is_html: bool
    subset: tuple[int, int] | None  # byte span of "[...]" in <!DOCTYPE name [...]>


def _scan_prolog(data: bytes) -> _Prolog:
    """Find the DOCTYPE's internal subset and the root element, in one linear pass."""
    position = _skip_misc(data, len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
    doctype_name = b""
    subset = None
    if data[position : position + 9].upper() == b"<!DOCTYPE":
        name_start = _SPACE.match(data, position + 9)
        name = _NAME.match(data, name_start.end()) if name_start else None
        doctype_name = name.group().lower() if name else b""
        subset, position = _doctype_end(data, position + 9)
        position = _skip_misc(data, position)
    root = _NAME.match(data, position + 1) if data[position : position + 1] == b"<" else None
    root_name = root.group().lower() if root else b""
    return _Prolog(
        is_html=doctype_name == b"html" or root_name in _HTML_ROOTS,
        subset=subset,
    )


def _skip_misc(data: bytes, position: int) -> int:
    """Skip whitespace, processing instructions and comments."""
    while True:
        match = _SPACE.match(data, position)
        position = match.end() if match else position
        if data.startswith(b"<?", position):
            end, length = data.find(b"?>", position + 2), 2
        elif data.startswith(b"<!--", position):
            end, length = data.find(b"-->", position + 4), 3
        else:
            return position
        if end < 0:
            return len(data)
        position = end + length


def _doctype_end(data: bytes, position: int) -> tuple[tuple[int, int] | None, int]:
    """(span of the internal subset or None, position after the DOCTYPE's closing '>')."""
    subset_start = None
    while (token := _DOCTYPE_TOKEN.search(data, position)) is not None:
        if token.group() == b">":
            subset = (subset_start, token.start()) if subset_start is not None else None
            return subset, token.end()
        if token.group() == b"[" and subset_start is None:
            subset_start = token.start()
            position = _subset_end(data, token.end())
        elif token.group() == b"[":
            position = token.end()
        else:
            position = _after_quote(data, token.start())
    raise ParseError("not a feed: the DOCTYPE declaration is not closed")


def _subset_end(data: bytes, position: int) -> int:
    """Position just after the ']' closing an internal subset that starts at ``position``."""
    while True:
        token = _SUBSET_TOKEN.search(data, position)
        if token is None:
            raise ParseError("not a feed: the DOCTYPE declaration is not closed")
        if token.group() == b"]":
            return token.end()
        if token.group() == b"<!--":
            end = data.find(b"-->", token.end())
            position = len(data) if end < 0 else end + 3
        else:
            position = _after_quote(data, token.start())


def _after_quote(data: bytes, position: int) -> int:
    end = data.find(data[position : position + 1], position + 1)
    if end < 0:
        raise ParseError("not a feed: a quoted value in the DOCTYPE is not closed")
    return end + 1


def _run_feedparser(data: bytes, *, charset: str | None, url: str) -> Any:
    media_type = f"application/xml; charset={charset}" if charset else "application/xml"
    try:
        # A BytesIO, not bytes: feedparser would try bytes that look like a path as a file.
        return feedparser.parse(
            io.BytesIO(data),
            response_headers={"content-type": media_type, "content-location": url},
            sanitize_html=False,
            # Relative URLs in markup are resolved by ``process``, against ParsedItem.base.
            resolve_relative_uris=False,
        )
    except Exception as exc:  # the library's own failure on hostile bytes
        raise ParseError(f"unreadable feed: {type(exc).__name__}: {exc}") from exc


# --- after feedparser --------------------------------------------------------
# feedparser's dicts are read with dict.get: FeedParserDict.get aliases keys
# (updated -> published) and warns about it.


def _not_a_feed_message(result: dict[str, Any], *, is_html: bool) -> str:
    if is_html:
        return "not a feed: the document is an HTML page"
    detail = _warning(result)
    suffix = f" ({detail})" if detail else ""
    return f"not a feed: no RSS or Atom document found{suffix}"


def _warning(result: dict[str, Any]) -> str | None:
    if not _get(result, "bozo"):
        return None
    exception = _get(result, "bozo_exception")
    return str(exception) if exception is not None else "the document is not well-formed"


def _item(entry: dict[str, Any], *, feed_language: str | None, url: str) -> ParsedItem:
    title_detail = _dict(_get(entry, "title_detail"))
    content = _first_content(entry)
    summary_detail = _dict(_get(entry, "summary_detail"))
    return ParsedItem(
        guid=_str(entry, "id"),
        link=_str(entry, "link"),
        title=_str(entry, "title"),
        title_is_html=(_str(title_detail, "type") or "").lower() in HTML_TYPES,
        content_html=_as_html(content),
        summary_html=_as_html(summary_detail),
        published=struct_to_datetime(_get(entry, "published_parsed")),
        updated=struct_to_datetime(_get(entry, "updated_parsed")),
        authors=_authors(entry),
        categories=_categories(entry),
        enclosures=enclosures_of([_dict(link) for link in _list(entry, "links")], url),
        language=_language(content, summary_detail, title_detail) or feed_language,
        base=_str(content, "base") or _str(summary_detail, "base") or url,
    )


def _first_content(entry: dict[str, Any]) -> dict[str, Any]:
    for content in _list(entry, "content"):
        detail = _dict(content)
        if _as_html(detail) is not None:
            return detail
    return {}


def _as_html(detail: dict[str, Any]) -> str | None:
    return as_html(_str(detail, "value"), _str(detail, "type"))


def _authors(entry: dict[str, Any]) -> tuple[str, ...]:
    names = []
    for author in _list(entry, "authors"):
        detail = _dict(author)
        name = _str(detail, "name") or _str(detail, "email")
        if name:
            names.append(name)
    if not names and (single := _str(entry, "author")):
        names.append(single)
    return tuple(names)


def _categories(entry: dict[str, Any]) -> tuple[Category, ...]:
    categories = []
    for tag in _list(entry, "tags"):
        detail = _dict(tag)
        term = _str(detail, "term")
        if term:
            categories.append(
                Category(term=term, domain=_str(detail, "scheme"), label=_str(detail, "label"))
            )
    return tuple(categories)


def _language(*details: dict[str, Any]) -> str | None:
    for detail in details:
        language = _str(detail, "language")
        if language:
            return language
    return None


def _get(detail: dict[str, Any], key: str) -> Any:
    return dict.get(detail, key)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(detail: dict[str, Any], key: str) -> list[Any]:
    value = _get(detail, key)
    return value if isinstance(value, list) else []


def _str(detail: dict[str, Any], key: str) -> str | None:
    value = _get(detail, key)
    return value if isinstance(value, str) else None
