"""A feed reader's OPML export, read as the sources it subscribes to.

Readers write each subscription as an ``<outline xmlUrl=...>``, inside folder outlines
(NetNewsWire, Feedly, Miniflux...) and sometimes with a ``category`` attribute (OPML 2.0:
comma-separated, slash-delimited paths). Both become tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from aggregator.exceptions import ParseError

_SLUG_RUN = re.compile(r"[^a-z0-9]+")
MAX_DEPTH = 32  # folders inside folders: deeper is no export a reader writes


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """One feed a reader subscribes to."""

    name: str  # a source name: lower-case letters, digits and hyphens, unique
    title: str
    url: str
    tags: tuple[str, ...]


def read_subscriptions(document: bytes) -> tuple[Subscription, ...]:
    """Every subscription of an OPML document, in document order, each feed once (a
    feed filed in two folders takes the tags of both)."""
    # A subscription list is data, never a reason to fetch or expand anything.
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(document, parser)
    except etree.XMLSyntaxError as exc:
        raise ParseError(f"not an OPML document: {exc}") from exc
    body = root.find("body") if root.tag == "opml" else None
    if body is None:
        raise ParseError("not an OPML document: no <opml> element with a <body>")
    found: dict[str, tuple[str, list[str]]] = {}
    for title, url, tags in _outlines(body, (), 0):
        kept = found.setdefault(url, (title, []))[1]
        kept.extend(tag for tag in tags if tag not in kept)
    names: set[str] = set()
    subscriptions = []
    for url, (title, kept) in found.items():
        name = _unique(slug(title) or slug(url), names)
        subscriptions.append(Subscription(name=name, title=title, url=url, tags=tuple(kept)))
    return tuple(subscriptions)


def _outlines(
    parent: etree._Element, folders: tuple[str, ...], depth: int
) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    if depth > MAX_DEPTH:
        raise ParseError(f"not an OPML subscription list: outlines nest over {MAX_DEPTH} deep")
    for outline in parent.iterfind("outline"):
        text = (outline.get("title") or outline.get("text") or "").strip()
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url:
            yield text or url, url, _tags(folders, outline.get("category"))
        else:
            folder = (slug(text),) if slug(text) else ()
            yield from _outlines(outline, folders + folder, depth + 1)


def _tags(folders: tuple[str, ...], category: str | None) -> tuple[str, ...]:
    tags = list(folders)
    for path in (category or "").split(","):
        for part in path.split("/"):
            tag = slug(part)
            if tag and tag not in tags:
                tags.append(tag)
    return tuple(tags)


def slug(text: str) -> str:
    """Lower-case letters, digits and hyphens, at most 64 (a source name, a tag)."""
    return _SLUG_RUN.sub("-", text.casefold()).strip("-")[:64].strip("-")


def _unique(name: str, taken: set[str]) -> str:
    name = name or "feed"
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name[:60]}-{number}"
    taken.add(candidate)
    return candidate
