"""Series memberships decided again from the store when the rules change."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from aggregator.grouping import StoryAssigner
from aggregator.process.stories import GroupingRules
from aggregator.series import regroup, regroup_if_changed
from aggregator.settings import GroupingSettings, Settings
from aggregator.store import Store
from aggregator.types import Category, SourceDefinition
from tests.builders import make_item, save_batch

T0 = datetime(2026, 2, 18, 8, 0, tzinfo=UTC)
NYT_DES = "http://www.nytimes.com/namespaces/keywords/des"


def _settings(*series: dict[str, Any]) -> Settings:
    return Settings.model_validate(
        {
            "sources": [
                {"name": "nyt", "url": "https://nyt.example/f", "tags": ["us"]},
                {"name": "bbc", "url": "https://bbc.example/f", "tags": ["uk"]},
            ],
            "series": list(series),
        }
    )


UKRAINE = {"slug": "ukraine", "title": "Ukraine", "match": {"keywords": ["Ukraine"]}}


def _fill(store: Store) -> None:
    store.sync_sources(
        [SourceDefinition(name=n, title=n, url=f"https://{n}.example/f") for n in ("nyt", "bbc")],
        T0,
    )
    save_batch(
        store,
        "nyt",
        [
            make_item(
                "n1",
                title="Peace talks resume in Geneva",
                categories=(Category(term="Russian Invasion of Ukraine (2022)", domain=NYT_DES),),
            ),
            make_item("n2", title="Davos opens", categories=()),
        ],
    )
    save_batch(store, "bbc", [make_item("b1", title="Ukraine talks in Geneva", categories=())])


def _series_of(store: Store) -> dict[str, tuple[str, ...]]:
    entries = store.feed_entries(series_slugs=None, limit=50, merge="none")
    return {e.title: e.series for e in entries}


def test_regroup_decides_every_stored_item_again(store: Store) -> None:
    _fill(store)
    assert set(_series_of(store).values()) == {()}  # stored before any series existed
    report = regroup(store, _settings(UKRAINE))
    assert (report.items, report.memberships, report.series) == (3, 1, 1)
    assert _series_of(store)["Ukraine talks in Geneva"] == ("ukraine",)
    tagged = dict(
        UKRAINE, match={"categories": [{"term": "Russian Invasion of Ukraine", "domain": "*/des"}]}
    )
    regroup(store, _settings(tagged))
    assert _series_of(store) == {
        "Peace talks resume in Geneva": ("ukraine",),
        "Ukraine talks in Geneva": (),  # no longer: the rule changed
        "Davos opens": (),
    }


def test_rules_that_listen_to_some_sources_regroup_only_their_items(store: Store) -> None:
    _fill(store)
    only_uk = dict(UKRAINE, match={"keywords": ["Geneva"], "tags": ["uk"]})
    regroup(store, _settings(only_uk))
    assert _series_of(store)["Ukraine talks in Geneva"] == ("ukraine",)
    assert _series_of(store)["Peace talks resume in Geneva"] == ()


def test_regroup_runs_by_itself_only_when_the_rules_changed(store: Store) -> None:
    _fill(store)
    settings = _settings(UKRAINE)
    first = regroup_if_changed(store, settings)
    assert first is not None and first.memberships == 1
    assert regroup_if_changed(store, settings) is None
    renamed = _settings(dict(UKRAINE, match={"keywords": ["Davos"]}))
    again = regroup_if_changed(store, renamed)
    assert again is not None and _series_of(store)["Davos opens"] == ("ukraine",)


def test_a_story_lists_its_series_with_the_reason(store: Store, database_url: str) -> None:
    _fill(store)
    regroup(store, _settings(UKRAINE))
    StoryAssigner(store, GroupingRules()).assign_pending(T0)
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, title, story_id FROM items")).all()
    engine.dispose()
    ids = {row.title: (row.id, row.story_id) for row in rows}
    item_id, story_id = ids["Ukraine talks in Geneva"]
    view = store.story(story_id)
    assert view is not None
    assert [(s.slug, s.reason, s.item_id) for s in view.series] == [
        ("ukraine", "keyword 'Ukraine'", item_id)
    ]
    other = store.story(ids["Davos opens"][1])
    assert other is not None and other.series == ()


def test_regroup_command(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'a.db'}"
    store = Store.open(database)
    try:
        _fill(store)  # three items, stored before any series was declared
    finally:
        store.close()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {database}\n"
        "sources:\n  - name: nyt\n    url: https://nyt.example/f\n"
        "  - name: bbc\n    url: https://bbc.example/f\n"
        "series:\n  - slug: ukraine\n    title: Ukraine\n    match:\n      keywords: [Ukraine]\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "--config", str(config), "regroup"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "regrouped 3 items: 1 series memberships in 1 of 1 series" in result.stdout
    store = Store.open(database)
    try:
        assert _series_of(store)["Ukraine talks in Geneva"] == ("ukraine",)
    finally:
        store.close()


def test_the_story_json_shows_each_series_and_its_reason() -> None:
    import json

    from aggregator.publish.story_json import render_story_json
    from aggregator.types import StorySeries, StoryView

    view = StoryView(
        id=7,
        first_seen=T0,
        last_seen=T0,
        entries=(),
        series=(StorySeries(slug="ukraine", reason="keyword 'Ukraine'", item_id=3),),
    )
    document = json.loads(render_story_json(view, base_url="http://x"))
    assert document["series"] == [
        {
            "slug": "ukraine",
            "feed_url": "http://x/series/ukraine.json",
            "reason": "keyword 'Ukraine'",
            "item": 3,
        }
    ]


JACKSON = [
    "Jesse Jackson, civil rights leader, dies at 84",
    "Civil rights leader Jesse Jackson dies aged 84",
    "US civil rights leader Jesse Jackson dies at 84",
    "Jesse Jackson dies: civil rights leader was 84",
]


def _two_sources(store: Store) -> None:
    store.sync_sources(
        [SourceDefinition(name=n, title=n, url=f"https://{n}.example/f") for n in ("a", "b")], T0
    )


def _story_of_four(store: Store, *, tagged: bool = False) -> None:
    """Four reports of one story; only the first is in the series."""
    _two_sources(store)
    titles = JACKSON
    for n, title in enumerate(titles):
        item = make_item(f"j{n}", title=title)
        series = {f"guid:j{n}": ("rights",)} if n == 0 else None
        save_batch(store, "ab"[n % 2], [item], series=series, tagged=tagged)
    StoryAssigner(store, GroupingRules()).assign_pending(T0)


@pytest.mark.parametrize(("share", "shown"), [(0.2, 4), (0.3, 1)])
def test_a_story_is_in_a_series_when_enough_of_it_is(
    store: Store, share: float, shown: int
) -> None:
    from aggregator.publish.catalog import StoreCatalog

    _story_of_four(store)
    settings = _settings(
        {"slug": "rights", "title": "Civil rights", "match": {"keywords": ["rights"]}}
    ).model_copy(update={"grouping": GroupingSettings(series_story_share=share)})
    page = StoreCatalog(settings, store).feed_page("series", "rights")
    assert page is not None
    assert StoreCatalog(settings, store).listing(counts=False).series[0].counts is None
    assert sum(max(1, len(e.reports)) for e in page.entries) == shown
    copies = store.feed_entries(series_slugs=["rights"], limit=10, merge="none", story_share=share)
    assert len(copies) == shown


def test_a_report_an_outlet_tagged_takes_its_whole_story_into_the_series(store: Store) -> None:
    _story_of_four(store, tagged=True)
    copies = store.feed_entries(series_slugs=["rights"], limit=10, merge="none", story_share=0.9)
    assert len(copies) == 4
    assert all(entry.series == ("rights",) for entry in copies)


@pytest.mark.parametrize("tagged", [False, True])
@pytest.mark.parametrize("share", [0.2, 0.3])
def test_a_page_of_whole_stories_reads_their_series_by_item_as_by_story(
    store: Store, share: float, tagged: bool
) -> None:
    """An unfiltered ``merge: story`` page holds every item of its stories, and reads
    their memberships by item id and counts their sizes itself: the same series, with
    the same reasons, as read through the stories (what a filtered page does)."""
    from sqlalchemy import select

    from aggregator.store import entries
    from aggregator.store.schema import items

    _story_of_four(store, tagged=tagged)
    alone = make_item("alone", title="Lufthansa pilots strike on Thursday")
    save_batch(store, "a", [alone], series={"guid:alone": ("rights",)})
    with store.engine.connect() as connection:
        rows = connection.execute(select(items.c.id, items.c.story_id, items.c.sort_at)).all()
        by_item = entries._series(connection, rows, share, whole_stories=True)
        by_story = entries._series(connection, rows, share)
    assert by_item == by_story
    assert len(by_item) == (5 if share < 0.3 or tagged else 2)  # the story's four, or one


PERU = [
    "Peru's Congress removes interim President Jerí amid corruption probe",
    "Peru Congress votes to remove interim President Jerí over corruption",
    "Peru ousts interim President Jerí over corruption probe",
    "Interim President Jerí removed by Peru's Congress in corruption probe",
]


def test_a_series_page_of_stories_lists_every_report_of_each_story(store: Store) -> None:
    """Two stories in the series through one tagged report each: each entry of the
    ``merge: story`` page lists all four of its reports, not only the member (the
    reports of a page's stories are tested against the series for those stories)."""
    _two_sources(store)
    for prefix, titles in (("j", JACKSON), ("p", PERU)):
        for n, title in enumerate(titles):
            series = {f"guid:{prefix}{n}": ("rights",)} if n == 0 else None
            item = make_item(f"{prefix}{n}", title=title)
            save_batch(store, "ab"[n % 2], [item], series=series, tagged=True)
    StoryAssigner(store, GroupingRules()).assign_pending(T0)
    stories = store.feed_entries(series_slugs=["rights"], limit=10, merge="story", story_share=0.9)
    assert sorted(len(entry.reports) for entry in stories) == [4, 4]


def test_series_counts_are_what_the_series_feed_shows(store: Store) -> None:
    _story_of_four(store, tagged=True)
    save_batch(store, "a", [make_item("other", title="Lufthansa pilots strike on Thursday")])
    counts = store.series_counts("rights", story_share=0.9)
    copies = store.feed_entries(series_slugs=["rights"], limit=50, merge="none", story_share=0.9)
    stories = store.feed_entries(series_slugs=["rights"], limit=50, merge="story", story_share=0.9)
    assert counts.items == len({e.id for e in copies}) == 4
    assert counts.stories == len(stories) == 1
    per_outlet: dict[str, int] = {}
    for copy in copies:
        per_outlet[copy.outlet or ""] = per_outlet.get(copy.outlet or "", 0) + 1
    assert dict(counts.outlets) == per_outlet == {"a": 2, "b": 2}
    assert counts.first_seen == min(e.published for e in copies if e.published)
    assert counts.last_seen == max(e.published for e in copies if e.published)
    empty = store.series_counts("nothing")
    assert (empty.items, empty.stories, empty.outlets, empty.first_seen) == (0, 0, (), None)


def test_memberships_written_twice_keep_one_row_with_the_latest_reason(
    store: Store, database_url: str
) -> None:
    from aggregator.types import SeriesMembership

    _fill(store)
    regroup(store, _settings(UKRAINE))
    engine = create_engine(database_url)
    with engine.connect() as connection:
        (item_id,) = connection.execute(text("SELECT item_id FROM item_series")).scalars()
    before = SeriesMembership(slug="ukraine", reason="keyword 'Ukraine'")
    after = SeriesMembership(slug="ukraine", reason="category 'Ukraine'", tagged=True)
    # What a poll and a regroup (or two regroups) writing at once come to: no failure.
    store.replace_series_memberships([], [(item_id, before)])
    store.replace_series_memberships([], [(item_id, after)])
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT series_slug, reason, tagged FROM item_series"))
        assert [tuple(row) for row in rows] == [("ukraine", "category 'Ukraine'", True)]
    engine.dispose()


def test_each_series_needs_its_own_share_of_a_story(store: Store) -> None:
    _two_sources(store)
    titles = JACKSON
    tags = {0: ("rights",), 1: ("obituaries",)}
    for n, title in enumerate(titles):
        series = {f"guid:j{n}": tags[n]} if n in tags else None
        save_batch(store, "ab"[n % 2], [make_item(f"j{n}", title=title)], series=series)
    StoryAssigner(store, GroupingRules()).assign_pending(T0)
    both = store.feed_entries(
        series_slugs=["rights", "obituaries"], limit=10, merge="none", story_share=0.3
    )
    # One report in four for each: not the story's subject, though two in four match one.
    assert sorted(e.title for e in both) == sorted(titles[:2])
    assert {e.title: e.series for e in both} == {titles[0]: ("rights",), titles[1]: ("obituaries",)}


def test_with_no_series_left_a_regroup_drops_every_membership(store: Store) -> None:
    _fill(store)
    regroup(store, _settings(UKRAINE))
    assert _series_of(store)["Ukraine talks in Geneva"] == ("ukraine",)
    report = regroup(store, _settings())
    assert (report.items, report.memberships) == (0, 0)  # nothing read
    assert set(_series_of(store).values()) == {()}
