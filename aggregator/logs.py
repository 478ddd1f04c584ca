"""Log lines: text for a terminal, or one JSON object per line for a log pipeline.

A poll is one line whatever the format: source, outcome, HTTP status, bytes, items
seen, new and updated, and how long fetching and parsing took. In JSON those are
fields of their own (``extra={"fields": {...}}`` on any record adds more).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from aggregator.types import PollOutcome

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Libraries that log a line per request or per job at INFO.
_CHATTY = ("apscheduler", "alembic", "httpx")
POLL_LOGGER = "aggregator.polls"  # a line per poll, whoever polls (``log_poll``)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure(level: str = "info", log_format: LogFormat = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    for chatty in _CHATTY:
        logging.getLogger(chatty).setLevel(logging.WARNING)


def poll_fields(outcome: PollOutcome) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "source": outcome.source,
        "outcome": outcome.status,
        "http_status": outcome.http_status,
        "bytes": outcome.bytes,
        "items": outcome.items_seen,
        "items_new": outcome.items_new,
        "items_updated": outcome.items_updated,
        "fetch_seconds": _rounded(outcome.fetch_seconds),
        "parse_seconds": _rounded(outcome.parse_seconds),
    }
    if outcome.error is not None:
        fields["error"] = outcome.error
    return fields


def poll_message(outcome: PollOutcome) -> str:
    timing = ", ".join(
        f"{what} {seconds:.2f}s"
        for what, seconds in (("fetch", outcome.fetch_seconds), ("parse", outcome.parse_seconds))
        if seconds is not None
    )
    http = f"HTTP {outcome.http_status}" if outcome.http_status else "no answer"
    if outcome.status == "error":
        return f"{outcome.source}: error: {outcome.error} ({http}{', ' + timing if timing else ''})"
    if outcome.status == "not_modified":
        return f"{outcome.source}: not modified ({timing})"
    if outcome.status == "gone":
        return f"{outcome.source}: gone: {outcome.error} ({http})"
    return (
        f"{outcome.source}: {outcome.items_seen} items, {outcome.items_new} new, "
        f"{outcome.items_updated} updated ({http}, {_size(outcome.bytes)}, {timing})"
    )


def log_poll(logger: logging.Logger, outcome: PollOutcome) -> None:
    level = logging.WARNING if outcome.status in ("error", "gone") else logging.INFO
    logger.log(level, "%s", poll_message(outcome), extra={"fields": poll_fields(outcome)})


def _rounded(seconds: float | None) -> float | None:
    return round(seconds, 4) if seconds is not None else None


def _size(count: int) -> str:
    return f"{count / 1000:.1f} KB" if count >= 1000 else f"{count} B"
