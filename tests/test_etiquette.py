"""Polite polling against a real loopback server: what publishers ask, we do."""

from __future__ import annotations

import gzip
import shutil
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator.fetch import Fetcher
from aggregator.pipeline import Pipeline, PooledProcessor, fetch_limits, parse_pool
from aggregator.settings import Settings
from aggregator.store import Store
from tests.builders import T0, FixedClock
from tests.conftest import DATA
from tests.feedserver import FeedServer, serve_directory

FEED = (DATA / "e2e" / "npr-world.xml").read_bytes()


class Harness:
    def __init__(self, tmp_path: Path, server: FeedServer) -> None:
        self.tmp_path = tmp_path
        self.server = server
        self.clock = FixedClock(T0)
        self.pipelines: list[Pipeline] = []

    def pipeline(self, sources: list[dict[str, Any]], **polling: Any) -> Pipeline:
        settings = Settings.model_validate(
            {
                "database": f"sqlite:///{self.tmp_path / 'db.sqlite'}",
                "polling": {"jitter": 0, "allow_networks": ["127.0.0.1/32"], **polling},
                "sources": sources,
            }
        )
        store = Store.open(settings.database)
        pipeline = Pipeline(
            settings=settings,
            store=store,
            fetcher=Fetcher(fetch_limits(settings)),
            clock=self.clock,
        )
        pipeline.sync_sources()
        self.pipelines.append(pipeline)
        return pipeline

    def close(self) -> None:
        for pipeline in self.pipelines:
            pipeline.fetcher.close()  # type: ignore[attr-defined]
            pipeline.store.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(DATA / "e2e" / "npr-world.xml", www / "feed.xml")
    with serve_directory(www) as server:
        h = Harness(tmp_path, server)
        try:
            yield h
        finally:
            h.close()


def _state(pipeline: Pipeline, name: str = "a"):
    return {s.name: s for s in pipeline.store.source_states()}[name]


def _poll_due(pipeline: Pipeline):
    names = [s.name for s in pipeline.settings.sources]
    return pipeline.poll_many(pipeline.store.due_sources(names, pipeline.clock.now()))


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, "3600", timedelta(hours=1)),
        (503, format_datetime(T0 + timedelta(hours=5), usegmt=True), timedelta(hours=5)),
    ],
)
def test_retry_after_is_honoured(
    harness: Harness, status: int, retry_after: str, expected: timedelta
) -> None:
    harness.server.scripted["/busy.xml"] = (status, {"Retry-After": retry_after}, b"busy")
    pipeline = harness.pipeline([{"name": "a", "url": harness.server.url("busy.xml")}])
    (outcome,) = pipeline.poll_all()
    assert (outcome.status, outcome.http_status) == ("error", status)
    assert _state(pipeline).next_poll_at == T0 + expected
    harness.clock.moment = T0 + expected - timedelta(seconds=1)
    assert _poll_due(pipeline) == ()


def test_cache_control_and_ttl_stretch_the_interval(harness: Harness) -> None:
    ttl_feed = FEED.replace(b"<channel>", b"<channel><ttl>120</ttl>", 1)
    harness.server.scripted["/cached.xml"] = (200, {"Cache-Control": "public, max-age=10800"}, FEED)
    harness.server.scripted["/ttl.xml"] = (200, {}, ttl_feed)
    pipeline = harness.pipeline(
        [
            {"name": "a", "url": harness.server.url("cached.xml")},
            {"name": "b", "url": harness.server.url("ttl.xml")},
        ],
        interval="15m",
    )
    pipeline.poll_all()
    assert _state(pipeline, "a").next_poll_at == T0 + timedelta(hours=3)
    assert _state(pipeline, "b").next_poll_at == T0 + timedelta(hours=2)


def test_gone_sources_stop_until_their_url_changes(harness: Harness) -> None:
    harness.server.scripted["/old.xml"] = (410, {}, b"gone")
    pipeline = harness.pipeline([{"name": "a", "url": harness.server.url("old.xml")}])
    (outcome,) = pipeline.poll_all()
    assert outcome.status == "gone"
    state = _state(pipeline)
    assert state.gone and state.last_http_status == 410
    harness.clock.moment = T0 + timedelta(days=30)
    assert _poll_due(pipeline) == ()
    assert pipeline.poll_all() == ()
    # The user gives it a new URL: it is polled again.
    moved = harness.pipeline([{"name": "a", "url": harness.server.url("feed.xml")}])
    (outcome,) = moved.poll_all()
    assert outcome.status == "ok" and not _state(moved).gone


def test_permanent_redirects_update_the_url_temporary_ones_do_not(harness: Harness) -> None:
    target = harness.server.url("feed.xml")
    harness.server.scripted["/moved.xml"] = (301, {"Location": target}, b"")
    harness.server.scripted["/away.xml"] = (302, {"Location": target}, b"")
    pipeline = harness.pipeline(
        [
            {"name": "a", "url": harness.server.url("moved.xml")},
            {"name": "b", "url": harness.server.url("away.xml")},
        ]
    )
    assert [o.status for o in pipeline.poll_all()] == ["ok", "ok"]
    assert _state(pipeline, "a").fetch_url == target
    assert _state(pipeline, "a").url == harness.server.url("moved.xml")  # the config's
    assert _state(pipeline, "b").fetch_url is None
    harness.server.log.clear()
    pipeline.poll_all()
    paths = sorted(path for path, _ in harness.server.log.entries)
    assert paths == ["/away.xml", "/feed.xml", "/feed.xml"]


def test_a_source_that_404s_for_hours_recovers_by_itself(harness: Harness) -> None:
    harness.server.scripted["/flaky.xml"] = (404, {}, b"not today")
    pipeline = harness.pipeline([{"name": "a", "url": harness.server.url("flaky.xml")}])
    for hour in range(6):
        harness.clock.moment = T0 + timedelta(hours=hour * 24)
        _poll_due(pipeline)
    assert _state(pipeline).consecutive_errors >= 3
    harness.server.scripted["/flaky.xml"] = (200, {}, FEED)
    harness.clock.moment = T0 + timedelta(days=30)
    (outcome,) = _poll_due(pipeline)
    assert outcome.status == "ok" and outcome.items_new == 10
    assert _state(pipeline).consecutive_errors == 0


def test_loopback_is_refused_unless_allowed(harness: Harness) -> None:
    pipeline = harness.pipeline(
        [{"name": "a", "url": harness.server.url("feed.xml")}], allow_networks=[]
    )
    (outcome,) = pipeline.poll_all()
    assert outcome.status == "error"
    assert "127.0.0.1 is a loopback address" in (outcome.error or "")
    assert "polling.allow_networks" in (outcome.error or "")
    assert harness.server.log.entries == []  # refused before connecting


def test_a_redirect_into_a_refused_range_is_refused(harness: Harness) -> None:
    sneaky = f"http://127.0.0.2:{harness.server.port}/feed.xml"
    harness.server.scripted["/redirect.xml"] = (302, {"Location": sneaky}, b"")
    pipeline = harness.pipeline([{"name": "a", "url": harness.server.url("redirect.xml")}])
    (outcome,) = pipeline.poll_all()
    assert outcome.status == "error"
    assert "127.0.0.2 is a loopback address" in (outcome.error or "")
    assert [path for path, _ in harness.server.log.entries] == ["/redirect.xml"]


def test_per_host_limit_holds(harness: Harness) -> None:
    harness.server.hold = 0.2
    sources = [
        {"name": f"s{i}", "url": harness.server.url(f"feed.xml?n={i}", host=host)}
        for i, host in enumerate(["127.0.0.1", "localhost"] * 5)
    ]
    pipeline = harness.pipeline(sources, per_host=2, concurrency=10)
    outcomes = pipeline.poll_all()
    assert {o.status for o in outcomes} == {"ok"}
    assert harness.server.peak_in_flight == {"127.0.0.1": 2, "localhost": 2}


def test_user_agent_names_us_and_the_operator(harness: Harness) -> None:
    pipeline = harness.pipeline(
        [{"name": "a", "url": harness.server.url("feed.xml")}],
        contact="mailto:ops@example.org",
    )
    pipeline.poll_all()
    (agent,) = harness.server.user_agents
    assert agent.startswith("aggregator/")
    assert "mailto:ops@example.org" in agent


def test_a_runaway_parse_is_cut_off_without_stalling_other_sources(harness: Harness) -> None:
    # feedparser's author regex is quadratic: this one document would take minutes.
    hostile = (
        b'<rss version="2.0"><channel><title>t</title><item><title>x</title><author>a@'
        + b"a-" * 60_000
        + b"</author></item></channel></rss>"
    )
    harness.server.scripted["/slow-to-parse.xml"] = (200, {}, hostile)
    pipeline = harness.pipeline(
        [
            {"name": "a", "url": harness.server.url("slow-to-parse.xml")},
            {"name": "b", "url": harness.server.url("feed.xml")},
        ],
        parse_timeout="2s",
    )
    pool = parse_pool(pipeline.settings)
    pipeline.processor = PooledProcessor(pool)
    try:
        outcomes = {o.source: o for o in pipeline.poll_all()}
        assert outcomes["b"].status == "ok" and outcomes["b"].items_new == 10
        assert outcomes["a"].status == "error"
        assert outcomes["a"].error == "parsing was stopped: it took longer than 2s"
        # Stopped for time, which a busy machine can cause: the bytes are read again.
        assert pipeline.store.sources_for_poll(["a"])[0].unreadable is None
        # The pool replaced the killed worker and goes on working.
        harness.clock.moment = T0 + timedelta(days=1)
        harness.server.scripted["/slow-to-parse.xml"] = (200, {}, FEED)
        (again,) = [o for o in _poll_due(pipeline) if o.source == "a"]
        assert again.status == "ok"
    finally:
        pool.close()


def test_a_gzip_bomb_is_stopped_at_the_size_cap(harness: Harness) -> None:
    bomb = gzip.compress(b"<rss>" + b" " * 50_000_000)
    harness.server.scripted["/bomb.xml"] = (200, {"Content-Encoding": "gzip"}, bomb)
    pipeline = harness.pipeline(
        [{"name": "a", "url": harness.server.url("bomb.xml")}], max_bytes="1MB"
    )
    tracemalloc.start()
    try:
        (outcome,) = pipeline.poll_all()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(bomb) < 100_000
    assert outcome.error == "response is larger than 1000000 bytes"
    assert peak < 20_000_000  # a cap, not 50 MB expanded in memory


def test_a_dripping_server_is_cut_off_at_the_deadline(harness: Harness) -> None:
    harness.server.drip["/drip.xml"] = 0.2
    pipeline = harness.pipeline(
        [
            {"name": "a", "url": harness.server.url("drip.xml")},
            {"name": "b", "url": harness.server.url("feed.xml")},
        ],
        timeout="2s",
    )
    outcomes = {o.source: o for o in pipeline.poll_all()}
    assert outcomes["a"].error == "response took longer than 2s"
    assert outcomes["b"].status == "ok"


def test_a_redirect_loop_stops(harness: Harness) -> None:
    harness.server.scripted["/loop.xml"] = (302, {"Location": "/loop.xml"}, b"")
    pipeline = harness.pipeline([{"name": "a", "url": harness.server.url("loop.xml")}])
    (outcome,) = pipeline.poll_all()
    assert outcome.error == "more than 5 redirects"
    assert len(harness.server.log.entries) == 6


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as the RFC says
        ("deflate", lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS)),  # bare, as IIS
    ],
)
def test_compressed_responses_are_read(harness: Harness, encoding: str, compress) -> None:
    harness.server.scripted["/z.xml"] = (200, {"Content-Encoding": encoding}, compress(FEED))
    pipeline = harness.pipeline([{"name": "a", "url": harness.server.url("z.xml")}])
    (outcome,) = pipeline.poll_all()
    assert (outcome.status, outcome.items_new) == ("ok", 10)
