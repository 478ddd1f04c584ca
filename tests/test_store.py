"""Store contract tests: the same assertions on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from aggregator.exceptions import SchemaOutdated
from aggregator.store import SourceDefinition, Store, create_store_engine, ensure_schema
from aggregator.store.schema import item_series, item_sources, items
from tests.builders import T0, make_item

LATER = T0 + timedelta(minutes=15)


def _define(store: Store, *names: str) -> None:
    store.sync_sources(
        [SourceDefinition(name=n, title=n.title(), url=f"https://{n}.example/feed") for n in names],
        T0,
    )


def _save(store: Store, name: str, batch, *, series=None, now=T0) -> int:
    return store.save_poll(
        name,
        batch=batch,
        series=series or {},
        http_status=200,
        etag='"v1"',
        last_modified=None,
        now=now,
        next_poll_at=now + timedelta(minutes=15),
    )


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
    (entry,) = store.feed_entries(source_names=None, series_slugs=None, limit=10)
    assert [c.source for c in entry.credits] == ["bbc", "npr"]
    assert [c.guid for c in entry.credits] == ["a", "npr-1"]
    assert entry.title == "Title a"  # the first outlet's text is kept
    assert entry.updated == LATER  # a new outlet joining changes the entry


def test_changed_content_from_origin_updates_the_item(store: Store) -> None:
    _define(store, "bbc")
    _save(store, "bbc", [make_item("a")])
    _save(store, "bbc", [make_item("a", title="Corrected title")], now=LATER)
    (entry,) = store.feed_entries(source_names=None, series_slugs=None, limit=10)
    assert entry.title == "Corrected title"
    assert entry.updated == LATER
    assert _count(store, items) == 1


def test_entries_newest_first_and_filtered(store: Store) -> None:
    _define(store, "bbc", "npr")
    _save(store, "bbc", [make_item("old", published=T0 - timedelta(hours=2))])
    _save(store, "npr", [make_item("new", published=T0 - timedelta(hours=1))])
    everything = store.feed_entries(source_names=None, series_slugs=None, limit=10)
    assert [e.title for e in everything] == ["Title new", "Title old"]
    only_bbc = store.feed_entries(source_names=["bbc"], series_slugs=None, limit=10)
    assert [e.title for e in only_bbc] == ["Title old"]
    assert store.feed_entries(source_names=[], series_slugs=None, limit=10) == ()
    assert len(store.feed_entries(source_names=None, series_slugs=None, limit=1)) == 1


def test_future_dates_sort_no_later_than_first_seen(store: Store) -> None:
    _define(store, "bbc")
    _save(store, "bbc", [make_item("future", published=T0 + timedelta(days=300))])
    _save(store, "bbc", [make_item("now", published=T0 + timedelta(minutes=5))], now=LATER)
    entries = store.feed_entries(source_names=None, series_slugs=None, limit=10)
    assert [e.title for e in entries] == ["Title now", "Title future"]
    assert entries[1].published == T0


def test_series_membership_is_stored_and_filters(store: Store) -> None:
    _define(store, "bbc")
    _save(store, "bbc", [make_item("isis"), make_item("other")], series={"guid:isis": ("is",)})
    _save(store, "bbc", [make_item("isis")], series={"guid:isis": ("is",)}, now=LATER)
    assert _count(store, item_series) == 1
    entries = store.feed_entries(source_names=None, series_slugs=["is"], limit=10)
    assert [(e.title, e.series) for e in entries] == [("Title isis", ("is",))]


def test_items_without_link_are_scoped_to_their_source(store: Store) -> None:
    _define(store, "bbc", "npr")
    _save(store, "bbc", [make_item("x", link=None, identity="src:bbc:guid:x")])
    _save(store, "npr", [make_item("x", link=None, identity="src:npr:guid:x")])
    assert _count(store, items) == 2


def test_failure_keeps_validators_and_counts_errors(store: Store) -> None:
    _define(store, "bbc")
    _save(store, "bbc", [make_item("a")])
    store.save_failure("bbc", error="HTTP 503", http_status=503, now=LATER, next_poll_at=LATER)
    store.save_failure("bbc", error="HTTP 503", http_status=503, now=LATER, next_poll_at=LATER)
    (state,) = store.source_states()
    assert (state.etag, state.last_status, state.consecutive_errors) == ('"v1"', "error", 2)
    assert state.last_error == "HTTP 503"
    assert state.item_count == 1
    store.save_not_modified("bbc", etag='"v1"', last_modified=None, now=LATER, next_poll_at=LATER)
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
