"""RSS 2.0 and Atom 1.0 read directly with lxml, where feedparser would read them the same.

feedparser stays the reference (``xml_feed``), but it spends most of a poll's CPU.
This path reproduces what feedparser's strict parser makes of a well-formed UTF-8
document built only from the elements listed below, with feedparser's own helpers for
dates, URL joining, href attributes and text repairs, and tracks ``xml:base`` as it
does. Anything it does not reproduce exactly (a DOCTYPE, another encoding, markup
nested in a text field, an element feedparser handles that is not listed here, a
repeated singular field, ...) makes it return None, and the document goes to
feedparser. tests/test_parse_equivalence.py holds it to feedparser's output
over the whole shared corpus.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import feedparser.api
import feedparser.mixin
import feedparser.urls
from feedparser.datetimes import _parse_date
from lxml import etree

from aggregator.parse.fields import HTML_TYPES, as_html, enclosures_of, struct_to_datetime, ttl_of
from aggregator.types import Category, ParsedFeed, ParsedItem

_ATOM = "http://www.w3.org/2005/Atom"
_XML = "http://www.w3.org/XML/1998/namespace"
_XML_LANG = f"{{{_XML}}}lang"
_XML_BASE = f"{{{_XML}}}base"
_ATOM_LINK = f"{{{_ATOM}}}link"

_PARSER_CLASS: Any = feedparser.api.StrictFeedParser
_MIXIN: Any = feedparser.mixin._FeedParserMixin
_NAMESPACE_PREFIXES: dict[str, str] = {uri.lower(): p for uri, p in _MIXIN.namespaces.items()}
_CP1252: dict[int, str] = feedparser.mixin._cp1252
_looks_like_html: Callable[[str], bool] = _MIXIN.looks_like_html
_map_content_type: Callable[[str], str] = _MIXIN.map_content_type
_enforce_href: Callable[[dict[str, str]], dict[str, str]] = _MIXIN._enforce_href
_urljoin: Callable[[str, str], str] = feedparser.urls._urljoin
_make_safe_absolute_uri: Callable[[str, str], str] = feedparser.urls.make_safe_absolute_uri
_LINK_REFERENCE = re.compile("&([A-Za-z0-9_]+);")
_C1_CONTROLS = re.compile("[\x80-\x9f]")
_EMAIL = re.compile(
    r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|"""
    r"""(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"""
)


def _names(names: str) -> frozenset[str]:
    return frozenset(names.split())


# Keys of feedparser's dicts that ParsedFeed and ParsedItem are made from: an element
# feedparser has no handler for is stored under its own name, which must not be one.
_ENTRY_KEYS = _names(
    "id link links title title_detail content summary summary_detail published "
    "published_parsed updated updated_parsed author authors author_detail tags language "
    "guidislink"
)
_FEED_KEYS = _names("title title_detail link links language ttl entries")


@dataclass(frozen=True, slots=True)
class _Context:
    """What may appear inside one kind of element, by feedparser name."""

    read: frozenset[str]  # reproduced here
    # Read fields feedparser keeps one of, each under the field's name: more than one
    # element of a field makes its choice depend on details not reproduced here.
    fields: dict[str, str]
    ignored: frozenset[str]  # leaves feedparser handles without touching what is read
    containers: frozenset[str]  # like ignored, with children feedparser keeps to them
    keys: frozenset[str]


_CHANNEL = _Context(
    read=_names("title link atom:link language dc:language ttl item"),
    fields={
        "title": "title",
        "link": "link",
        "language": "language",
        "dc:language": "language",
        "ttl": "ttl",
    },
    ignored=_names(
        "description copyright managingeditor webmaster pubdate lastbuilddate category "
        "generator docs cloud author dc:creator dc:date dc:rights dc:publisher "
        "sy:updateperiod sy:updatefrequency sy:updatebase"
    ),
    containers=_names("image"),
    keys=_FEED_KEYS,
)
_RSS_ITEM = _Context(
    read=_names(
        "title link atom:link description guid pubdate published updated dc:date author "
        "dc:creator category dc:subject enclosure content:encoded"
    ),
    fields={
        "title": "title",
        "link": "link",
        "description": "summary",
        "guid": "id",
        "pubdate": "published",
        "published": "published",
        "updated": "updated",
        "dc:date": "updated",
        "content:encoded": "content",
    },
    ignored=_names(
        "comments source slash:comments wfw:commentrss wfw:comment media:content media:thumbnail"
    ),
    containers=frozenset(),
    keys=_ENTRY_KEYS,
)
_ATOM_FEED = _Context(
    read=_names("title link id entry"),
    fields={"title": "title", "id": "id"},
    ignored=_names("updated published subtitle generator icon logo rights category"),
    containers=_names("author"),
    keys=_FEED_KEYS,
)
_ATOM_ENTRY = _Context(
    read=_names("id title link published updated author category summary content"),
    fields={
        "id": "id",
        "title": "title",
        "published": "published",
        "updated": "updated",
        "summary": "summary",
        "content": "content",
    },
    ignored=_names("rights media:thumbnail media:content"),
    containers=frozenset(),
    keys=_ENTRY_KEYS,
)
# Children of containers feedparser keeps to the container (an image's title is the
# image's, an author's name the author's).
_CONTAINED = _names("title link url width height description name email uri")
_AUTHOR_PARTS = _names("name email uri")
# Attribute names feedparser acts on for the elements read here.
_ACTED_ON = _names("href url uri rel type ispermalink term scheme domain label src mode base lang")


class _Decline(Exception):
    """The document needs feedparser."""


_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    remove_comments=True,
    remove_pis=True,
    huge_tree=False,
    collect_ids=False,
)


def read_plain_feed(data: bytes, *, url: str) -> ParsedFeed | None:
    """The feed as feedparser would read it, or None when only feedparser can tell."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError:
        return None
    info = root.getroottree().docinfo
    if info.doctype or (info.encoding or "").lower() not in ("utf-8", "utf8"):
        return None  # entities or another encoding: feedparser's own handling
    try:
        if root.tag == "rss" and root.get("version") == "2.0":
            return _read_rss(root, url=url)
        if root.tag == f"{{{_ATOM}}}feed" and root.get("version") is None:
            return _read_atom(root, url=url)
    except _Decline:
        return None
    return None


# --- the document as feedparser names it --------------------------------------------


def _name(element: Any) -> str:
    """The name feedparser gives an element: 'content:encoded', 'pubdate', 'link'."""
    tag = element.tag
    if not isinstance(tag, str):
        raise _Decline  # an entity reference left in the tree
    if tag[0] != "{":
        return tag.lower()
    uri, local = tag[1:].split("}", 1)
    lower_uri = uri.lower()
    if tag == _ATOM_LINK and element.getparent().tag[0] != "{":
        return "atom:link"  # inside RSS: told apart from <link>, handled like Atom's
    if "backend.userland.com/rss" in lower_uri:
        prefix = ""
    else:
        prefix = _NAMESPACE_PREFIXES.get(lower_uri, element.prefix or "")
    local = local.lower()
    return f"{prefix.lower()}:{local}" if prefix else local


@functools.lru_cache(maxsize=1024)
def _has_handler(name: str) -> bool:
    method = name.replace(":", "_")
    return hasattr(_PARSER_CLASS, f"_start_{method}") or hasattr(_PARSER_CLASS, f"_end_{method}")


def _children(parent: Any, context: _Context) -> Iterator[tuple[str, Any]]:
    """(feedparser name, element) of each child read here; every other child is
    checked to be something feedparser keeps out of the way."""
    seen: set[str] = set()
    for child in parent:
        name = _name(child)
        if name in context.read:
            single = context.fields.get(name)
            if single is not None:
                if single in seen:
                    raise _Decline
                seen.add(single)
            yield name, child
        elif name in context.ignored:
            _check_leaf(child)
        elif name in context.containers:
            _check_container(child)
        elif _has_handler(name) or name.replace(":", "_") in context.keys:
            raise _Decline
        else:
            _check_unknown(child)


def _check_leaf(element: Any) -> None:
    if len(element):
        raise _Decline


def _check_container(element: Any) -> None:
    for child in element:
        name = _name(child)
        if name in _CONTAINED:
            _check_leaf(child)
        elif _has_handler(name):
            raise _Decline
        else:
            _check_unknown(child)


def _check_unknown(element: Any) -> None:
    """Nothing inside an element feedparser does not know may be one it does."""
    for descendant in element.iterdescendants():
        if _has_handler(_name(descendant)):
            raise _Decline


def _raw_text(element: Any) -> str:
    if len(element):
        raise _Decline  # markup inside a text field: feedparser re-serializes it
    return (element.text or "").strip()


def _text(element: Any) -> str:
    """Text as feedparser's pop() hands over a text element: stripped, then repaired."""
    text = _raw_text(element)
    if text.isascii():
        return text  # neither repair can change it
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        text = text.encode("iso-8859-1").decode("utf-8")  # UTF-8 once read as Latin-1
    return text.translate(_CP1252) if _C1_CONTROLS.search(text) else text


def _attributes(element: Any) -> dict[str, str]:
    """Attributes as feedparser sees them: names lower case, rel and type values too."""
    attributes: dict[str, str] = {}
    for key, value in element.attrib.items():
        if key[0] == "{":
            if key in (_XML_LANG, _XML_BASE):
                continue
            # feedparser also files it under its bare name, which may shadow another
            if key.split("}", 1)[1].lower() in _ACTED_ON:
                raise _Decline
            continue
        key = key.lower()
        if key == "base":
            raise _Decline
        attributes[key] = value.lower() if key in ("rel", "type") else value
    return attributes


def _no_attributes(element: Any) -> None:
    """For elements whose attributes feedparser ignores unless they are links."""
    if set(_attributes(element)) & _ACTED_ON:
        raise _Decline


def _base(parent_base: str, element: Any) -> str:
    """The base URI inside ``element``, tracked as feedparser tracks xml:base."""
    return _joined_base(parent_base, element.get(_XML_BASE) or parent_base)


@functools.lru_cache(maxsize=256)
def _joined_base(parent_base: str, value: str) -> str:
    return _make_safe_absolute_uri(parent_base, value) or parent_base


def _link_text(link: str) -> str:
    """feedparser's repair of query strings taken for character references."""
    return _LINK_REFERENCE.sub(r"&\g<1>", link) if "&" in link else link


def _language(element: Any) -> str | None:
    """xml:lang (or lang) in scope, as feedparser tracks it."""
    node = element
    while node is not None:
        value = node.get(_XML_LANG)
        if value is None:
            value = node.get("lang")
        if value is not None:
            return value.replace("_", "-") if value else None
        node = node.getparent()
    return None


# --- entries ---------------------------------------------------------------------------


@dataclass
class _Text:
    value: str
    media_type: str
    language: str | None
    base: str  # feedparser's "base" of the text: what its relative URLs are relative to


@dataclass
class _Entry:
    """feedparser's entry dict, reduced to what ParsedItem is made from."""

    id: str | None = None
    link: str | None = None
    title: _Text | None = None
    content: _Text | None = None
    summary: _Text | None = None
    published: Any = None
    updated: Any = None
    authors: list[dict[str, str]] = field(default_factory=list)
    tags: list[tuple[str | None, str | None, str | None]] = field(default_factory=list)
    links: list[dict[str, str]] = field(default_factory=list)

    def start_category(self, attributes: dict[str, str]) -> None:
        scheme = attributes.get("scheme", attributes.get("domain"))
        self._add_tag(attributes.get("term"), scheme, attributes.get("label"))

    def end_category(self, value: str) -> None:
        if not value:
            return
        if self.tags and not self.tags[-1][0]:
            _, scheme, label = self.tags[-1]
            self.tags[-1] = (value, scheme, label)
        else:
            self._add_tag(value, None, None)

    def _add_tag(self, term: str | None, scheme: str | None, label: str | None) -> None:
        if (term or scheme or label) and (term, scheme, label) not in self.tags:
            self.tags.append((term, scheme, label))

    def add_author_text(self, text: str) -> None:
        """An RSS author ("jane@example.com (Jane Doe)") split as feedparser does."""
        detail: dict[str, str] = {}
        self.authors.append(detail)
        if not text:
            return
        name, email = text, None
        match = _EMAIL.search(name)
        if match:
            email = match.group(0)
            name = name.replace(email, "").replace("()", "").replace("<>", "")
            name = name.replace("&lt;&gt;", "").strip()
            if name and name[0] == "(":
                name = name[1:]
            if name and name[-1] == ")":
                name = name[:-1]
            name = name.strip()
        if name:
            detail["name"] = name
        if email:
            detail["email"] = email

    def item(self, *, feed_language: str | None, url: str) -> ParsedItem:
        names = (author.get("name") or author.get("email") for author in self.authors)
        # feedparser's fallback to the bare author text never applies here: a non-empty
        # author always leaves a name or an email in its detail.
        authors = tuple(name for name in names if name)
        texts = (self.content, self.summary, self.title)
        language = next((text.language for text in texts if text and text.language), None)
        markup = self.content or self.summary
        return ParsedItem(
            guid=self.id,
            link=self.link,
            title=self.title.value if self.title else None,
            title_is_html=self.title is not None and self.title.media_type in HTML_TYPES,
            content_html=_html(self.content),
            summary_html=_html(self.summary),
            published=struct_to_datetime(self.published),
            updated=struct_to_datetime(self.updated),
            authors=authors,
            categories=tuple(
                Category(term=term, domain=scheme, label=label)
                for term, scheme, label in self.tags
                if term
            ),
            enclosures=enclosures_of(self.links, url),
            language=language or feed_language,
            base=markup.base if markup else url,
        )


def _html(text: _Text | None) -> str | None:
    return as_html(text.value, text.media_type) if text else None


def _date(element: Any) -> Any:
    return _parse_date(_text(element))


def _resolved(base: str, text: str) -> str:
    return _urljoin(base, text) if text else text


# --- RSS 2.0 ---------------------------------------------------------------------------


def _read_rss(root: Any, *, url: str) -> ParsedFeed:
    if len(root) != 1 or root[0].tag != "channel" or set(_attributes(root)) - {"version"}:
        raise _Decline
    channel = root[0]
    _no_attributes(channel)
    base = _base(_base(url, root), channel)
    feed_language = _language(root)
    title = link = ttl = None
    entries: list[_Entry] = []
    for name, child in _children(channel, _CHANNEL):
        if name == "item":
            entries.append(_rss_item(child, base))
        elif name == "title":
            _no_type(child)
            title = _text(child)
        elif name == "link":
            _no_attributes(child)
            link = _link_text(_resolved(_base(base, child), _text(child)))
        elif name == "atom:link":
            _, alternate = _atom_link(child, base)
            link = alternate if alternate is not None else link
        elif name in ("language", "dc:language"):
            _no_attributes(child)
            feed_language = _text(child)
        else:
            ttl = _text(child)
    return ParsedFeed(
        version="rss20",
        title=title,
        link=link,
        language=feed_language,
        items=tuple(entry.item(feed_language=feed_language, url=url) for entry in entries),
        ttl=ttl_of(ttl),
    )


def _no_type(element: Any) -> None:
    if "type" in _attributes(element):
        raise _Decline


def _rss_item(element: Any, parent_base: str) -> _Entry:
    _no_attributes(element)
    base = _base(parent_base, element)
    entry = _Entry()
    has_link = False
    guid_is_link = False
    for name, child in _children(element, _RSS_ITEM):
        if name == "title":
            _no_type(child)
            text = _text(child)
            media_type = "text/html" if _looks_like_html(text) else "text/plain"
            entry.title = _Text(text, media_type, _language(child), _base(base, child))
        elif name == "link":
            _no_attributes(child)
            link = _resolved(_base(base, child), _text(child))
            entry.link = _link_text(link.replace("&amp;", "&"))
            has_link = True
        elif name == "atom:link":
            attributes, alternate = _atom_link(child, base)
            entry.links.append(attributes)
            if alternate is not None:
                entry.link, has_link = alternate, True
        elif name in ("description", "content:encoded"):
            _no_type(child)
            markup = _Text(_text(child), "text/html", _language(child), _base(base, child))
            if name == "description":
                entry.summary = markup
            else:
                entry.content = markup
        elif name == "guid":
            guid_is_link = _attributes(child).get("ispermalink", "true") == "true"
            text = _text(child)
            entry.id = _resolved(_base(base, child), text) if guid_is_link else text
        elif name in ("pubdate", "published"):
            entry.published = _date(child)
        elif name in ("dc:date", "updated"):
            entry.updated = _date(child)
        elif name in ("author", "dc:creator"):
            entry.add_author_text(_text(child))
        elif name in ("category", "dc:subject"):
            entry.start_category(_attributes(child))
            entry.end_category(_text(child))
        else:  # enclosure
            _check_leaf(child)
            enclosure = _enforce_href(_attributes(child))
            enclosure["rel"] = "enclosure"
            entry.links.append(enclosure)
    if not has_link and guid_is_link:
        entry.link = entry.id
    return entry


# --- Atom 1.0 --------------------------------------------------------------------------


def _read_atom(root: Any, *, url: str) -> ParsedFeed:
    _no_attributes(root)
    base = _base(url, root)
    feed_language = _language(root)
    title = link = feed_id = None
    entries: list[_Entry] = []
    for name, child in _children(root, _ATOM_FEED):
        if name == "entry":
            entries.append(_atom_entry(child, base))
        elif name == "title":
            title = _atom_text(child, base).value
        elif name == "id":
            feed_id = _atom_id(child, base)
        else:
            _, alternate = _atom_link(child, base)
            link = alternate if alternate is not None else link
    return ParsedFeed(
        version="atom10",
        title=title,
        link=link if link is not None else feed_id,  # feedparser: an id is a link too
        language=feed_language,
        items=tuple(entry.item(feed_language=feed_language, url=url) for entry in entries),
    )


def _atom_text(element: Any, parent_base: str) -> _Text:
    """An Atom text construct of type text or html (xhtml and others go to feedparser)."""
    attributes = _attributes(element)
    media_type = _map_content_type(attributes.pop("type", "text"))
    if media_type not in ("text/plain", "text/html") or set(attributes) & _ACTED_ON:
        raise _Decline
    return _Text(_text(element), media_type, _language(element), _base(parent_base, element))


def _atom_link(element: Any, parent_base: str) -> tuple[dict[str, str], str | None]:
    """feedparser's link dict, and its href when it names the alternate HTML page."""
    _check_leaf(element)
    attributes = _enforce_href(_attributes(element))
    if "href" not in attributes:
        raise _Decline  # a link given as text content
    rel = attributes.setdefault("rel", "alternate")
    attributes.setdefault("type", "application/atom+xml" if rel == "self" else "text/html")
    attributes["href"] = _urljoin(_base(parent_base, element), attributes["href"])
    if rel == "alternate" and _map_content_type(attributes["type"]) in HTML_TYPES:
        return attributes, attributes["href"]
    return attributes, None


def _atom_id(element: Any, parent_base: str) -> str:
    _no_attributes(element)
    return _resolved(_base(parent_base, element), _text(element))


def _atom_entry(element: Any, parent_base: str) -> _Entry:
    _no_attributes(element)
    base = _base(parent_base, element)
    entry = _Entry()
    alternate: str | None = None
    for name, child in _children(element, _ATOM_ENTRY):
        if name == "id":
            entry.id = _atom_id(child, base)
        elif name == "title":
            entry.title = _atom_text(child, base)
        elif name == "summary":
            entry.summary = _atom_text(child, base)
        elif name == "content":
            entry.content = _atom_text(child, base)
        elif name == "link":
            attributes, href = _atom_link(child, base)
            entry.links.append(attributes)
            alternate = href if href is not None else alternate
        elif name == "published":
            entry.published = _date(child)
        elif name == "updated":
            entry.updated = _date(child)
        elif name == "author":
            _atom_author(child, entry)
        else:  # category
            entry.start_category(_attributes(child))
            entry.end_category(_text(child))
    entry.link = alternate if alternate is not None else entry.id
    return entry


def _atom_author(element: Any, entry: _Entry) -> None:
    _no_attributes(element)
    if (element.text or "").strip():
        raise _Decline  # text beside the child elements
    detail: dict[str, str] = {}
    entry.authors.append(detail)
    seen: set[str] = set()
    for child in element:
        name = _name(child)
        if (child.tail or "").strip():
            raise _Decline
        if name not in _AUTHOR_PARTS:
            if _has_handler(name):
                raise _Decline
            _check_unknown(child)
            continue
        if name in seen:
            raise _Decline
        seen.add(name)
        _no_attributes(child)
        if name != "uri":
            detail[name] = _raw_text(child)  # feedparser leaves these unrepaired
