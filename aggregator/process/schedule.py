"""When to poll a source next: pure decisions, ``now`` and randomness passed in.

delay = the source's interval (or, with ``interval: auto``, half the observed gap
        between its new items), spread by jitter so sources do not poll in lockstep
delay = max(delay, what the publisher asked: Cache-Control max-age, Expires, <ttl>)
delay = clamped to [min_interval, max_interval]
delay = doubled for each error in a row after the first, up to a day
next  = now + delay, but never before Retry-After (itself capped, see below)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.types import NO_HINTS, PollHints

MAX_BACKOFF = timedelta(hours=24)
# A Retry-After is honoured up to this far out; a server asking for more is asking for
# a month of silence we would rather not give without a human deciding it.
MAX_RETRY_AFTER = timedelta(days=7)
# With no history yet, an automatic interval starts here.
AUTO_START = timedelta(minutes=30)
# How much one new observation moves the estimated gap between new items.
GAP_SMOOTHING = 0.3


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleRules:
    interval: timedelta | None  # None: automatic, from the observed rate of new items
    min_interval: timedelta
    max_interval: timedelta
    jitter: float  # fraction of the delay, spread both ways


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemRate:
    """How often a source publishes, as far as we have seen."""

    gap: timedelta | None  # smoothed time between new items
    last_new_at: datetime | None


def next_poll_time(
    *,
    now: datetime,
    rules: ScheduleRules,
    hints: PollHints = NO_HINTS,
    consecutive_errors: int = 0,
    rate: ItemRate | None = None,
    jitter_draw: float = 0.5,
) -> datetime:
    """When to poll next. ``jitter_draw`` is uniform in [0, 1): 0.5 means no jitter.

    ``consecutive_errors`` counts the failures in a row, the current one included.
    """
    delay = base_interval(rules, rate, now)
    delay = delay * (1 + rules.jitter * (2 * jitter_draw - 1))
    delay = max(delay, _publisher_floor(hints, now))
    delay = min(max(delay, rules.min_interval), rules.max_interval)
    if consecutive_errors > 0:
        # Past max_interval if need be: a failing source is polled less, never dropped.
        exponent = min(consecutive_errors - 1, 16)
        delay = min(delay * (1 << exponent), max(MAX_BACKOFF, delay))
    next_at = now + delay
    retry_after = _absolute(hints.retry_after, now)
    if retry_after is not None:
        next_at = max(next_at, min(retry_after, now + MAX_RETRY_AFTER))
    return next_at


def base_interval(rules: ScheduleRules, rate: ItemRate | None, now: datetime) -> timedelta:
    """The configured interval, or for ``auto`` half the gap between new items."""
    if rules.interval is not None:
        return rules.interval
    if rate is None or rate.gap is None:
        return min(max(AUTO_START, rules.min_interval), rules.max_interval)
    gap = rate.gap
    if rate.last_new_at is not None:
        # A source that went quiet for longer than its usual gap has slowed down.
        gap = max(gap, now - rate.last_new_at)
    return min(max(gap / 2, rules.min_interval), rules.max_interval)


def observe_new_items(rate: ItemRate, *, now: datetime, new_items: int) -> ItemRate:
    """Fold one poll into the source's rate; polls without new items change nothing."""
    if new_items <= 0:
        return rate
    if rate.last_new_at is None:
        return ItemRate(gap=rate.gap, last_new_at=now)
    sample = (now - rate.last_new_at) / new_items
    gap = sample if rate.gap is None else rate.gap + (sample - rate.gap) * GAP_SMOOTHING
    return ItemRate(gap=gap, last_new_at=now)


def _publisher_floor(hints: PollHints, now: datetime) -> timedelta:
    floors = [timedelta(0)]
    if hints.max_age is not None:
        floors.append(hints.max_age)
    expires = _absolute(hints.expires, now)
    if expires is not None:
        floors.append(expires - now)
    if hints.ttl is not None:
        floors.append(hints.ttl)
    return max(floors)


def _absolute(moment: datetime | timedelta | None, now: datetime) -> datetime | None:
    if isinstance(moment, timedelta):
        return now + moment
    return moment
