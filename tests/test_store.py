"""Store contract tests: the same assertions on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from aggregator.exceptions import SchemaOutdated
from aggregator.process.normalize import normalize_items
from aggregator.store import Store, create_store_engine, ensure_schema
from aggregator.store import sources as sources_module
from aggregator.store.database import SCHEMA_REVISION, current_revision, head_revision
from aggregator.store.schema import item_series, item_sources, items
from aggregator.types import PollSchedule, SourceDefinition, SourceNotModified
from tests.builders import T0, make_item, make_parsed, save_batch

LATER = T0 + timedelta(minutes=15)


def _define(store: Store, *names: str) -> None:
    store.sync_sources(
        [SourceDefinition(name=n, title=n.title(), url=f"https://{n}.example/feed") for n in names],
        T0,
    )


def _save(store: Store, name: str, batch, *, series=None, now=T0) -> int:
    return save_batch(store, name, batch, series=series, now=now, etag='"v1"')


def _count(store: Store, table) -> int:
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_repolling_the_same_items_inserts_nothing(store: Store) -> None:
    _define(store, "bbc")
    batch = [make_item("a"), make_item("b")]
    assert _save(store, "bbc", batch) == 2
    assert _save(store, "bbc", batch, now=LATER) == 0
    assert _count(store, items) == 2
    assert _count(store, item_sources) == 2


def test_same_link_from_two_outlets_is_one_item_crediting_both(store: Store) -> None:
    _define(store, "bbc", "npr")
    _save(store, "bbc", [make_item("a")])
    npr_copy = make_item("a", entry_key="guid:npr-1", guid="npr-1", title="NPR's title")
    assert _save(store, "npr", [npr_copy], now=LATER) == 1
    assert _count(store, items) == 1
    (entry,) = store.feed_entries(series_slugs=None, limit=10)
    assert [c.source for c in entry.credits] == ["bbc", "npr"]
    assert [c.guid for c in entry.credits] == ["a", "npr-1"]
    assert entry.title == "Title a"  # the first outlet's text is kept
    assert entry.updated == LATER  # a new outlet joining changes the entry


def test_changed_content_from_origin_updates_the_item(store: Store) -> None:
    _define(store, "bbc")
    _save(store, "bbc", [make_item("a")])
    _save(store, "bbc", [make_item("a", title="Corrected title")], now=LATER)
    (entry,) = store.feed_entries(series_slugs=None, limit=10)
    assert entry.title == "Corrected title"
    assert entry.updated == LATER
    assert _count(store, items) == 1


def test_entries_newest_first_and_filtered(store: Store) -> None:
    _define(store, "bbc", "npr")
    _save(store, "bbc", [make_item("old", published=T0 - timedelta(hours=2))])
    _save(store, "npr", [make_item("new", published=T0 - timedelta(hours=1))])
    everything = store.feed_entries(series_slugs=None, limit=10)
    assert [e.title for e in everything] == ["Title new", "Title old"]
    only_bbc = store.feed_entries(source_filters=[["bbc"]], series_slugs=None, limit=10)
    assert [e.title for e in only_bbc] == ["Title old"]
    assert store.feed_entries(source_filters=[[]], series_slugs=None, limit=10) == ()
    assert len(store.feed_entries(series_slugs=None, limit=1)) == 1


def test_future_dates_sort_no_later_than_first_seen(store: Store) -> None:
    _define(store, "bbc")
    _save(store, "bbc", [make_item("future", published=T0 + timedelta(days=300))])
    _save(store, "bbc", [make_item("now", published=T0 + timedelta(minutes=5))], now=LATER)
    entries = store.feed_entries(series_slugs=None, limit=10)
    assert [e.title for e in entries] == ["Title now", "Title future"]
    assert entries[1].published == T0


def test_series_membership_is_stored_and_filters(store: Store) -> None:
    _define(store, "bbc")
    _save(store, "bbc", [make_item("isis"), make_item("other")], series={"guid:isis": ("is",)})
    _save(store, "bbc", [make_item("isis")], series={"guid:isis": ("is",)}, now=LATER)
    assert _count(store, item_series) == 1
    entries = store.feed_entries(series_slugs=["is"], limit=10)
    assert [(e.title, e.series) for e in entries] == [("Title isis", ("is",))]


def test_items_without_link_are_scoped_to_their_source(store: Store) -> None:
    _define(store, "bbc", "npr")
    _save(store, "bbc", [make_item("x", link=None, identity="src:bbc:guid:x")])
    _save(store, "npr", [make_item("x", link=None, identity="src:npr:guid:x")])
    assert _count(store, items) == 2


def test_failure_keeps_validators_and_counts_errors(store: Store) -> None:
    _define(store, "bbc")
    _save(store, "bbc", [make_item("a")])
    counts = [
        store.save_failure(
            "bbc",
            error="HTTP 503",
            http_status=503,
            now=LATER,
            next_poll_at=lambda errors: LATER + timedelta(minutes=errors),
        )
        for _ in range(2)
    ]
    assert counts == [1, 2]
    (state,) = store.source_states()
    assert (state.etag, state.last_status, state.consecutive_errors) == ('"v1"', "error", 2)
    assert state.next_poll_at == LATER + timedelta(minutes=2)
    assert state.last_error == "HTTP 503"
    assert state.item_count == 1
    store.save_not_modified(
        [
            SourceNotModified(
                name="bbc", etag='"v1"', last_modified=None, polled_at=LATER, next_poll_at=LATER
            )
        ]
    )
    (state,) = store.source_states()
    assert (state.last_status, state.consecutive_errors, state.last_error) == (
        "not_modified",
        0,
        None,
    )


def test_due_sources_follow_next_poll_time(store: Store) -> None:
    _define(store, "bbc", "npr")
    assert {s.name for s in store.due_sources(["bbc", "npr"], T0)} == {"bbc", "npr"}
    _save(store, "bbc", [])
    assert {s.name for s in store.due_sources(["bbc", "npr"], T0)} == {"npr"}
    assert {s.name for s in store.due_sources(["bbc"], LATER)} == {"bbc"}


def test_changed_url_in_config_resets_validators(store: Store) -> None:
    _define(store, "bbc")
    _save(store, "bbc", [make_item("a")])
    store.sync_sources([SourceDefinition(name="bbc", title="BBC", url="https://new.example/")], T0)
    (state,) = store.source_states()
    assert (state.url, state.etag) == ("https://new.example/", None)


def test_a_large_batch_is_stored_in_one_poll(store: Store) -> None:
    _define(store, "bbc")
    batch = [make_item(f"i{n}") for n in range(1200)]
    assert _save(store, "bbc", batch) == 1200
    assert _save(store, "bbc", batch, now=LATER) == 0


def test_outdated_schema_is_refused(database_url: str) -> None:
    engine = create_store_engine(database_url)
    try:
        ensure_schema(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
        with pytest.raises(SchemaOutdated, match="aggregator migrate"):
            ensure_schema(engine)
    finally:
        engine.dispose()


def test_the_schema_revision_a_store_expects_is_alembics_head(database_url: str) -> None:
    assert head_revision() == SCHEMA_REVISION
    engine = create_store_engine(database_url)
    try:
        ensure_schema(engine)
        assert current_revision(engine) == SCHEMA_REVISION
    finally:
        engine.dispose()


def _titles(store: Store, **filters) -> list[str]:
    return [e.title for e in store.feed_entries(series_slugs=None, limit=100, **filters)]


def test_reordered_feed_with_a_shared_guid_loses_nothing(store: Store) -> None:
    """A and B share a guid; C arrives on top with the same guid."""
    _define(store, "bbc")
    a, b, c = (
        make_parsed(guid="same", link=f"https://example.com/{x}", title=x) for x in ("A", "B", "C")
    )
    _save(store, "bbc", normalize_items([a, b], source_name="bbc", now=T0))
    new = _save(store, "bbc", normalize_items([c, a, b], source_name="bbc", now=LATER), now=LATER)
    assert new == 1
    assert sorted(_titles(store)) == ["A", "B", "C"]


def test_two_entries_with_one_link_do_not_flip_the_item(store: Store) -> None:
    _define(store, "bbc")
    entries = [
        make_parsed(guid="g1", link="https://example.com/L", title="Headline"),
        make_parsed(
            guid="g2", link="https://example.com/L?utm_source=rss", title="Video: Headline"
        ),
    ]
    _save(store, "bbc", normalize_items(entries, source_name="bbc", now=T0))
    before = store.feed_entries(series_slugs=None, limit=10)
    for poll in range(1, 3):
        later = T0 + timedelta(hours=poll)
        _save(store, "bbc", normalize_items(entries, source_name="bbc", now=later), now=later)
    assert store.feed_entries(series_slugs=None, limit=10) == before
    assert _titles(store) == ["Headline"]


def test_one_of_two_entries_on_one_item_moving_leaves_the_item_to_the_other(
    store: Store,
) -> None:
    """Two of an outlet's entries credit one item (two guids, one link); one moves to a
    new link. The item is not renamed under the entry that stays (which would then
    credit an item of another link, and rename it back on the next poll): the moved
    entry gets an item of its own."""
    _define(store, "bbc")
    one, two = (
        make_parsed(guid=g, link="https://example.com/a", title=t)
        for g, t in (("g1", "One"), ("g2", "Two"))
    )
    _save(store, "bbc", normalize_items([one, two], source_name="bbc", now=T0))
    moved = replace(two, link="https://example.com/b")
    for poll in range(1, 4):  # the same document again: nothing changes
        later = T0 + timedelta(hours=poll)
        _save(store, "bbc", normalize_items([one, moved], source_name="bbc", now=later), now=later)
        with store.engine.connect() as connection:
            rows = connection.execute(
                select(item_sources.c.entry_key, items.c.link, items.c.title)
                .join(items, items.c.id == item_sources.c.item_id)
                .order_by(item_sources.c.entry_key)
            ).all()
        assert [tuple(r) for r in rows] == [
            ("guid:g1", "https://example.com/a", "One"),
            ("guid:g2", "https://example.com/b", "Two"),
        ], f"after poll {poll}"


def test_origin_moving_an_article_to_a_new_link_follows_it(store: Store) -> None:
    _define(store, "a", "b")
    old = make_parsed(guid="g1", link="https://example.com/old", title="Typo")
    _save(store, "a", normalize_items([old], source_name="a", now=T0))
    (before,) = store.feed_entries(series_slugs=None, limit=10)
    moved = make_parsed(guid="g1", link="https://example.com/new", title="Typo")
    _save(store, "a", normalize_items([moved], source_name="a", now=LATER), now=LATER)
    (after,) = store.feed_entries(series_slugs=None, limit=10)
    assert (after.id, after.link) == (before.id, "https://example.com/new")
    other = make_parsed(guid="x", link="https://example.com/new", title="Other outlet")
    _save(store, "b", normalize_items([other], source_name="b", now=LATER), now=LATER)
    (shared,) = store.feed_entries(series_slugs=None, limit=10)
    assert sorted(c.source for c in shared.credits) == ["a", "b"]


def test_moving_to_a_link_another_outlet_has_merges_and_drops_the_orphan(store: Store) -> None:
    _define(store, "a", "b")
    _save(
        store,
        "b",
        normalize_items(
            [make_parsed(guid="x", link="https://e.com/new", title="B")], source_name="b", now=T0
        ),
    )
    _save(
        store,
        "a",
        normalize_items(
            [make_parsed(guid="g", link="https://e.com/old", title="A")], source_name="a", now=T0
        ),
        series={},
    )
    moved = normalize_items(
        [make_parsed(guid="g", link="https://e.com/new", title="A")], source_name="a", now=LATER
    )
    assert _save(store, "a", moved, now=LATER) == 0
    (entry,) = store.feed_entries(series_slugs=None, limit=10)
    assert (entry.title, sorted(c.source for c in entry.credits)) == ("B", ["a", "b"])
    assert _count(store, items) == 1


def test_an_entry_that_gains_a_guid_is_not_new(store: Store) -> None:
    _define(store, "bbc")
    _save(
        store,
        "bbc",
        normalize_items(
            [make_parsed(guid=None, link="https://e.com/1", title="T")], source_name="bbc", now=T0
        ),
    )
    again = normalize_items(
        [make_parsed(guid="g-1", link="https://e.com/1", title="T")], source_name="bbc", now=LATER
    )
    assert _save(store, "bbc", again, now=LATER) == 0
    assert (_count(store, items), _count(store, item_sources)) == (1, 1)
    assert _save(store, "bbc", again, now=LATER) == 0


def test_combined_filters_and_series_filter(store: Store) -> None:
    _define(store, "a", "b", "c")
    _save(store, "a", [make_item("shared"), make_item("a-only")], series={"guid:a-only": ("s",)})
    _save(store, "b", [make_item("shared", entry_key="guid:b1", guid="b1")])
    _save(store, "c", [make_item("c-only")], series={"guid:c-only": ("s",)})
    # sources: [a] AND tags -> {b}: only what a and b both carried.
    assert _titles(store, source_filters=[["a"], ["b"]]) == ["Title shared"]
    assert sorted(_titles(store, source_filters=[["a", "c"]])) == [
        "Title a-only",
        "Title c-only",
        "Title shared",
    ]
    entries = store.feed_entries(source_filters=[["a"]], series_slugs=["s"], limit=10)
    assert [e.title for e in entries] == ["Title a-only"]


def test_an_outlet_listing_one_article_twice_is_credited_once(store: Store) -> None:
    _define(store, "bbc")
    _save(store, "bbc", [make_item("a"), make_item("a", entry_key="guid:a2", guid="a2")])
    (entry,) = store.feed_entries(series_slugs=None, limit=10)
    assert [c.source for c in entry.credits] == ["bbc"]


def test_undated_items_keep_the_document_order(store: Store) -> None:
    _define(store, "bbc")
    batch = [make_item(k, published=None) for k in ("top", "middle", "bottom")]
    _save(store, "bbc", batch)
    assert _titles(store) == ["Title top", "Title middle", "Title bottom"]


def test_series_membership_follows_an_updated_item(store: Store) -> None:
    _define(store, "bbc")
    _save(store, "bbc", [make_item("a", title="Old")])
    _save(
        store, "bbc", [make_item("a", title="ISIS claims")], series={"guid:a": ("is",)}, now=LATER
    )
    assert _titles(store) == ["ISIS claims"]
    entries = store.feed_entries(series_slugs=["is"], limit=10)
    assert [e.series for e in entries] == [("is",)]


def test_a_poll_is_one_transaction(store: Store, monkeypatch) -> None:
    """Items and validators commit together: a failure after the items keeps neither."""
    _define(store, "bbc")

    def fail(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(sources_module, "record_success", fail)
    with pytest.raises(RuntimeError):
        _save(store, "bbc", [make_item("a")])
    monkeypatch.undo()
    (state,) = store.source_states()
    assert (state.item_count, state.etag, _count(store, items)) == (0, None, 0)


def test_concurrent_polls_of_overlapping_items_all_land(database_url: str) -> None:
    """Eight outlets carrying the same 300 links in different orders, written at once."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    store = Store.open(database_url)
    try:
        names = [f"s{i}" for i in range(8)]
        _define(store, *names)
        links = [make_item(f"story{n}") for n in range(300)]

        def poll(name: str) -> int:
            batch = [
                make_item(f"story{n}", entry_key=f"guid:{name}-{n}", guid=f"{name}-{n}")
                for n in random.Random(name).sample(range(300), 300)
            ]
            return _save(store, name, batch)

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(poll, names))
        assert results == [300] * 8
        assert _count(store, items) == len(links)
        assert _count(store, item_sources) == 300 * 8
    finally:
        store.close()


def test_a_process_sqlite_writers_take_turns_without_the_busy_timeout(tmp_path) -> None:
    """With no busy timeout at all (?timeout=0), SQLite refuses a second writer at once:
    eight threads saving polls together land only because the store lets one write at a
    time (not SQLite's busy handler, which sleeps while the lock may be free)."""
    from concurrent.futures import ThreadPoolExecutor

    store = Store.open(f"sqlite:///{tmp_path / 'busy.db'}?timeout=0")
    try:
        names = [f"s{i}" for i in range(8)]
        _define(store, *names)

        def poll(name: str) -> int:
            return sum(
                _save(store, name, [make_item(f"{name}-{round_}-{n}") for n in range(50)])
                for round_ in range(5)
            )

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(poll, names))
        assert results == [250] * 8
        assert _count(store, items) == 8 * 250
    finally:
        store.close()


def test_the_publication_counter_moves_with_what_feeds_show_and_only_then(
    store: Store,
) -> None:
    from aggregator.grouping import StoryAssigner
    from aggregator.process.stories import GroupingRules

    _define(store, "bbc", "npr")
    start = store.published_version()
    _save(store, "bbc", [make_item("a"), make_item("b")])
    after_poll = store.published_version()
    assert after_poll > start
    _save(store, "bbc", [make_item("a"), make_item("b")], now=LATER)  # nothing new
    assert store.published_version() == after_poll
    npr_copy = make_item("a", entry_key="guid:npr-1", guid="npr-1")
    _save(store, "npr", [npr_copy], now=LATER)  # a new outlet credited
    after_credit = store.published_version()
    assert after_credit > after_poll
    StoryAssigner(store, GroupingRules()).assign_pending(LATER)  # stories change entries
    assert store.published_version() > after_credit


LEASE = timedelta(minutes=5)


def _claim(store: Store, owner: str, now=T0, *, limit: int = 10, per_host: int = 2) -> set[str]:
    names = [s.name for s in store.source_states()]
    claimed = store.claim_due_sources(
        names, now, owner=owner, lease=LEASE, limit=limit, per_host=per_host
    )
    return {s.name for s in claimed}


def test_a_claimed_source_is_left_to_its_owner_until_the_lease_runs_out(store: Store) -> None:
    _define(store, "bbc", "npr")
    assert _claim(store, "one") == {"bbc", "npr"}
    assert _claim(store, "two") == set()
    assert _claim(store, "two", T0 + LEASE - timedelta(seconds=1)) == set()
    # "one" died without recording its polls: the sources return to the pool.
    assert _claim(store, "two", T0 + LEASE) == {"bbc", "npr"}


def test_recording_a_poll_ends_its_lease_and_the_next_claim_waits_for_the_due_time(
    store: Store,
) -> None:
    _define(store, "bbc", "npr")
    assert _claim(store, "one") == {"bbc", "npr"}
    _save(store, "bbc", [make_item("a")])  # due again at LATER
    store.save_failure("npr", error="boom", http_status=500, now=T0, next_poll_at=lambda _: LATER)
    assert _claim(store, "two", T0 + timedelta(seconds=1)) == set()
    assert _claim(store, "two", LATER) == {"bbc", "npr"}
    assert {s.name: s.consecutive_errors for s in store.source_states()}["npr"] == 1


def test_the_pollable_count_is_of_the_named_sources_that_are_not_gone(store: Store) -> None:
    _define(store, "bbc", "npr", "abc")
    store.save_gone("abc", error="gone", http_status=410, now=T0)
    names = ["bbc", "npr", "abc", "unknown"]
    assert store.pollable_count(names) == len(store.sources_for_poll(names)) == 2
    assert store.pollable_count(["abc"]) == 0


def test_a_shortened_interval_brings_only_later_polls_forward(store: Store) -> None:
    """``poll_sooner`` (a reload shortened these intervals): a source due later than its
    last poll plus the new interval comes forward to it; one due sooner stays; a gone
    source stays gone; a name the store does not know is passed over."""
    _define(store, "bbc", "npr", "abc")
    far = T0 + timedelta(hours=6)
    for name in ("bbc", "npr"):
        store.save_failure(name, error="down", http_status=503, now=T0, next_poll_at=lambda _: far)
    store.save_gone("abc", error="gone", http_status=410, now=T0)
    store.poll_sooner(
        {
            "bbc": timedelta(minutes=5),
            "npr": timedelta(hours=8),
            "abc": timedelta(minutes=1),
            "unknown": timedelta(minutes=1),
        },
        T0 + timedelta(minutes=1),
    )
    states = {s.name: s for s in store.source_states()}
    assert states["bbc"].next_poll_at == T0 + timedelta(minutes=5)
    assert states["npr"].next_poll_at == far
    assert states["abc"].gone


def test_scheduling_lag_is_the_longest_wait_of_a_due_source_nobody_polls(
    store: Store,
) -> None:
    _define(store, "bbc", "npr")
    minute = timedelta(minutes=1)
    store.save_failure(
        "bbc", error="down", http_status=503, now=T0, next_poll_at=lambda _: T0 + minute
    )
    store.save_failure("npr", error="down", http_status=503, now=T0, next_poll_at=lambda _: T0)
    assert store.scheduling_lag(["bbc", "npr"], T0 + 1.5 * minute) == 1.5 * minute
    claimed = store.claim_due_sources(["npr"], T0, owner="x", lease=LEASE, limit=1, per_host=2)
    assert [s.name for s in claimed] == ["npr"]  # being polled: not waiting
    assert store.scheduling_lag(["bbc", "npr"], T0 + 1.5 * minute) == 0.5 * minute
    assert store.scheduling_lag(["bbc"], T0 + 0.5 * minute) == timedelta(0)  # not due yet


def test_claims_keep_to_the_per_host_limit_across_owners(store: Store) -> None:
    store.sync_sources(
        [
            SourceDefinition(name=f"s{n}", title=f"S{n}", url=f"https://one.example/{n}")
            for n in range(5)
        ]
        + [SourceDefinition(name="other", title="Other", url="https://two.example/feed")],
        T0,
    )
    first = _claim(store, "one", limit=1)
    second = _claim(store, "two")
    third = _claim(store, "three")
    on_one_host = [n for n in first | second | third if n != "other"]
    assert len(on_one_host) == 2  # per_host=2, whoever claimed
    assert "other" in first | second
    assert third == set()


def test_a_stopping_process_gives_back_what_it_did_not_poll(store: Store) -> None:
    _define(store, "bbc", "npr", "dw")
    assert _claim(store, "one") == {"bbc", "npr", "dw"}
    store.release_leases("one", keep=["dw"])  # dw's poll was abandoned mid-write
    assert _claim(store, "two") == {"bbc", "npr"}


def test_concurrent_claims_never_hand_out_a_source_twice(store: Store) -> None:
    names = [f"s{n:02d}" for n in range(60)]
    store.sync_sources(
        [SourceDefinition(name=n, title=n, url=f"https://{n}.example/feed") for n in names], T0
    )
    start = threading.Barrier(6)

    def claim_all(owner: str) -> list[str]:
        start.wait()
        got: list[str] = []
        while batch := _claim(store, owner, limit=3):
            got.extend(batch)
        return got

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(claim_all, [f"owner{n}" for n in range(6)]))
    every = [name for result in results for name in result]
    assert sorted(every) == names
    assert sum(1 for result in results if result) > 1  # they did race


def test_instances_started_together_on_an_empty_database_all_open_it(postgres_url: str) -> None:
    start = threading.Barrier(3)

    def open_store(_: int) -> str | None:
        start.wait()
        store = Store.open(postgres_url)  # creates the schema when the database is empty
        try:
            return current_revision(store.engine)
        finally:
            store.close()

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(open_store, range(3))) == [SCHEMA_REVISION] * 3


def test_a_poll_recorded_after_its_lease_ran_out_leaves_the_new_holders_lease(
    store: Store,
) -> None:
    _define(store, "bbc")
    assert _claim(store, "one") == {"bbc"}
    assert _claim(store, "two", T0 + LEASE) == {"bbc"}  # "one" was too slow: "two" polls
    store.save_failure(  # one's poll lands at last
        "bbc",
        error="slow",
        http_status=None,
        now=T0 + LEASE,
        next_poll_at=lambda _: T0 + LEASE,
        lease_owner="one",
    )
    assert _claim(store, "three", T0 + LEASE) == set()  # two still holds it
    store.save_poll(  # and so do its content and its items
        "bbc",
        batch=[make_item("late")],
        series={},
        http_status=200,
        etag=None,
        last_modified=None,
        now=T0 + LEASE,
        schedule=lambda _new: PollSchedule(next_poll_at=T0 + LEASE),
        lease_owner="one",
    )
    assert _claim(store, "three", T0 + LEASE) == set()
    store.save_not_modified(
        [
            SourceNotModified(
                name="bbc",
                etag=None,
                last_modified=None,
                polled_at=T0 + LEASE,
                next_poll_at=T0 + LEASE,
                lease_owner="two",
            )
        ]
    )
    assert _claim(store, "three", T0 + LEASE) == {"bbc"}  # two's own record ended it
    store.save_gone("bbc", error="gone", http_status=410, now=T0 + LEASE, lease_owner="two")
    assert store.lease_owners(T0 + LEASE) == ["three"]  # two's late 410 left it to three


def test_deciding_series_again_sees_a_credit_written_meanwhile(store: Store) -> None:
    """Two pollers credit one article at once: the later decision sees both credits
    (on SQLite the decision's reads are inside its write transaction)."""
    from aggregator.types import SeriesMembership

    _define(store, "bbc", "npr")
    _save(store, "bbc", [make_item("a")])
    identity = make_item("a").identity

    def by_carrier(texts):
        return [
            (t.item_id, SeriesMembership(slug=f"by-{s}", reason="test"))
            for t in texts
            for s in t.sources
        ]

    def other_poller() -> None:
        _save(store, "npr", [make_item("a", entry_key="guid:npr-a")])
        store.redecide_series([identity], by_carrier)

    def first_decision(texts):
        # The other poller runs while this decision is under way; it must wait for it.
        other = threading.Thread(target=other_poller)
        other.start()
        other.join(2)
        return by_carrier(texts)

    store.redecide_series([identity], first_decision)
    with store.engine.connect() as connection:
        for _ in range(100):  # the other poller, released by our commit, finishes
            slugs = sorted(connection.execute(select(item_series.c.series_slug)).scalars())
            if len(slugs) == 2:
                break
            connection.rollback()
            threading.Event().wait(0.05)  # polling with a bound, not hiding a race
    assert slugs == ["by-bbc", "by-npr"]


def test_a_busy_host_does_not_hide_other_hosts_due_sources(store: Store) -> None:
    store.sync_sources(
        [
            SourceDefinition(name=f"a{n:02d}", title="A", url=f"https://one.example/{n}")
            for n in range(40)
        ]
        + [SourceDefinition(name="zzz", title="Z", url="https://two.example/feed")],
        T0,
    )
    assert len(_claim(store, "one", limit=2)) == 2  # one.example is at per_host now
    assert _claim(store, "two", limit=1) == {"zzz"}  # due, and its host is idle


def test_postgresql_sessions_are_in_utc_whatever_the_server_says(postgres_url: str) -> None:
    """A server in another time zone changes nothing: dates come back in UTC (as
    datetime.UTC itself, not a ZoneInfo converted on every read)."""
    from datetime import UTC

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    options = f"{url.query.get('options', '')} -ctimezone=Asia/Kolkata".strip()
    elsewhere = url.update_query_dict({"options": options}).render_as_string(hide_password=False)
    store = Store.open(elsewhere)
    try:
        _define(store, "bbc")
        save_batch(store, "bbc", [make_item("a")])
        (entry,) = store.feed_entries(series_slugs=None, limit=1)
        assert entry.published is not None and entry.published.tzinfo is UTC
        assert entry.published == make_item("a").published
        with store.engine.connect() as connection:
            assert connection.execute(text("SHOW timezone")).scalar_one() == "UTC"
    finally:
        store.close()
    # A store over an engine made elsewhere, its sessions in the server's zone: the
    # datetimes are converted as they are read.
    from sqlalchemy import create_engine

    elsewhere_store = Store(create_engine(elsewhere))
    try:
        (entry,) = elsewhere_store.feed_entries(series_slugs=None, limit=1)
        assert entry.published is not None and entry.published.tzinfo is UTC
        assert entry.published == make_item("a").published
    finally:
        elsewhere_store.close()


@contextmanager
def _small_store_running(
    url: str, action: Callable[[Store], object]
) -> Iterator[tuple[Store, list[tuple[str, Any]]]]:
    """A store of 24 items from 12 outlets at ``url``, and the SELECTs (statement and
    parameters) that ``action`` ran on it."""
    from sqlalchemy import event

    store = Store.open(url)
    try:
        names = [f"s{n}" for n in range(12)]
        _define(store, *names)
        for n, name in enumerate(names):
            _save(store, name, [make_item(f"i{n}"), make_item(f"j{n}")])
        statements: list[tuple[str, Any]] = []

        def seen(*args: Any) -> None:  # before_cursor_execute(conn, cursor, statement, ...)
            if args[2].lstrip().upper().startswith("SELECT"):
                statements.append((args[2], args[3]))

        event.listen(store.engine, "before_cursor_execute", seen)
        action(store)
        event.remove(store.engine, "before_cursor_execute", seen)
        assert statements
        yield store, statements
    finally:
        store.close()


def _plans_of_a_feed_page(tmp_path: Path, **page: Any) -> list[str]:
    """EXPLAIN QUERY PLAN of every statement one feed page runs, on a small SQLite store."""

    def load(store: Store) -> None:
        assert len(store.feed_entries(series_slugs=None, limit=5, **page)) == 5

    url = f"sqlite:///{tmp_path / 'plan.db'}"
    with _small_store_running(url, load) as (store, statements), store.engine.connect() as db:
        cursor = db.connection.cursor()
        return [
            " | ".join(row[3] for row in cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            for sql, params in statements
        ]


@pytest.mark.parametrize(
    "page", [{}, {"source_filters": [[f"s{n}" for n in range(10)]]}], ids=["all", "sources"]
)
def test_a_feed_page_reads_through_indexes_on_sqlite(tmp_path: Path, page: dict[str, Any]) -> None:
    """The hot queries of a feed page (docs/design.md): the items are walked down
    (sort_at, id) with no sort of their own, and nothing else is scanned whole."""
    plans = _plans_of_a_feed_page(tmp_path, **page)
    walks = [plan for plan in plans if "ix_items_sort_at_id" in plan]
    assert walks and all("TEMP B-TREE" not in plan for plan in walks), walks
    for plan in plans:
        scans = [step for step in plan.split(" | ") if step.startswith("SCAN ")]
        assert all("ix_items_sort_at_id" in step for step in scans), plan


def test_a_sources_filter_probes_each_item_once_on_sqlite(tmp_path: Path) -> None:
    """The query plan of a filtered feed page: each walked item is looked up once by
    item_id in (item_id, source_id), its sources read from the index. With the bare
    column in ``source_id IN (...)`` SQLite looked it up once per listed source: 160 ms
    a page at a million items, with nothing wrong in the results."""
    plans = _plans_of_a_feed_page(tmp_path, source_filters=[[f"s{n}" for n in range(10)]])
    probes = [plan for plan in plans if "EXISTS" in plan or "CORRELATED" in plan]
    assert probes, plans
    for plan in probes:
        assert "ix_item_sources_item_id_source_id (item_id=?)" in plan, plan
        assert "source_id=?" not in plan, plan


NO_SEQSCAN = ("enable_seqscan",)
NO_SEQSCAN_NOR_SORT = ("enable_seqscan", "enable_sort", "enable_hashagg")


def _postgres_plans(url: str, action: Callable[[Store], object], off: tuple[str, ...]) -> list[str]:
    """EXPLAIN of every SELECT ``action`` runs on a small PostgreSQL store, with the
    planner settings ``off`` priced out: a plan that still has a sequential scan (or,
    with sorts off, a sort) has no index to serve it instead."""
    with _small_store_running(url, action) as (store, statements):
        plans = []
        with store.engine.connect() as connection:
            for setting in off:
                connection.exec_driver_sql(f"SET {setting} = off")
            cursor = connection.connection.cursor()
            for sql, params in statements:
                cursor.execute(f"EXPLAIN {sql}", params)
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
        return plans


@pytest.mark.parametrize(
    "page",
    [{}, {"source_filters": [[f"s{n}" for n in range(10)]]}, {"merge": "story"}],
    ids=["all", "sources", "stories"],
)
def test_a_feed_page_reads_through_indexes_on_postgresql(
    postgres_url: str, page: dict[str, Any]
) -> None:
    """The page's walk goes down (sort_at, id) backwards with no sort of its own, and no
    statement of the page reads a table whole (docs/design.md, at a million items)."""

    def load(store: Store) -> None:
        assert len(store.feed_entries(series_slugs=None, limit=5, **page)) == 5

    walks = [
        plan
        for plan in _postgres_plans(postgres_url, load, NO_SEQSCAN_NOR_SORT)
        if "ix_items_sort_at_id" in plan
    ]
    assert len(walks) == 1, walks
    assert "Index Scan Backward using ix_items_sort_at_id" in walks[0], walks[0]
    assert "Sort" not in walks[0], walks[0]
    for plan in _postgres_plans(postgres_url, load, NO_SEQSCAN):
        # The walk stops at its LIMIT; anything else reads a range of an index.
        whole = _whole_reads(plan)
        assert whole in ([], ["Index Scan Backward using ix_items_sort_at_id on items"]), plan


def test_story_assignment_reads_through_indexes_on_postgresql(postgres_url: str) -> None:
    """The assigner's reads (items without a story, the window's assigned items at a
    warm start, its batches by id) read no table whole."""
    from aggregator.grouping import StoryAssigner
    from aggregator.process.stories import GroupingRules

    def assign(store: Store) -> None:
        assert StoryAssigner(store, GroupingRules()).assign_pending(LATER) == 24
        store.assigned_items_since(T0)

    plans = _postgres_plans(postgres_url, assign, NO_SEQSCAN)
    for plan in plans:
        assert _whole_reads(plan) == [], plan
    # A batch of items to place is read by id, not found among every unassigned item.
    batches = [plan for plan in plans if "id = ANY" in plan and "ix_items_sort_at_id" not in plan]
    assert batches, plans
    for plan in batches:
        assert "ix_items_story_id" not in plan, plan


GROWING_TABLES = frozenset({"items", "item_sources", "item_series", "stories"})


def _whole_reads(plan: str) -> list[str]:
    """The scans of an EXPLAIN that read one of the tables that grow with the items whole:
    sequential scans, and index scans with no Index Cond (a filter alone reads every
    entry). ``sources`` holds a row per configured feed and may be read whole."""
    nodes: list[list[str]] = []
    for line in plan.splitlines():
        text = line.strip().removeprefix("->").strip()
        if line.strip().startswith("->") or not nodes:
            nodes.append([text])
        else:
            nodes[-1].append(text)
    whole = []
    for node in nodes:
        head = node[0].split("  (cost=")[0]
        if " on " not in head or head.split(" on ")[1].split()[0] not in GROWING_TABLES:
            continue
        if head.startswith("Seq Scan") or (
            " Scan" in head
            and "using" in head
            and not head.startswith("Bitmap Heap")
            and not any(detail.startswith("Index Cond:") for detail in node[1:])
        ):
            whole.append(head)
    return whole


def test_sqlite_connections_log_ahead_and_checkpoint_every_64_mb(tmp_path) -> None:
    """WAL (readers never wait for the writer), foreign keys enforced, and a checkpoint
    per 64 MB of log rather than SQLite's 4 MB (a cold poll writes hundreds of MB)."""
    store = Store.open(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        with store.engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            pages = pragma("PRAGMA wal_autocheckpoint").scalar()
            page_size = pragma("PRAGMA page_size").scalar()
            assert pages * page_size == 64 * 1024 * 1024
            assert pragma("PRAGMA journal_size_limit").scalar() == 64 * 1024 * 1024
    finally:
        store.close()
