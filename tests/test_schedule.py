from __future__ import annotations

from datetime import timedelta

from aggregator.process.schedule import next_poll_after_failure, next_poll_after_success
from tests.builders import T0

INTERVAL = timedelta(minutes=15)


def test_success_comes_back_after_the_interval() -> None:
    assert next_poll_after_success(now=T0, interval=INTERVAL) == T0 + INTERVAL


def test_failures_back_off_exponentially_up_to_a_day_and_never_stop() -> None:
    delays = [
        next_poll_after_failure(now=T0, interval=INTERVAL, consecutive_errors=n) - T0
        for n in (1, 2, 3, 4, 50, 10_000)
    ]
    assert delays[:4] == [INTERVAL, 2 * INTERVAL, 4 * INTERVAL, 8 * INTERVAL]
    assert delays[4] == delays[5] == timedelta(hours=24)
