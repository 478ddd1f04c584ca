"""When to poll next: the pure decision, exhaustively."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.process.schedule import (
    MAX_RETRY_AFTER,
    ItemRate,
    ScheduleRules,
    base_interval,
    next_poll_time,
    observe_new_items,
)
from aggregator.types import PollHints
from tests.builders import T0

M = timedelta(minutes=1)
RULES = ScheduleRules(interval=15 * M, min_interval=1 * M, max_interval=timedelta(days=1), jitter=0)


def delay(**kwargs) -> timedelta:
    return next_poll_time(now=T0, rules=kwargs.pop("rules", RULES), **kwargs) - T0


def test_success_comes_back_after_the_interval() -> None:
    assert delay() == 15 * M


def test_failures_back_off_exponentially_up_to_a_day_and_never_stop() -> None:
    delays = [delay(consecutive_errors=n) for n in (1, 2, 3, 4, 50, 10_000)]
    assert delays[:4] == [15 * M, 30 * M, 60 * M, 120 * M]
    assert delays[4] == delays[5] == timedelta(hours=24)


def test_backoff_may_exceed_max_interval_but_not_a_day() -> None:
    rules = ScheduleRules(interval=15 * M, min_interval=M, max_interval=30 * M, jitter=0)
    assert delay(rules=rules, consecutive_errors=5) == timedelta(hours=4)
    assert delay(rules=rules) == 15 * M


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        (PollHints(max_age=timedelta(hours=1)), timedelta(hours=1)),
        (PollHints(max_age=5 * M), 15 * M),  # a shorter max-age does not poll more often
        (PollHints(expires=timedelta(hours=2)), timedelta(hours=2)),
        (PollHints(expires=T0 + timedelta(hours=3)), timedelta(hours=3)),
        (PollHints(ttl=timedelta(minutes=90)), 90 * M),
        (PollHints(retry_after=timedelta(hours=5)), timedelta(hours=5)),
        (PollHints(retry_after=T0 + timedelta(hours=6)), timedelta(hours=6)),
        (PollHints(retry_after=T0 - timedelta(hours=6)), 15 * M),  # already past
        (PollHints(retry_after=timedelta(days=90)), MAX_RETRY_AFTER),
        (PollHints(max_age=timedelta(days=30)), timedelta(days=1)),  # clamped to max
    ],
)
def test_what_the_publisher_asks_is_a_floor(hints: PollHints, expected: timedelta) -> None:
    assert delay(hints=hints) == expected


def test_retry_after_holds_even_past_the_backoff() -> None:
    hints = PollHints(retry_after=timedelta(hours=3))
    assert delay(hints=hints, consecutive_errors=1) == timedelta(hours=3)


def test_min_interval_is_a_floor() -> None:
    rules = ScheduleRules(
        interval=10 * timedelta(seconds=1), min_interval=M, max_interval=timedelta(days=1), jitter=0
    )
    assert delay(rules=rules) == M


@given(draw=st.floats(min_value=0, max_value=0.999999))
def test_jitter_spreads_within_its_fraction(draw: float) -> None:
    rules = ScheduleRules(
        interval=60 * M, min_interval=M, max_interval=timedelta(days=1), jitter=0.1
    )
    assert 54 * M <= delay(rules=rules, jitter_draw=draw) <= 66 * M


def test_automatic_interval_follows_the_rate_of_new_items() -> None:
    auto = ScheduleRules(
        interval=None, min_interval=5 * M, max_interval=timedelta(hours=12), jitter=0
    )
    assert base_interval(auto, None, T0) == 30 * M  # no history yet
    busy = ItemRate(gap=20 * M, last_new_at=T0)
    assert base_interval(auto, busy, T0) == 10 * M
    frantic = ItemRate(gap=M, last_new_at=T0)
    assert base_interval(auto, frantic, T0) == 5 * M  # min_interval
    quiet = ItemRate(gap=20 * M, last_new_at=T0 - timedelta(hours=6))
    assert base_interval(auto, quiet, T0) == timedelta(hours=3)  # it slowed down
    dead = ItemRate(gap=20 * M, last_new_at=T0 - timedelta(days=60))
    assert base_interval(auto, dead, T0) == timedelta(hours=12)  # max_interval


def test_observing_new_items_smooths_the_gap() -> None:
    rate = ItemRate(gap=None, last_new_at=None)
    rate = observe_new_items(rate, now=T0, new_items=5)
    assert rate == ItemRate(gap=None, last_new_at=T0)
    rate = observe_new_items(rate, now=T0 + 60 * M, new_items=3)
    assert rate.gap == 20 * M
    unchanged = observe_new_items(rate, now=T0 + 120 * M, new_items=0)
    assert unchanged == rate
    rate = observe_new_items(rate, now=T0 + 120 * M, new_items=1)
    assert rate.gap == 20 * M + (60 * M - 20 * M) * 0.3
