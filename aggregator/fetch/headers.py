"""Reading what response headers say about caching and coming back: pure functions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from aggregator.types import PollHints

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|[,\s])(?:no-cache|no-store)(?:$|[,\s=])", re.IGNORECASE)


def hints_from_headers(headers: Mapping[str, str]) -> PollHints:
    """Retry-After, Cache-Control max-age and Expires, from a response's headers.

    ``headers`` must be case-insensitive (httpx's are).
    """
    return PollHints(
        retry_after=parse_retry_after(headers.get("retry-after")),
        max_age=parse_max_age(headers.get("cache-control")),
        expires=parse_expires(headers.get("expires"), headers.get("date")),
    )


def parse_retry_after(value: str | None) -> datetime | timedelta | None:
    """Seconds (``120``) or an HTTP date; anything else is ignored."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    return http_date(value)


def parse_max_age(value: str | None) -> timedelta | None:
    if not value or _NO_CACHE.search(value):
        return None
    match = _MAX_AGE.search(value)
    return timedelta(seconds=int(match.group(1))) if match else None


def parse_expires(value: str | None, date: str | None) -> datetime | timedelta | None:
    """How long the response stays fresh, measured on the server's own clock.

    Expires minus the response's Date, so that a skewed server clock does not matter
    (without a Date, Expires itself); an Expires before the Date (or ``0``, a common way
    to say "already expired") is ignored.
    """
    expires = http_date(value)
    if expires is None:
        return None
    sent = http_date(date)
    if sent is None:
        return expires
    fresh_for = expires - sent
    return fresh_for if fresh_for > timedelta(0) else None


def http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
