"""One poll of one source, end to end, with a fake fetcher (and a real store)."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from aggregator.exceptions import FetchError, HTTPStatusError
from aggregator.fetch import Fetcher, FetchLimits
from aggregator.pipeline import Pipeline
from aggregator.settings import SeriesSettings, Settings
from aggregator.store import Store
from aggregator.store.schema import sources as sources_table
from aggregator.types import Fetched, FetchResult, NotModified, SourceForPoll
from tests.builders import T0, FixedClock
from tests.conftest import DATA
from tests.feedserver import serve_directory

RSS = (DATA / "e2e" / "npr-world.xml").read_bytes()


def _rss_answer() -> Fetched:
    """NPR's feed, as its server sends it (10 items)."""
    return Fetched(
        url="https://npr.example/feed",
        status_code=200,
        content=RSS,
        content_type="application/rss+xml",
    )


class FakeFetcher:
    """Answers each source with what the test queued for it, in order."""

    def __init__(self) -> None:
        self.queued: dict[str, list[FetchResult | Exception]] = {}
        self.seen: list[SourceForPoll] = []

    def answers(self, name: str, *results: FetchResult | Exception) -> FakeFetcher:
        self.queued.setdefault(name, []).extend(results)
        return self

    def fetch(self, source: SourceForPoll) -> FetchResult:
        self.seen.append(source)
        result = self.queued[source.name].pop(0)
        if isinstance(result, Exception):
            raise result
        return result


def _pipeline(tmp_path: Path, fetcher: FakeFetcher, clock: FixedClock) -> Pipeline:
    settings = Settings.model_validate(
        {
            "database": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "polling": {"interval": "10m", "jitter": 0},
            "sources": [{"name": "npr", "url": "https://npr.example/feed"}],
        }
    )
    pipeline = Pipeline(
        settings=settings, store=Store.open(settings.database), fetcher=fetcher, clock=clock
    )
    pipeline.sync_sources()
    return pipeline


def _state(pipeline: Pipeline):
    (state,) = pipeline.store.source_states()
    return state


def _poll(pipeline: Pipeline):
    (source,) = pipeline.store.sources_for_poll(["npr"])
    return pipeline.poll_guarded(source)


def test_validators_are_sent_and_refreshed_on_304(tmp_path: Path) -> None:
    fetcher = FakeFetcher().answers(
        "npr",
        Fetched(
            url="https://npr.example/feed",
            status_code=200,
            content=RSS,
            content_type="application/rss+xml",
            etag='"v1"',
            last_modified="Mon",
        ),
        NotModified(url="https://npr.example/feed", etag='"v2"', last_modified="Tue"),
        NotModified(url="https://npr.example/feed", etag='"v2"', last_modified="Tue"),
    )
    clock = FixedClock(T0)
    pipeline = _pipeline(tmp_path, fetcher, clock)
    assert _poll(pipeline).items_new == 10
    assert _poll(pipeline).status == "not_modified"
    assert (_state(pipeline).etag, _state(pipeline).last_modified) == ('"v2"', "Tue")
    _poll(pipeline)
    assert (fetcher.seen[1].etag, fetcher.seen[2].etag) == ('"v1"', '"v2"')
    assert _state(pipeline).next_poll_at == T0 + timedelta(minutes=10)
    pipeline.store.close()


def test_failures_are_recorded_and_back_off(tmp_path: Path) -> None:
    fetcher = FakeFetcher().answers(
        "npr",
        HTTPStatusError("https://npr.example/feed", 503, "HTTP 503 Service Unavailable"),
        FetchError("https://npr.example/feed", "cannot connect: refused"),
        Fetched(
            url="https://npr.example/feed",
            status_code=200,
            content=b"<html></html>",
            content_type="text/html",
        ),
    )
    clock = FixedClock(T0)
    pipeline = _pipeline(tmp_path, fetcher, clock)
    first = _poll(pipeline)
    assert (first.status, first.http_status, first.error) == (
        "error",
        503,
        "HTTP 503 Service Unavailable",
    )
    assert _state(pipeline).next_poll_at == T0 + timedelta(minutes=10)
    _poll(pipeline)
    assert _state(pipeline).next_poll_at == T0 + timedelta(minutes=20)
    third = _poll(pipeline)
    assert third.error is not None and third.error.startswith("not a feed")
    state = _state(pipeline)
    assert (state.consecutive_errors, state.last_status) == (3, "error")
    assert state.next_poll_at == T0 + timedelta(minutes=40)
    pipeline.store.close()


def test_a_bug_while_polling_fails_the_source_not_the_cycle(tmp_path: Path) -> None:
    fetcher = FakeFetcher().answers("npr", ZeroDivisionError("boom"))
    pipeline = _pipeline(tmp_path, fetcher, FixedClock(T0))
    outcome = pipeline.poll_many(pipeline.store.sources_for_poll(["npr"]))[0]
    assert outcome.status == "error"
    assert outcome.error == "internal error: ZeroDivisionError: boom"
    assert _state(pipeline).last_error == outcome.error
    assert _state(pipeline).next_poll_at == T0 + timedelta(minutes=10)
    pipeline.store.close()


def test_conditional_get_with_last_modified_alone(tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(DATA / "e2e" / "npr-world.xml", www / "npr.xml")
    with serve_directory(www) as server:
        server.etags = False
        settings = Settings.model_validate(
            {
                "database": f"sqlite:///{tmp_path / 'db.sqlite'}",
                "sources": [{"name": "npr", "url": server.url("npr.xml")}],
            }
        )
        store = Store.open(settings.database)
        fetcher = Fetcher(FetchLimits(allow_networks=("127.0.0.1/32",)))
        try:
            pipeline = Pipeline(
                settings=settings, store=store, fetcher=fetcher, clock=FixedClock(T0)
            )
            first = pipeline.poll_all()
            second = pipeline.poll_all()
            (state,) = store.source_states()
        finally:
            fetcher.close()
            store.close()
    assert [o.status for o in first + second] == ["ok", "not_modified"]
    assert server.log.statuses() == [200, 304]
    assert state.etag is None and state.last_modified is not None


def test_a_bug_in_story_assignment_does_not_fail_the_polls(tmp_path: Path) -> None:
    from aggregator.grouping import StoryAssigner
    from aggregator.process.stories import GroupingRules

    class Broken(StoryAssigner):
        def assign_pending(self, now: datetime) -> int:
            raise RuntimeError("boom")

    fetcher = FakeFetcher().answers(
        "npr",
        Fetched(url="https://npr.example/feed", status_code=200, content=RSS, content_type=None),
    )
    pipeline = _pipeline(tmp_path, fetcher, FixedClock(T0))
    pipeline.stories = Broken(pipeline.store, GroupingRules())
    (outcome,) = pipeline.poll_many(pipeline.store.sources_for_poll(["npr"]))
    assert (outcome.status, outcome.items_new) == ("ok", 10)
    pipeline.store.close()


def test_the_story_index_is_readied_once_a_poll_stores_new_items(tmp_path: Path) -> None:
    """A batch of polls loads (or rebuilds) the story index in another thread once one of
    its polls has stored new items, while the others wait on the network: below, bbc's
    second fetch answers only once the index is ready, and npr's items are then placed
    by it. A batch of 304s leaves the index unloaded: it would be work for nothing."""
    from aggregator.grouping import StoryAssigner
    from aggregator.process.stories import GroupingRules

    class WaitsForTheIndex(FakeFetcher):
        def __init__(self, stories: list[StoryAssigner]) -> None:
            super().__init__()
            self.stories = stories
            self.ready_while_fetching: list[bool] = []

        def fetch(self, source: SourceForPoll) -> FetchResult:
            if source.name == "bbc" and self.queued["bbc"][0] is later_304:
                deadline = time.monotonic() + 10
                while not self.stories[0].ready and time.monotonic() < deadline:
                    time.sleep(0.01)  # polling a condition, bounded: no timing assumed
                self.ready_while_fetching.append(self.stories[0].ready)
            return super().fetch(source)

    bbc_304 = NotModified(url="https://bbc.example/feed", etag='"b"', last_modified=None)
    later_304 = replace(bbc_304, etag='"b2"')
    assigners: list[StoryAssigner] = []
    fetcher = WaitsForTheIndex(assigners).answers("npr", _rss_answer())
    fetcher.answers("bbc", bbc_304, later_304)
    settings = Settings.model_validate(
        {
            "database": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "polling": {"interval": "10m", "jitter": 0, "concurrency": 2},
            "sources": [
                {"name": "npr", "url": "https://npr.example/feed"},
                {"name": "bbc", "url": "https://bbc.example/feed"},
            ],
        }
    )
    store = Store.open(settings.database)
    pipeline = Pipeline(settings=settings, store=store, fetcher=fetcher, clock=FixedClock(T0))
    pipeline.sync_sources()
    assigners.append(StoryAssigner(store, GroupingRules()))
    pipeline.stories = assigners[0]
    (unchanged,) = pipeline.poll_many(store.sources_for_poll(["bbc"]))
    assert unchanged.status == "not_modified"
    assert not assigners[0].ready and pipeline.preparing is None
    outcomes = pipeline.poll_many(store.sources_for_poll(["npr", "bbc"]))
    assert {(o.source, o.items_new) for o in outcomes} == {("npr", 10), ("bbc", 0)}
    assert fetcher.ready_while_fetching == [True]
    assert store.unassigned_ids() == []
    assert pipeline.preparing is None  # joined before assigning
    pipeline.stories.close()
    store.close()


def _dated_feed(outlet: str, items: list[tuple[str, str]]) -> bytes:
    entries = "".join(
        f"<item><title>{title}</title><link>https://{outlet}.example/{n}</link>"
        f"<guid>{n}</guid><pubDate>{date}</pubDate></item>"
        for n, (title, date) in enumerate(items)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{outlet}'
        f"</title><link>https://{outlet}.example/</link><description>d</description>"
        f"{entries}</channel></rss>"
    ).encode()


def test_a_batch_of_polls_puts_items_into_stories_in_time_order(tmp_path: Path) -> None:
    # The source polled first brings the newer items: assigned after each poll, its
    # stories would be made first (and an archive read later would meet them out of
    # order). Assigned once the batch is done, stories are made oldest first.
    from sqlalchemy import create_engine, text

    from aggregator.grouping import StoryAssigner
    from aggregator.process.stories import GroupingRules

    newer = [
        ("Floods close schools across Jakarta", "Tue, 17 Feb 2026 10:00:00 GMT"),
        ("Chess champion retires after final match", "Tue, 17 Feb 2026 11:00:00 GMT"),
        ("Volcano erupts near Reykjavik airport", "Tue, 17 Feb 2026 12:00:00 GMT"),
    ]
    older = [
        ("Bank raises interest rates in Brazil", "Mon, 16 Feb 2026 10:00:00 GMT"),
        ("Museum returns stolen bronzes to Nigeria", "Mon, 16 Feb 2026 11:00:00 GMT"),
        ("Storm grounds flights at Heathrow", "Mon, 16 Feb 2026 12:00:00 GMT"),
    ]
    fetcher = FakeFetcher()
    for name, items in (("late", newer), ("early", older)):
        fetcher.answers(
            name,
            Fetched(
                url=f"https://{name}.example/feed",
                status_code=200,
                content=_dated_feed(name, items),
                content_type="application/rss+xml",
            ),
        )
    settings = Settings.model_validate(
        {
            "database": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "polling": {"concurrency": 1},
            "sources": [
                {"name": "late", "url": "https://late.example/feed"},
                {"name": "early", "url": "https://early.example/feed"},
            ],
        }
    )
    store = Store.open(settings.database)
    pipeline = Pipeline(settings=settings, store=store, fetcher=fetcher, clock=FixedClock(T0))
    pipeline.stories = StoryAssigner(store, GroupingRules())
    pipeline.sync_sources()
    by_name = {s.name: s for s in store.sources_for_poll(["late", "early"])}
    outcomes = pipeline.poll_many([by_name["late"], by_name["early"]])
    assert [o.source for o in outcomes] == ["late", "early"] == [s.name for s in fetcher.seen]
    store.close()
    engine = create_engine(settings.database)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT story_id FROM items ORDER BY sort_at")).all()
    engine.dispose()
    story_ids = [row.story_id for row in rows]
    assert None not in story_ids and len(set(story_ids)) == 6
    assert story_ids == sorted(story_ids)  # each a new story, made oldest first


def _one_item_feed(title: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>NPR</title>'
        "<link>https://npr.example/</link><description>d</description><item>"
        f"<title>{title}</title><link>https://npr.example/a</link><guid>a</guid>"
        "<pubDate>Tue, 17 Feb 2026 10:00:00 GMT</pubDate></item></channel></rss>"
    ).encode()


def test_an_item_whose_text_changed_leaves_the_series_it_no_longer_matches(
    tmp_path: Path,
) -> None:
    fetcher = FakeFetcher()
    for title in ("Ukraine talks resume in Geneva", "Peace talks resume in Geneva"):
        fetcher.answers(
            "npr",
            Fetched(
                url="https://npr.example/feed",
                status_code=200,
                content=_one_item_feed(title),
                content_type="application/rss+xml",
            ),
        )
    clock = FixedClock(T0)
    pipeline = _pipeline(tmp_path, fetcher, clock)
    settings = pipeline.settings.model_copy(
        update={
            "series": (
                SeriesSettings.model_validate(
                    {"slug": "ukraine", "title": "Ukraine", "match": {"keywords": ["Ukraine"]}}
                ),
            )
        }
    )
    pipeline = Pipeline(settings=settings, store=pipeline.store, fetcher=fetcher, clock=clock)
    assert _poll(pipeline).status == "ok"
    (entry,) = pipeline.store.feed_entries(series_slugs=None, limit=5)
    assert entry.series == ("ukraine",)
    clock.moment += timedelta(hours=1)
    assert _poll(pipeline).status == "ok"
    (entry,) = pipeline.store.feed_entries(series_slugs=None, limit=5)
    assert entry.title == "Peace talks resume in Geneva" and entry.series == ()


def test_publishing_follows_the_store_and_retries_what_failed(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, FakeFetcher(), FixedClock(T0))
    copies: list[int] = []
    failing = [False]

    def static_copy() -> None:
        if failing[0]:
            raise OSError("disk full")
        copies.append(pipeline.store.published_version())

    pipeline.static_copy = static_copy
    pipeline.publish_changes()
    pipeline.publish_changes()  # nothing changed in the store: nothing to write
    assert len(copies) == 1
    pipeline.store.set_state("k", "v")  # a change to what feeds show, without new items
    failing[0] = True
    pipeline.publish_changes()  # fails: kept owed
    failing[0] = False
    pipeline.publish_changes()
    assert len(copies) == 2 and copies[1] > copies[0]
    pipeline.store.set_state("k", "w", changes_feeds=False)  # bookkeeping: no change
    pipeline.publish_changes()
    assert len(copies) == 2
    pipeline.store.close()


class BlockingFetcher:
    """A source whose fetch never returns until the test lets it (a hung connection)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def fetch(self, source: SourceForPoll) -> FetchResult:
        self.entered.set()
        self.release.wait(60)
        raise FetchError(source.url, "released")


def test_the_poller_reports_itself_not_ready_when_stopped_or_stuck(tmp_path: Path) -> None:
    from aggregator.schedule import Poller

    fetcher = BlockingFetcher()
    pipeline = _pipeline(tmp_path, fetcher, FixedClock(T0))
    pipeline.settings = pipeline.settings.model_copy(
        update={
            "polling": pipeline.settings.polling.model_copy(
                update={"timeout": timedelta(seconds=1), "parse_timeout": timedelta(seconds=1)}
            )
        }
    )
    poller = Poller(pipeline, workers=1, tick=timedelta(seconds=0.2), stuck_grace=timedelta(0))
    assert poller.problems() == ["the scheduler is not running"]
    poller.start()
    try:
        assert fetcher.entered.wait(30)
        deadline = time.monotonic() + 30
        while not poller.problems() and time.monotonic() < deadline:
            time.sleep(0.05)  # polling a condition with a deadline, not hiding a race
        (problem,) = poller.problems()
        assert problem.startswith("the poll of npr has run ")
        assert problem.endswith("past its deadline")
        fetcher.release.set()
        deadline = time.monotonic() + 30
        while poller.problems() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert poller.problems() == []
    finally:
        fetcher.release.set()
        poller.stop(5)
        pipeline.store.close()
    assert poller.problems() == ["stopping"]


def test_a_reloaded_shorter_interval_brings_the_next_poll_forward(tmp_path: Path) -> None:
    fetcher = FakeFetcher().answers("npr", FetchError("https://npr.example/feed", "down"))
    clock = FixedClock(T0)
    pipeline = _pipeline(tmp_path, fetcher, clock)
    try:
        _poll(pipeline)  # failed: retried after the 10m interval (backoff 1)
        before = _state(pipeline).next_poll_at
        assert before is not None and before > T0 + timedelta(minutes=5)
        pipeline.reconfigure(
            pipeline.settings.model_copy(
                update={
                    "polling": pipeline.settings.polling.model_copy(
                        update={"interval": timedelta(minutes=2)}
                    )
                }
            )
        )
        assert _state(pipeline).next_poll_at == T0 + timedelta(minutes=2)
        pipeline.reconfigure(pipeline.settings)  # unchanged: nothing moves
        assert _state(pipeline).next_poll_at == T0 + timedelta(minutes=2)
    finally:
        pipeline.store.close()


def test_metrics_count_polls_items_and_timings(tmp_path: Path) -> None:
    from aggregator.metrics import Metrics

    fetcher = FakeFetcher().answers(
        "npr",
        _rss_answer(),
        HTTPStatusError("https://npr.example/feed", 503, "HTTP 503 Service Unavailable"),
        NotModified(url="https://npr.example/feed", etag='"v2"', last_modified="Tue"),
    )
    pipeline = _pipeline(tmp_path, fetcher, FixedClock(T0))
    pipeline.metrics = metrics = Metrics()
    try:
        for _ in range(3):
            _poll(pipeline)
    finally:
        pipeline.store.close()

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert value("aggregator_polls_total", source="npr", outcome="ok") == 1
    assert value("aggregator_polls_total", source="npr", outcome="error") == 1
    assert value("aggregator_polls_total", source="npr", outcome="not_modified") == 1
    assert value("aggregator_source_responses_total", status_class="2xx") == 1
    assert value("aggregator_source_responses_total", status_class="3xx") == 1
    assert value("aggregator_source_responses_total", status_class="5xx") == 1
    assert value("aggregator_items_ingested_total") == 10
    assert value("aggregator_fetch_seconds_count") == 3
    assert value("aggregator_parse_seconds_count") == 1


def test_sources_leased_while_the_poller_stops_are_given_back(tmp_path: Path) -> None:
    """A claim under way when stop() comes queues its sources before the workers' ends;
    stop() takes them out again and gives their leases back at once."""
    from aggregator.schedule import Poller

    pipeline = _pipeline(tmp_path, FakeFetcher(), FixedClock(T0))
    poller = Poller(pipeline, workers=2)
    for worker in poller._workers:
        worker.start()
    inside, go = threading.Event(), threading.Event()
    claim = pipeline.store.claim_due_sources

    def slow_claim(*args, **kwargs):
        inside.set()
        go.wait(10)
        return claim(*args, **kwargs)

    pipeline.store.claim_due_sources = slow_claim  # type: ignore[method-assign]
    ticker = threading.Thread(target=poller.tick)
    ticker.start()
    try:
        assert inside.wait(10)
        stopped: list[bool] = []
        stopper = threading.Thread(target=lambda: stopped.append(poller.stop(5)))
        stopper.start()
        go.set()  # the claim ends after stop() began
        ticker.join(10)
        stopper.join(10)
        assert stopped == [True]  # nothing abandoned: the leased source never started
        (state,) = pipeline.store.source_states()
        assert state.last_polled_at is None
        with pipeline.store.engine.connect() as connection:
            owner = connection.execute(
                select(sources_table.c.lease_owner).where(sources_table.c.name == "npr")
            ).scalar_one()
        assert owner is None  # given back, not left to run out
    finally:
        go.set()
        pipeline.store.close()


def test_a_one_off_poll_leaves_alone_what_a_running_daemon_is_polling(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fetcher = FakeFetcher()
    pipeline = _pipeline(tmp_path, fetcher, FixedClock(T0))
    try:
        leased = pipeline.store.claim_due_sources(
            ["npr"], T0, owner="daemon", lease=timedelta(minutes=5), limit=1, per_host=2
        )
        assert [s.name for s in leased] == ["npr"]
        with caplog.at_level(logging.WARNING, logger="aggregator.pipeline"):
            assert pipeline.poll_all() == ()
        assert fetcher.seen == []
        assert "1 sources are being polled by a running daemon; left to it" in caplog.messages
    finally:
        pipeline.store.close()


def test_leases_of_a_dead_process_on_this_machine_are_taken_back_at_once(
    tmp_path: Path,
) -> None:
    import socket
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_owner = f"{socket.gethostname()}:{gone.stdout.strip()}:cafe"
    fetcher = FakeFetcher().answers(
        "npr", NotModified(url="https://npr.example/feed", etag=None, last_modified=None)
    )
    pipeline = _pipeline(tmp_path, fetcher, FixedClock(T0))
    try:
        pipeline.store.claim_due_sources(
            ["npr"], T0, owner=dead_owner, lease=timedelta(minutes=5), limit=1, per_host=2
        )
        (outcome,) = pipeline.poll_all()  # the killed poller's lease does not hold it up
        assert outcome.status == "not_modified"
        # A live process's lease, on this machine or another, is left alone.
        for owner in (f"{socket.gethostname()}:{os.getpid()}:beef", "elsewhere:1:beef"):
            pipeline.store.release_leases(owner)
            pipeline.store.claim_due_sources(
                ["npr"],
                T0,
                owner=owner,
                lease=timedelta(minutes=5),
                limit=1,
                per_host=2,
                due_only=False,
            )
            assert pipeline.poll_all() == ()
            pipeline.store.release_leases(owner)
    finally:
        pipeline.store.close()


def test_a_poll_in_a_terminal_shows_its_progress(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from aggregator.progress import run_with_progress

    fetcher = FakeFetcher().answers(
        "npr",
        _rss_answer(),
        FetchError("https://npr.example/feed", "cannot connect: refused"),
    )
    pipeline = _pipeline(tmp_path, fetcher, FixedClock(T0))
    try:
        screen = io.StringIO()
        console = Console(file=screen, force_terminal=True, width=120, color_system=None)
        (outcome,) = run_with_progress(pipeline.poll_all, console)
        assert outcome.items_new == 10
        assert "1/1 sources  10 new items  0 errors" in screen.getvalue()
        screen.truncate(0)
        run_with_progress(pipeline.poll_all, console)
        shown = screen.getvalue()
        assert "npr: cannot connect: refused" in shown  # a failure above the bar
        assert "1/1 sources  0 new items  1 errors" in shown
    finally:
        pipeline.store.close()


def test_after_polls_runs_once_the_polls_are_done_and_before_stories_are_assigned(
    tmp_path: Path,
) -> None:
    """``aggregator poll`` stops its parse workers there: they are not needed for the
    rest, and their memory would add to the story index's."""
    from aggregator.grouping import StoryAssigner
    from aggregator.process.stories import GroupingRules

    pipeline = _pipeline(tmp_path, FakeFetcher().answers("npr", _rss_answer()), FixedClock(T0))
    pipeline.stories = StoryAssigner(pipeline.store, GroupingRules())
    unassigned_then: list[int] = []
    pipeline.after_polls = lambda: unassigned_then.append(len(pipeline.store.unassigned_ids()))
    (outcome,) = pipeline.poll_many(pipeline.store.sources_for_poll(["npr"]))
    assert outcome.items_new == 10
    assert unassigned_then == [10]  # called once, with the polls' items still to place
    assert pipeline.store.unassigned_ids() == []
    pipeline.stories.close()
    pipeline.store.close()


def _page(body: bytes) -> Fetched:
    return Fetched(
        url="https://npr.example/feed", status_code=200, content=body, content_type="text/html"
    )


class CountingProcessor:
    """The real processor, counting the documents it was given."""

    def __init__(self) -> None:
        self.documents: list[bytes] = []

    def __call__(self, content: bytes, **arguments):
        from aggregator.pipeline import process_here

        self.documents.append(content)
        return process_here(content, **arguments)


def test_a_document_that_could_not_be_read_is_not_parsed_again_while_it_stays_the_same(
    tmp_path: Path,
) -> None:
    """An HTML page where the feed was: the same bytes fail the same way at the next
    polls without being parsed; other bytes are read, a feed clears the failure."""
    page = b"<html><body>We moved our feeds. " + b"x" * 5000 + b"</body></html>"
    fetcher = FakeFetcher().answers(
        "npr", _page(page), _page(page), _page(page), _page(page + b" "), _rss_answer()
    )
    pipeline = _pipeline(tmp_path, fetcher, FixedClock(T0))
    processor = pipeline.processor = CountingProcessor()
    first = _poll(pipeline)
    assert first.error is not None and first.error.startswith("not a feed")
    for _ in range(2):
        again = _poll(pipeline)
        assert (again.status, again.error) == ("error", first.error)
    assert processor.documents == [page]
    assert _state(pipeline).consecutive_errors == 3  # still failing, still backing off
    assert _poll(pipeline).error == first.error
    assert processor.documents == [page, page + b" "]  # other bytes: read again
    assert _poll(pipeline).items_new == 10
    (source,) = pipeline.store.sources_for_poll(["npr"])
    assert source.unreadable is None
    pipeline.store.close()


def test_a_document_is_read_again_by_other_reading_code(tmp_path: Path) -> None:
    """The digest is keyed by the code that reads documents: after an upgrade (another
    parser, another version of it) the same bytes are parsed again."""
    page = b"<html><body>Not a feed</body></html>"
    fetcher = FakeFetcher().answers("npr", _page(page), _page(page))
    pipeline = _pipeline(tmp_path, fetcher, FixedClock(T0))
    processor = pipeline.processor = CountingProcessor()
    _poll(pipeline)
    pipeline.reading_code = b"the next release"
    _poll(pipeline)
    assert processor.documents == [page, page]
    pipeline.store.close()


def test_a_document_the_parser_died_on_is_tried_again(tmp_path: Path) -> None:
    """A worker killed on a document (out of memory, say) says nothing about the bytes."""
    from aggregator.exceptions import ParserDied

    page = b"<rss><channel><title>t</title></channel></rss>"
    fetcher = FakeFetcher().answers("npr", _page(page), _page(page))
    pipeline = _pipeline(tmp_path, fetcher, FixedClock(T0))
    tried: list[bytes] = []

    def dies(content: bytes, **_arguments):
        tried.append(content)
        raise ParserDied("the parser failed on this document: worker process died")

    pipeline.processor = dies
    assert _poll(pipeline).status == "error"
    assert _poll(pipeline).status == "error"
    assert tried == [page, page]
    pipeline.store.close()


def test_a_document_whose_parsing_ran_out_of_time_is_read_again(tmp_path: Path) -> None:
    """A parse stopped at its budget says more of the machine than of the bytes: on a
    busy machine (three instances and a test run on two cores) a five-item feed took
    1.25 s against a budget of 1 s, its digest was kept as unreadable, and its items were
    never stored while the feed stayed the same."""
    from aggregator.exceptions import ParseTimeout

    fetcher = FakeFetcher().answers("npr", _rss_answer(), _rss_answer())
    pipeline = _pipeline(tmp_path, fetcher, FixedClock(T0))
    counting = CountingProcessor()
    budgets = iter([True, False])

    def slow_once(content: bytes, **arguments):
        if next(budgets):
            raise ParseTimeout("parsing was stopped: it took longer than 1s")
        return counting(content, **arguments)

    pipeline.processor = slow_once
    first = _poll(pipeline)
    assert first.status == "error" and first.error is not None
    assert "parsing was stopped" in first.error
    (source,) = pipeline.store.sources_for_poll(["npr"])
    assert source.unreadable is None
    assert _poll(pipeline).items_new == 10
    assert len(counting.documents) == 1
    pipeline.store.close()


def test_an_unreadable_document_after_another_failure_is_read_again(tmp_path: Path) -> None:
    """The status says why the last poll failed: after a server error, the same
    unreadable bytes are read again, so that their own reason is shown, not the error's."""
    page = b"<html><body>Not a feed</body></html>"
    fetcher = FakeFetcher().answers(
        "npr",
        _page(page),
        HTTPStatusError("https://npr.example/feed", 503, "HTTP 503 Service Unavailable"),
        _page(page),
    )
    pipeline = _pipeline(tmp_path, fetcher, FixedClock(T0))
    processor = pipeline.processor = CountingProcessor()
    first = _poll(pipeline)
    assert _poll(pipeline).error == "HTTP 503 Service Unavailable"
    third = _poll(pipeline)
    assert third.error == first.error and third.error is not None
    assert third.error.startswith("not a feed")
    assert processor.documents == [page, page]
    assert _state(pipeline).last_error == first.error
    pipeline.store.close()
