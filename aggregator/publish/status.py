"""Sources' polling state as operators read it (the CLI table and /sources.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aggregator.types import SourceState


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
        "last_poll": _iso(state.last_polled_at),
        "next_poll": None if state.gone else _iso(state.next_poll_at),
        "items": state.item_count,
        "consecutive_errors": state.consecutive_errors,
        "last_error": state.last_error,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None
