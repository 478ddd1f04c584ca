"""Sources' polling state as operators read it (the CLI table and /sources.json), and
series as ``GET /series/`` lists them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aggregator.publish import FEED_FORMATS, feed_url
from aggregator.types import FeedInfo, SourceState


def status_word(state: SourceState) -> str:
    if state.gone:
        return "gone"
    return state.last_status or "never polled"


def source_status(state: SourceState) -> dict[str, Any]:
    return {
        "name": state.name,
        "url": state.url,
        "moved_to": state.fetch_url,
        "status": status_word(state),
        "http_status": state.last_http_status,
        "last_poll": iso(state.last_polled_at),
        "next_poll": None if state.gone else iso(state.next_poll_at),
        "items": state.item_count,
        "consecutive_errors": state.consecutive_errors,
        "last_error": state.last_error,
    }


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def series_status(info: FeedInfo, base_url: str) -> dict[str, Any]:
    """A series as ``GET /series/`` lists it."""
    counts = info.counts
    return {
        "slug": info.slug,
        "title": info.title,
        "description": info.description,
        "auto": info.auto,
        "feeds": {
            f.name: feed_url(base_url, "series", info.slug, f.name) for f in FEED_FORMATS.values()
        },
        "items": counts.items if counts else 0,
        "stories": counts.stories if counts else 0,
        "outlets": [{"source": name, "items": n} for name, n in counts.outlets] if counts else [],
        "first_seen": iso(counts.first_seen) if counts else None,
        "last_seen": iso(counts.last_seen) if counts else None,
    }
