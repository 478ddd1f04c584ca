"""Publish stage: merged feeds out, as RSS 2.0, Atom 1.0 and JSON Feed 1.1.

    store --> FeedPage --render_rss / render_atom / render_json_feed--> bytes
    store --> Listing  --render_index / render_opml--> bytes
    app.py serves both; etag.py hashes the bytes our renderers make (they never read the clock)

This module names the formats a feed is published in; ``app.create_app`` is imported
from ``aggregator.publish.app`` (it depends on the index page, which depends on this).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal
from urllib.parse import quote

from aggregator.publish.atom import ATOM_MEDIA_TYPE, render_atom
from aggregator.publish.etag import body_etag, page_last_modified
from aggregator.publish.json_feed import JSON_FEED_MEDIA_TYPE, render_json_feed
from aggregator.publish.rss import RSS_MEDIA_TYPE, render_rss
from aggregator.types import FeedPage

FeedFormatName = Literal["rss", "atom", "json"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedFormat:
    """One way a merged feed is published; ``name`` is also its URL extension."""

    name: FeedFormatName
    label: str
    media_type: str
    render: Callable[[FeedPage], bytes]


FEED_FORMATS: Mapping[str, FeedFormat] = MappingProxyType(
    {
        "rss": FeedFormat(name="rss", label="RSS", media_type=RSS_MEDIA_TYPE, render=render_rss),
        "atom": FeedFormat(
            name="atom", label="Atom", media_type=ATOM_MEDIA_TYPE, render=render_atom
        ),
        "json": FeedFormat(
            name="json",
            label="JSON Feed",
            media_type=JSON_FEED_MEDIA_TYPE,
            render=render_json_feed,
        ),
    }
)


def feed_url(base_url: str, kind: str, slug: str, fmt: FeedFormatName) -> str:
    """Where the app serves a merged feed: ``{base}/{feeds|series}/{slug}.{fmt}``."""
    return f"{base_url.rstrip('/')}/{kind}/{quote(slug, safe='')}.{fmt}"


__all__ = [
    "FEED_FORMATS",
    "FeedFormat",
    "FeedFormatName",
    "body_etag",
    "feed_url",
    "page_last_modified",
    "render_atom",
    "render_json_feed",
    "render_rss",
]
