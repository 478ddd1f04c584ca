"""Retention on every backend: old items go in batches, what they leave is consistent,
and a feed that still lists a pruned item does not bring it back."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from aggregator.exceptions import ConfigError
from aggregator.process.retention import expired
from aggregator.settings import load_settings
from aggregator.store import Store
from aggregator.store.schema import item_series, item_sources, items, pruned_entries, stories
from aggregator.types import SourceDefinition, SourceNotModified, StoryAssignment
from tests.builders import T0, FixedClock, make_item, save_batch

DAY = timedelta(days=1)
KEEP = 90 * DAY


def _define(store: Store, *names: str) -> None:
    store.sync_sources(
        [SourceDefinition(name=n, title=n.upper(), url=f"https://{n}.example/f") for n in names],
        T0 - 200 * DAY,
    )


def _count(store: Store, table, *where) -> int:
    with store.engine.connect() as connection:
        query = select(func.count()).select_from(table)
        for condition in where:
            query = query.where(condition)
        return connection.execute(query).scalar_one()


def _old(key: str, days: int, **overrides):
    return make_item(key, published=T0 - days * DAY, **overrides)


def test_expired_needs_every_carrier_past_its_retention() -> None:
    cutoffs = {1: T0 - 30 * DAY, 2: T0 - 90 * DAY, 3: None}
    when = T0 - 60 * DAY
    assert expired(when, [1], cutoffs, None)
    assert not expired(when, [1, 2], cutoffs, None)  # the second outlet keeps it longer
    assert not expired(when, [1, 3], cutoffs, None)  # ... or forever
    assert expired(when, [9], cutoffs, T0 - 50 * DAY)  # unlisted source: the default
    assert not expired(when, [9], cutoffs, None)
    assert not expired(when, [], cutoffs, T0)  # no carrier: nothing to decide by


def test_items_past_retention_go_and_never_come_back(store: Store) -> None:
    _define(store, "bbc")
    feed = [_old("ancient", 120), _old("old", 91), _old("recent", 10)]
    save_batch(store, "bbc", feed, now=T0, series={"guid:ancient": ("war",)})
    report = store.prune({"bbc": KEEP}, None, T0, batch=1)  # a batch per item
    assert (report.items, dict(report.credits)) == (2, {"bbc": 2})
    assert _count(store, items) == 1
    assert _count(store, item_series) == 0
    assert _count(store, pruned_entries) == 2
    # The feed still lists them: nothing is stored again.
    assert save_batch(store, "bbc", feed, now=T0 + DAY) == 0
    assert _count(store, items) == 1
    assert store.prune({"bbc": KEEP}, None, T0 + DAY).items == 0


def test_an_item_stays_while_any_outlet_that_carried_it_keeps_it(store: Store) -> None:
    _define(store, "bbc", "npr")
    save_batch(store, "bbc", [_old("shared", 100)], now=T0)
    save_batch(store, "npr", [_old("shared", 100, entry_key="guid:npr-shared")], now=T0)
    assert store.prune({"bbc": 30 * DAY, "npr": None}, None, T0).items == 0
    assert store.prune({"bbc": 30 * DAY}, 120 * DAY, T0).items == 0  # npr: the default
    report = store.prune({"bbc": 30 * DAY, "npr": KEEP}, None, T0)
    assert (report.items, dict(report.credits)) == (1, {"bbc": 1, "npr": 1})
    assert _count(store, item_sources) == 0
    # Each outlet's entry is remembered: neither brings it back.
    assert save_batch(store, "npr", [_old("shared", 100, entry_key="guid:npr-shared")]) == 0
    assert save_batch(store, "bbc", [_old("shared", 100)]) == 0
    assert _count(store, items) == 0


def _story(store: Store, story: int, *item_ids: int, merged: tuple[int, ...] = ()) -> None:
    store.save_story_assignments(
        [
            StoryAssignment(
                item_id=item_id,
                story=story,
                created=n == 0 and not merged,
                merged=merged if n == 0 else (),
                when=T0,
                last_seen=T0,
            )
            for n, item_id in enumerate(item_ids)
        ]
    )


def _ids(store: Store) -> dict[str, int]:
    with store.engine.connect() as connection:
        return dict(connection.execute(select(items.c.guid, items.c.id)).all())


def test_stories_left_without_items_go_with_the_stories_merged_into_them(
    store: Store,
) -> None:
    _define(store, "bbc")
    batch = [_old("a1", 100), _old("a2", 100), _old("b1", 100), _old("b2", 5), _old("c1", 100)]
    save_batch(store, "bbc", batch, now=T0)
    ids = _ids(store)
    _story(store, 1, ids["a1"])
    _story(store, 2, ids["a2"])
    _story(store, 1, ids["a2"], merged=(2,))  # story 2 merged into 1: a pointer now
    _story(store, 3, ids["b1"], ids["b2"])  # one old report, one recent
    _story(store, 4, ids["c1"])
    dry = store.prune({"bbc": KEEP}, None, T0, dry_run=True)
    assert (dry.items, dry.stories) == (4, 3)
    assert _count(store, items) == 5  # a dry run changes nothing
    report = store.prune({"bbc": KEEP}, None, T0)
    assert (report.items, report.stories) == (4, 3)  # 1, its pointer 2, and 4
    with store.engine.connect() as connection:
        assert connection.execute(select(stories.c.id)).scalars().all() == [3]
    (entry,) = store.feed_entries(series_slugs=None, limit=10)
    assert entry.title == "Title b2"
    story = store.story(3)
    assert story is not None and [e.title for e in story.entries] == ["Title b2"]


def test_pruned_entries_are_forgotten_once_the_feed_stops_listing_them(store: Store) -> None:
    _define(store, "bbc", "npr")
    save_batch(store, "bbc", [_old("a", 100)], now=T0)
    save_batch(store, "npr", [_old("b", 100, link="https://npr.example/b")], now=T0)
    assert store.prune({"bbc": KEEP, "npr": KEEP}, None, T0).items == 2
    # bbc still lists its entry fifty days on; npr's feed no longer lists its own.
    save_batch(store, "bbc", [_old("a", 100)], now=T0 + 50 * DAY)
    save_batch(store, "npr", [_old("c", -10, link="https://npr.example/c")], now=T0 + 10 * DAY)
    later = T0 + 91 * DAY
    assert store.prune({"bbc": KEEP, "npr": KEEP}, None, later, dry_run=True).forgotten == 1
    assert store.prune({"bbc": KEEP, "npr": KEEP}, None, later).forgotten == 1
    with store.engine.connect() as connection:
        left = connection.execute(select(pruned_entries.c.entry_key)).scalars().all()
    assert left == ["guid:a"]


def test_retention_shorter_than_the_story_window_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "retention: 90d\n"
        "sources:\n"
        "  - {name: bbc, url: 'https://bbc.example/feed', retention: 5d}\n"
        "  - {name: npr, url: 'https://npr.example/feed', retention: forever}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert "sources[0].retention" in str(raised.value)
    assert "grouping.window" in str(raised.value)
    config.write_text(config.read_text().replace("retention: 5d", "retention: 30d"))
    settings = load_settings(config)
    bbc, npr = settings.sources
    assert (settings.retention_for(bbc), settings.retention_for(npr)) == (30 * DAY, None)


def test_prune_command_reports_a_dry_run_and_then_prunes(tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"database: sqlite:///{database}\nretention: 30d\n"
        "sources:\n  - {name: bbc, url: 'https://bbc.example/feed'}\n",
        encoding="utf-8",
    )
    store = Store.open(f"sqlite:///{database}")
    try:
        _define(store, "bbc")
        save_batch(store, "bbc", [_old("a", 400), _old("b", 400), make_item("c")], now=T0)
        # make_item("c") is dated T0, long before today: it goes too.
    finally:
        store.close()

    def prune(*extra: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "aggregator.cli", "--config", str(config), "prune", *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert prune("--dry-run").startswith("would remove 3 items past their retention")
    assert "bbc  3" in prune("--dry-run")
    assert prune().startswith("removed 3 items")
    assert prune().startswith("removed 0 items")


def test_the_daemon_prunes_in_one_of_the_processes_sharing_the_store(
    database_url: str,
) -> None:
    from aggregator.pipeline import Pipeline
    from aggregator.schedule import Poller
    from aggregator.settings import Settings

    settings = Settings.model_validate(
        {
            "database": database_url,
            "retention": "90d",
            "sources": [{"name": "bbc", "url": "https://bbc.example/f"}],
        }
    )
    pollers = []
    for _ in range(2):  # two processes' pipelines
        store = Store.open(database_url)
        pipeline = Pipeline(settings=settings, store=store, fetcher=None, clock=FixedClock(T0))
        pollers.append(Poller(pipeline, workers=1))
    first, second = pollers
    try:
        _define(first.pipeline.store, "bbc")
        save_batch(first.pipeline.store, "bbc", [_old("a", 100)], now=T0)
        first.prune()
        assert _count(first.pipeline.store, items) == 0
        save_batch(first.pipeline.store, "bbc", [_old("b", 100)], now=T0)
        second.prune()  # the first holds the role
        assert _count(first.pipeline.store, items) == 1
        first.stop(1)  # gives the role up
        second.prune()
        assert _count(first.pipeline.store, items) == 0
    finally:
        for poller in pollers:
            poller.stop(1)
            poller.pipeline.store.close()


def test_a_feed_answering_304_still_lists_what_was_pruned(store: Store) -> None:
    _define(store, "bbc")
    old = _old("a", 100)
    save_batch(store, "bbc", [old], now=T0)
    assert store.prune({"bbc": KEEP}, None, T0).items == 1
    for day in range(1, 100):  # the feed is unchanged for months: 304 every day
        store.save_not_modified(
            [
                SourceNotModified(
                    name="bbc",
                    etag=None,
                    last_modified=None,
                    polled_at=T0 + day * DAY,
                    next_poll_at=T0 + (day + 1) * DAY,
                )
            ]
        )
    assert store.prune({"bbc": KEEP}, None, T0 + 100 * DAY).forgotten == 0
    # Then it gains an entry, and still lists the old one: nothing comes back.
    assert save_batch(store, "bbc", [_old("b", 0), old], now=T0 + 100 * DAY) == 1
    assert _count(store, items) == 1


def test_a_dry_run_counts_the_stories_a_real_run_removes(store: Store) -> None:
    _define(store, "bbc")
    save_batch(store, "bbc", [_old("a", 100), _old("b", 99), _old("c", 98)], now=T0)
    ids = _ids(store)
    _story(store, 1, ids["a"], ids["b"])  # one story over two batches of one item
    _story(store, 2, ids["c"])
    _story(store, 1, ids["c"], merged=(2,))  # and a pointer to it
    dry = store.prune({"bbc": KEEP}, None, T0, dry_run=True, batch=1)
    real = store.prune({"bbc": KEEP}, None, T0, batch=1)
    assert (dry.items, dry.stories) == (real.items, real.stories) == (3, 2)


def test_items_an_outlet_keeps_are_not_read_again_by_every_prune(store: Store) -> None:
    from sqlalchemy import event

    _define(store, "bbc", "npr")
    save_batch(store, "bbc", [_old(f"k{n}", 100) for n in range(3000)], now=T0)
    statements: list[str] = []

    def count(*args) -> None:
        statements.append(args[2])

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        report = store.prune({"bbc": None, "npr": 30 * DAY}, None, T0, batch=1000)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert report.items == 0
    assert len(statements) < 10, statements  # one empty batch, not three full ones
