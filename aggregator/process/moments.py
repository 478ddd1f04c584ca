"""Moments as the story and duplicate indexes keep them: windows that stay inside the
years datetime can hold, and UTC times as plain microsecond counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def window_start(moment: datetime, window: timedelta) -> datetime:
    """``moment - window``, or the earliest datetime when that is before year 1 (feeds
    date items in year 1)."""
    try:
        return moment - window
    except OverflowError:
        return datetime.min.replace(tzinfo=moment.tzinfo)


def window_end(moment: datetime, window: timedelta) -> datetime:
    """``moment + window``, or the latest datetime when that is past year 9999."""
    try:
        return moment + window
    except OverflowError:
        return datetime.max.replace(tzinfo=moment.tzinfo)


def micros(when: datetime) -> int:
    """A UTC time as microseconds since 1970: exact, and a plain number."""
    return (when - _EPOCH) // _MICROSECOND


def at_micros(count: int) -> datetime:
    # Positional: half the time of ``microseconds=count``, and a saved index's take-up
    # makes one of these for each of its stories and originals.
    return _EPOCH + timedelta(0, 0, count)
