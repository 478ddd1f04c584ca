"""When to poll a source next: a pure decision."""

from __future__ import annotations

from datetime import datetime, timedelta

MAX_BACKOFF = timedelta(hours=24)


def next_poll_after_success(*, now: datetime, interval: timedelta) -> datetime:
    return now + interval


def next_poll_after_failure(
    *, now: datetime, interval: timedelta, consecutive_errors: int
) -> datetime:
    """Back off exponentially from the interval, capped at a day; never give up.

    ``consecutive_errors`` counts the failures in a row, this one included.
    """
    exponent = min(max(consecutive_errors - 1, 0), 16)
    delay = min(interval * (1 << exponent), max(MAX_BACKOFF, interval))
    return now + delay
