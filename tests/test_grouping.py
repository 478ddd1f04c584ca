"""Stories in the store: assignment, restart, merges and recovery, on every backend."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, text
from starlette.exceptions import StarletteDeprecationWarning

from aggregator.grouping import StoryAssigner
from aggregator.process.duplicates import fingerprint
from aggregator.process.stories import GroupingRules
from aggregator.publish.app import create_app
from aggregator.publish.catalog import StoreCatalog
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.store.roles import Role, Tenure
from aggregator.types import StorySeries
from tests.builders import (
    JACKSON,
    define_outlets,
    make_item,
    save_batch,
    save_titled,
    story_ids_by_title,
)
from tests.conftest import _fresh_postgres_schema

# Starlette >= 1.x warns about httpx on import of its TestClient (see test_publish_app).
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

T0 = datetime(2026, 2, 18, 8, 0, tzinfo=UTC)
RULES = GroupingRules()
OTHERS = [
    ("bbc", "Peru's Congress removes interim President Jeri over corruption probe"),
    ("npr", "Lufthansa pilots and cabin crew to strike on Thursday"),
]


def test_reports_of_one_event_share_a_story_and_others_do_not(
    store: Store, database_url: str
) -> None:
    define_outlets(store, "bbc", "npr", "abc")
    for n, (source, title) in enumerate(JACKSON + OTHERS):
        save_titled(store, source, f"i{n}", title, T0 + timedelta(minutes=n))
    assert StoryAssigner(store, RULES).assign_pending(T0 + timedelta(hours=1)) == 5
    ids = story_ids_by_title(database_url)
    jackson = {ids[title] for _, title in JACKSON}
    assert len(jackson) == 1 and None not in jackson
    assert len({ids[title] for _, title in OTHERS} | jackson) == 3
    story = store.story(jackson.pop())
    assert story is not None
    assert {c.source for e in story.entries for c in e.credits} == {"bbc", "npr", "abc"}
    assert [e.title for e in story.entries][-1] == JACKSON[0][1]  # newest first


def test_a_restarted_process_puts_new_reports_in_the_existing_story(
    store: Store, database_url: str
) -> None:
    define_outlets(store, "bbc", "npr", "abc")
    for n, (source, title) in enumerate(JACKSON[:2]):
        save_titled(store, source, f"i{n}", title, T0 + timedelta(minutes=n))
    StoryAssigner(store, RULES).assign_pending(T0)
    first = story_ids_by_title(database_url)[JACKSON[0][1]]
    source, title = JACKSON[2]
    save_titled(store, source, "late", title, T0 + timedelta(hours=2))
    assert StoryAssigner(store, RULES).assign_pending(T0 + timedelta(hours=2)) == 1
    assert story_ids_by_title(database_url)[title] == first


def test_items_a_killed_run_left_unassigned_are_assigned_by_the_next(
    store: Store, database_url: str
) -> None:
    define_outlets(store, "bbc", "npr", "abc")
    for n, (source, title) in enumerate(JACKSON):
        save_titled(store, source, f"i{n}", title, T0 + timedelta(minutes=n))
    assert set(story_ids_by_title(database_url).values()) == {None}  # stored, never assigned
    StoryAssigner(store, RULES).assign_pending(T0)
    assert None not in set(story_ids_by_title(database_url).values())


def test_a_merged_story_leads_to_the_story_it_joined(store: Store, database_url: str) -> None:
    define_outlets(store, "bbc", "npr", "abc")
    rules = GroupingRules(threshold=0.3, merge_threshold=0.2)
    save_titled(store, "bbc", "a", "Talks on the Iran nuclear deal resume in Geneva", T0)
    save_titled(
        store, "npr", "b", "Envoys meet in Geneva over Iran nuclear deal", T0 + timedelta(minutes=1)
    )
    assigner = StoryAssigner(store, GroupingRules(threshold=0.99))  # keep them apart first
    assigner.assign_pending(T0)
    before = story_ids_by_title(database_url)
    assert len(set(before.values())) == 2
    save_titled(
        store,
        "abc",
        "c",
        "Geneva talks on Iran nuclear deal: envoys meet",
        T0 + timedelta(minutes=2),
    )
    StoryAssigner(store, rules).assign_pending(T0 + timedelta(minutes=3))
    after = story_ids_by_title(database_url)
    assert len(set(after.values())) == 1
    survivor = next(iter(set(after.values())))
    for old in set(before.values()):
        story = store.story(old)
        assert story is not None and story.id == survivor
        assert len(story.entries) == 3
    (merged,) = set(before.values()) - {survivor}
    moved = _client(store).get(f"/stories/{merged}.json", follow_redirects=False)
    assert moved.status_code == 301
    assert moved.headers["location"] == f"http://test/stories/{survivor}.json"
    page = _client(store).get(f"/stories/{merged}", follow_redirects=False)
    assert page.headers["location"] == f"http://test/stories/{survivor}"


def _client(store: Store) -> TestClient:
    return TestClient(create_app(StoreCatalog(Settings(), store), base_url="http://test"))


def test_stories_are_served_as_json(store: Store) -> None:
    define_outlets(store, "bbc", "npr", "abc")
    for n, (source, title) in enumerate(JACKSON):
        save_titled(store, source, f"i{n}", title, T0 + timedelta(minutes=n))
    StoryAssigner(store, RULES).assign_pending(T0)
    (story_id,) = {e.id for e in [store.story(1)] if e is not None}
    client = _client(store)
    response = client.get(f"/stories/{story_id}.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["url"] == f"http://test/stories/{story_id}.json"
    assert {o["source"] for o in body["outlets"]} == {"bbc", "npr", "abc"}
    assert [i["title"] for i in body["items"]] == [title for _, title in reversed(JACKSON)]
    missing = client.get("/stories/999.json")
    assert missing.status_code == 404 and missing.json() == {"error": "no story 999"}
    page = client.get(f"/stories/{story_id}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f"<h1>{JACKSON[0][1]}</h1>" in page.text
    assert "3 reports from 3 outlets." in page.text
    assert client.get("/stories/999").status_code == 404


def test_items_dated_in_year_one_are_assigned(store: Store, database_url: str) -> None:
    define_outlets(store, "bbc", "npr", "abc")
    ancient = datetime(1, 1, 1, tzinfo=UTC)
    save_titled(store, "bbc", "old", "A feed that dates its items in year one", ancient)
    save_titled(store, "npr", "new", JACKSON[1][1], T0)
    assigner = StoryAssigner(store, RULES)
    assert assigner.assign_pending(T0) == 2
    assigner.forget()
    assert StoryAssigner(store, RULES).assign_pending(ancient) == 0  # the warm start too
    assert None not in set(story_ids_by_title(database_url).values())


def test_an_item_that_cannot_be_placed_stands_alone_and_holds_up_nothing(
    store: Store, database_url: str, monkeypatch
) -> None:
    from aggregator.process.stories import StoryIndex

    define_outlets(store, "bbc", "npr", "abc")
    for n, (source, title) in enumerate([("bbc", "Poison pill headline"), *JACKSON]):
        save_titled(store, source, f"i{n}", title, T0 + timedelta(minutes=n))
    place = StoryIndex.place

    def failing(self, counts, when):  # type: ignore[no-untyped-def]
        if "poison" in counts:
            raise RuntimeError("a bug")
        return place(self, counts, when)

    monkeypatch.setattr(StoryIndex, "place", failing)
    assert StoryAssigner(store, RULES).assign_pending(T0) == 4
    ids = story_ids_by_title(database_url)
    assert ids["Poison pill headline"] is not None
    assert len({ids[title] for _, title in JACKSON}) == 1
    assert ids["Poison pill headline"] not in {ids[title] for _, title in JACKSON}


def test_a_feed_by_story_has_one_entry_per_story_listing_every_report(store: Store) -> None:
    define_outlets(store, "bbc", "npr", "abc")
    dated = [*JACKSON[:2], OTHERS[0], JACKSON[2], OTHERS[1]]
    for n, (source, title) in enumerate(dated):
        save_titled(store, source, f"i{n}", title, T0 + timedelta(minutes=n))
    StoryAssigner(store, RULES).assign_pending(T0)
    entries = store.feed_entries(series_slugs=None, limit=10, merge="story")
    # Newest story first, by its latest report: Lufthansa (4), Jackson (3), Peru (2).
    assert [e.title for e in entries] == [OTHERS[1][1], JACKSON[0][1], OTHERS[0][1]]
    jackson = entries[1]
    assert [c.source for c in jackson.credits] == ["bbc", "npr", "abc"]
    assert [r.title for r in jackson.reports] == [title for _, title in JACKSON]
    assert jackson.updated >= T0 + timedelta(minutes=3)
    assert entries[0].reports == ()  # a story of one report is a plain entry
    only_npr = store.feed_entries(
        source_filters=[["npr"]], series_slugs=None, limit=10, merge="story"
    )
    assert [e.title for e in only_npr] == [OTHERS[1][1], JACKSON[1][1]]
    assert len(store.feed_entries(series_slugs=None, limit=10)) == 5  # by item


def test_an_outlet_that_opted_out_keeps_its_reports_standalone(
    store: Store, database_url: str
) -> None:
    define_outlets(store, "bbc", "npr", "abc")
    for n, (source, title) in enumerate(JACKSON):
        save_titled(store, source, f"i{n}", title, T0 + timedelta(minutes=n))
    StoryAssigner(store, RULES, standalone=frozenset({"npr"})).assign_pending(T0)
    ids = story_ids_by_title(database_url)
    npr_title = JACKSON[1][1]
    others = {ids[title] for source, title in JACKSON if source != "npr"}
    assert len(others) == 1
    assert ids[npr_title] is not None and ids[npr_title] not in others


def test_the_home_page_lists_recent_stories_of_several_outlets(store: Store) -> None:
    define_outlets(store, "bbc", "npr", "abc")
    for n, (source, title) in enumerate(JACKSON + OTHERS):
        save_titled(store, source, f"i{n}", title, T0 + timedelta(minutes=n))
    StoryAssigner(store, RULES).assign_pending(T0)
    (summary,) = store.recent_stories()  # the single-outlet stories are left out
    assert (summary.title, summary.outlets, summary.reports) == (JACKSON[0][1], 3, 3)
    page = _client(store).get("/")
    assert page.status_code == 200
    assert f'<a href="http://test/stories/{summary.id}">{JACKSON[0][1]}</a>' in page.text
    assert "3 outlets, 3 reports" in page.text
    # ... naming them, the first to report first
    assert summary.outlet_titles == tuple(source.upper() for source, _ in JACKSON)
    assert ", ".join(summary.outlet_titles) in page.text


def test_a_feed_without_merging_has_one_entry_per_outlets_copy(store: Store) -> None:
    define_outlets(store, "bbc", "npr", "abc")
    save_titled(store, "bbc", "a", JACKSON[0][1], T0)
    # npr carries the same article (same link): one item, two credits.
    save_titled(store, "npr", "b", JACKSON[0][1], T0, link="https://bbc.example/a")
    assert len(store.feed_entries(series_slugs=None, limit=10)) == 1
    copies = store.feed_entries(series_slugs=None, limit=10, merge="none")
    assert sorted(e.outlet or "" for e in copies) == ["bbc", "npr"]
    assert all([c.source for c in e.credits] == [e.outlet] for e in copies)
    assert len({e.id for e in copies}) == 1  # the same article, told apart by outlet
    only_npr = store.feed_entries(
        source_filters=[["npr"]], series_slugs=None, limit=10, merge="none"
    )
    assert [e.outlet for e in only_npr] == ["npr"]


WIRE = (
    "Australia will not repatriate 34 women and children linked to Islamic State fighters "
    "from a camp in northeast Syria, the prime minister said on Wednesday, after the "
    "group was turned back at the border with Iraq"
)


def test_wire_copy_under_two_links_is_one_article_crediting_both_outlets(
    store: Store, database_url: str
) -> None:
    """Two outlets carry one agency's text under their own links: two items, the later a
    duplicate of the earlier; a feed merged by duplicates shows one entry with both."""
    define_outlets(store, "japantoday", "npr", "abc")
    body = f"<p>{WIRE}</p>"
    copies = [
        ("japantoday", "Australia won't repatriate 34 women and children from Syria", body),
        ("npr", "Australia won't repatriate 34 women and children from Syria camp", body),
        ("abc", "Australia refuses to bring home IS families", "<p>Other words entirely.</p>"),
    ]
    for n, (source, title, content) in enumerate(copies):
        item = make_item(
            f"w{n}",
            title=title,
            link=f"https://{source}.example/w{n}",
            content_html=content,
            fingerprint=fingerprint(title, WIRE if content == body else "Other words"),
        )
        save_batch(store, source, [item], now=T0 + timedelta(minutes=n))
    StoryAssigner(store, RULES).assign_pending(T0 + timedelta(hours=1))
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, title, duplicate_of FROM items"))
            duplicate_of = {row.title: (row.id, row.duplicate_of) for row in rows}
    finally:
        engine.dispose()
    japan_id, japan_original = duplicate_of[copies[0][1]]
    assert japan_original is None
    assert duplicate_of[copies[1][1]][1] == japan_id
    assert duplicate_of[copies[2][1]][1] is None
    by_article = store.feed_entries(series_slugs=None, limit=10, merge="duplicates")
    assert [e.title for e in by_article] == [copies[2][1], copies[0][1]]
    wire = by_article[1]
    assert [c.source for c in wire.credits] == ["japantoday", "npr"]
    assert [r.link for r in wire.reports] == [
        "https://japantoday.example/w0",
        "https://npr.example/w1",
    ]
    assert len(store.feed_entries(series_slugs=None, limit=10, merge="none")) == 3
    # Restarted, the index knows the original again: a third copy joins it.
    assigner = StoryAssigner(store, RULES)
    later = make_item(
        "w9", title=copies[0][1], link="https://abc.example/w9", fingerprint=fingerprint("x", WIRE)
    )
    save_batch(store, "abc", [later], now=T0 + timedelta(minutes=30))
    assigner.assign_pending(T0 + timedelta(hours=1))
    (wire_again,) = [
        e for e in store.feed_entries(series_slugs=None, limit=10) if e.title == copies[0][1]
    ]
    assert [c.source for c in wire_again.credits] == ["japantoday", "npr", "abc"]


def _bangladesh(
    store: Store, url: str, rules: GroupingRules, **summary: str
) -> tuple[int | None, ...]:
    """Story ids of the two sworn-in reports and of Foreign Policy's headline that names
    only Bangladesh, whose summary says what the event was."""
    define_outlets(store, "wire", "dawn", "abc", "fp")
    background = [
        make_item(f"b{n}", title=f"Unrelated report {n} on markets{n} and weather{n}")
        for n in range(30)
    ]
    save_batch(store, "wire", background, now=T0)
    sworn = "Tarique Rahman sworn in as Bangladesh's PM after election victory"
    save_titled(store, "dawn", "d1", sworn, T0 + timedelta(minutes=1))
    new_pm = "Bangladesh's new prime minister sworn in after election win"
    save_titled(store, "abc", "a1", new_pm, T0 + timedelta(minutes=2))
    later = T0 + timedelta(minutes=3)
    chapter = make_item("f1", title="A New Chapter for Bangladesh", published=later, **summary)
    save_batch(store, "fp", [chapter], now=later)
    StoryAssigner(store, rules).assign_pending(T0 + timedelta(hours=1))
    ids = story_ids_by_title(url)
    return ids[sworn], ids[new_pm], ids["A New Chapter for Bangladesh"]


LEAD = "The Bangladesh Nationalist Party claims victory in the country's first elections."


def test_a_stored_lead_brings_its_item_to_the_story_it_describes(
    store: Store, database_url: str
) -> None:
    sworn, new_pm, chapter = _bangladesh(store, database_url, RULES, lead=LEAD)
    assert sworn == new_pm == chapter


def test_leads_are_off_at_weight_zero(store: Store, database_url: str) -> None:
    rules = GroupingRules(summary_weight=0)
    sworn, new_pm, chapter = _bangladesh(store, database_url, rules, lead=LEAD)
    assert sworn == new_pm != chapter


def test_a_story_one_outlet_tagged_brings_every_report_into_the_series(store: Store) -> None:
    define_outlets(store, "bbc", "npr", "abc")
    for n, (source, title) in enumerate(JACKSON + OTHERS):
        when = T0 + timedelta(minutes=n)
        item = make_item(
            f"i{n}", title=title, link=f"https://{source}.example/i{n}", published=when
        )
        tagged = {"guid:i0": ("civil-rights",)} if n == 0 else None  # BBC's report only
        save_batch(store, source, [item], now=when, series=tagged)
    before = store.feed_entries(series_slugs=["civil-rights"], limit=10, merge="none")
    assert [e.title for e in before] == [JACKSON[0][1]]  # no stories yet: the tagged one
    StoryAssigner(store, RULES).assign_pending(T0 + timedelta(hours=1))
    copies = store.feed_entries(series_slugs=["civil-rights"], limit=10, merge="none")
    assert sorted(e.title for e in copies) == sorted(title for _, title in JACKSON)
    assert all(e.series == ("civil-rights",) for e in copies)
    # ... each saying why: the BBC report's membership brought the story in
    bbc_report = next(e for e in copies if e.title == JACKSON[0][1])
    assert {e.why for e in copies} == {
        (StorySeries(slug="civil-rights", reason="test civil-rights", item_id=bbc_report.id),)
    }
    assert len({e.story for e in copies}) == 1 and None not in {e.story for e in copies}
    (story,) = store.feed_entries(series_slugs=["civil-rights"], limit=10, merge="story")
    assert {c.source for c in story.credits} == {"bbc", "npr", "abc"}
    assert story.why == bbc_report.why
    everything = store.feed_entries(series_slugs=None, limit=10, merge="none")
    assert {e.title: e.series for e in everything}[OTHERS[0][1]] == ()


def test_a_feed_may_be_kept_as_long_as_its_fastest_source_is_not_polled(store: Store) -> None:
    settings = Settings.model_validate(
        {
            "polling": {"interval": "1h", "min_interval": "2m"},
            "sources": [
                {"name": "bbc", "url": "https://bbc.example/f", "interval": "5m"},
                {"name": "npr", "url": "https://npr.example/f", "tags": ["slow"]},
                {"name": "abc", "url": "https://abc.example/f", "interval": "auto"},
            ],
            "feeds": [
                {"slug": "all", "title": "All"},
                {"slug": "slow", "title": "Slow", "tags": ["slow"]},
                {"slug": "npr", "title": "NPR", "sources": ["npr"]},
            ],
            "series": [{"slug": "s", "title": "S", "match": {"keywords": ["x"]}}],
        }
    )
    client = TestClient(create_app(StoreCatalog(settings, store), base_url="http://test"))
    ages = {
        path: client.get(path).headers["cache-control"]
        for path in ("/feeds/all.rss", "/feeds/slow.rss", "/feeds/npr.json", "/series/s.atom")
    }
    assert ages == {
        "/feeds/all.rss": "public, max-age=120",  # abc's automatic interval, at its floor
        "/feeds/slow.rss": "public, max-age=3600",
        "/feeds/npr.json": "public, max-age=3600",
        "/series/s.atom": "public, max-age=120",
    }


def test_a_reader_walks_every_page_of_a_feed_by_its_next_links(store: Store) -> None:
    import feedparser

    define_outlets(store, "bbc", "npr", "abc")
    titles = [f"Unrelated event number {n} in town {n}" for n in range(5)]
    for n, title in enumerate(titles):
        save_titled(store, "bbc", f"p{n}", title, T0 + timedelta(minutes=n))
    settings = Settings.model_validate(
        {"feeds": [{"slug": "all", "title": "All", "limit": 2, "merge": "none"}]}
    )
    client = TestClient(create_app(StoreCatalog(settings, store), base_url="http://test"))
    seen: list[str] = []
    url: str | None = "http://test/feeds/all.atom"
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200
        parsed = feedparser.parse(response.content)
        seen += [entry.title for entry in parsed.entries]
        url = next((link.href for link in parsed.feed.links if link.rel == "next"), None)
    assert seen == titles[::-1]  # newest first, each once
    assert client.get("/feeds/all.atom?page=3").status_code == 200
    beyond = client.get("/feeds/all.atom?page=4")
    assert beyond.status_code == 404 and "no page 4" in beyond.text
    for bad in ("0", "x", "-1", "99999"):
        assert client.get(f"/feeds/all.json?page={bad}").status_code == 400
    json_first = client.get("/feeds/all.json").json()
    assert json_first["next_url"].endswith("/feeds/all.json?page=2")


def test_one_process_at_a_time_holds_the_stories_role(database_url: str) -> None:
    first, second = Store.open(database_url), Store.open(database_url)  # two processes' engines
    one, other = Role(first.engine, "stories"), Role(second.engine, "stories")
    try:
        assert one.claim() is Tenure.TAKEN
        assert other.claim() is Tenure.ELSEWHERE
        assert one.claim() is Tenure.KEPT
        assert other.claim() is Tenure.ELSEWHERE
        one.release()  # it stopped
        assert other.claim() is Tenure.TAKEN
        assert one.claim() is Tenure.ELSEWHERE
    finally:
        one.release()
        other.release()
        first.close()
        second.close()


def test_processes_sharing_a_store_assign_every_item_once_whoever_stored_it(
    database_url: str,
) -> None:
    """Two pollers: the one that holds the role assigns the other's items too; when it
    stops, the other takes over from the store, and its stories continue the first's."""
    first, second = Store.open(database_url), Store.open(database_url)
    one = StoryAssigner(first, RULES, role=Role(first.engine, "stories"))
    other = StoryAssigner(second, RULES, role=Role(second.engine, "stories"))
    try:
        define_outlets(first, "bbc", "npr", "abc")
        save_titled(first, "bbc", "i0", JACKSON[0][1], T0)
        assert one.assign_pending(T0) == 1
        save_titled(
            second, "npr", "i1", JACKSON[1][1], T0 + timedelta(minutes=1)
        )  # stored by other
        assert other.assign_pending(T0 + timedelta(minutes=1)) == 0  # left to the holder
        assert story_ids_by_title(database_url)[JACKSON[1][1]] is None
        assert one.assign_pending(T0 + timedelta(minutes=1)) == 1
        one.close()
        save_titled(second, "abc", "i2", JACKSON[2][1], T0 + timedelta(minutes=2))
        assert other.assign_pending(T0 + timedelta(minutes=2)) == 1
        save_titled(first, "bbc", "i3", OTHERS[0][1], T0 + timedelta(minutes=3))
        assert one.assign_pending(T0 + timedelta(minutes=3)) == 0  # the role moved on
        assert other.assign_pending(T0 + timedelta(minutes=3)) == 1
    finally:
        one.close()
        other.close()
        first.close()
        second.close()
    ids = story_ids_by_title(database_url)
    assert len({ids[title] for _, title in JACKSON}) == 1
    assert ids[OTHERS[0][1]] not in {ids[title] for _, title in JACKSON}
    assert None not in ids.values()


def test_deployments_in_separate_schemas_of_one_database_each_hold_their_role(
    postgres_url: str,
) -> None:
    other_schema = _fresh_postgres_schema()
    other_url = next(other_schema)
    stores = [Store.open(postgres_url), Store.open(other_url)]
    roles = [Role(store.engine, "stories") for store in stores]
    try:
        assert [role.claim() for role in roles] == [Tenure.TAKEN, Tenure.TAKEN]
    finally:
        for role, store in zip(roles, stores, strict=True):
            role.release()
            store.close()
        other_schema.close()  # drops the schema


def test_a_page_of_stories_reads_on_past_one_story_with_many_newer_reports(
    store: Store,
) -> None:
    """The page walks the items newest first a batch at a time (twice the page, at
    least 100 items): one story with more new reports than a batch holds must not end
    the walk before the page is full. Its reports come first, then two older items."""
    define_outlets(store, "bbc", "npr", "abc")
    save_titled(store, "npr", "peru", OTHERS[0][1], T0 - timedelta(hours=2))
    save_titled(store, "abc", "strike", OTHERS[1][1], T0 - timedelta(hours=1))
    for n in range(120):
        source, title = JACKSON[n % 3]
        save_titled(store, source, f"j{n}", title, T0 + timedelta(minutes=n))
    StoryAssigner(store, RULES).assign_pending(T0 + timedelta(hours=3))
    entries = store.feed_entries(series_slugs=None, limit=3, merge="story")
    assert len(entries) == 3 and len(entries[0].reports) == 120
    assert [e.title for e in entries[1:]] == [OTHERS[1][1], OTHERS[0][1]]


def _assigned_rows(url: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Items' stories and the stories' rows, as stored (dates as the column holds them)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            placed = connection.execute(
                text("SELECT id, story_id, duplicate_of FROM items ORDER BY id")
            )
            made = connection.execute(
                text(
                    "SELECT id, CAST(first_seen AS TEXT), CAST(last_seen AS TEXT), merged_into"
                    " FROM stories ORDER BY id"
                )
            )
            return [tuple(r) for r in placed], [tuple(r) for r in made]
    finally:
        engine.dispose()


def _store_merges_and_copies(store: Store) -> None:
    """Reports of one event, two stories a later report merges, and a wire copy."""
    define_outlets(store, "bbc", "npr", "abc")
    save_titled(store, "bbc", "g1", "Talks on the Iran nuclear deal resume in Geneva", T0)
    save_titled(store, "npr", "g2", "Envoys meet in Geneva over Iran nuclear deal", T0)
    StoryAssigner(store, GroupingRules(threshold=0.99)).assign_pending(T0)  # two stories
    for n, (source, title) in enumerate(JACKSON + OTHERS):
        save_titled(store, source, f"i{n}", title, T0 + timedelta(minutes=n))
    save_titled(
        store, "abc", "g3", "Geneva talks on Iran nuclear deal: envoys meet", T0 + timedelta(1)
    )
    for n, source in enumerate(("npr", "abc")):
        title = "Australia won't repatriate 34 women and children from Syria"
        copy = make_item(
            f"w{n}",
            title=title,
            link=f"https://{source}.example/w{n}",
            fingerprint=fingerprint(title, WIRE),
        )
        save_batch(store, source, [copy], now=T0 + timedelta(hours=2, minutes=n))


def test_batches_written_in_one_statement_each_store_what_row_by_row_writes_store(
    tmp_path, monkeypatch
) -> None:
    """SQLite 3.38 and later get each batch's rows as one JSON parameter per statement
    (written while the next batch is decided); older SQLite and PostgreSQL row by row.
    Both store the same rows, dates in the same form, over several batches."""
    from aggregator import grouping
    from aggregator.store import stories as store_stories

    monkeypatch.setattr(grouping, "BATCH", 2)
    rules = GroupingRules(threshold=0.3, merge_threshold=0.2)
    found = {}
    for one_statement in (True, False):
        monkeypatch.setattr(store_stories, "has_json_rows", lambda _c, on=one_statement: on)
        url = f"sqlite:///{tmp_path / f'{one_statement}.db'}"
        with Store.open(url) as store:
            _store_merges_and_copies(store)
            assert StoryAssigner(store, rules).assign_pending(T0 + timedelta(hours=3)) == 8
        found[one_statement] = _assigned_rows(url)
    placed, made = found[True]
    assert found[True] == found[False]
    assert all(story is not None for _, story, _ in placed)
    assert any(original is not None for _, _, original in placed)  # the wire copy
    assert any(merged is not None for *_, merged in made)  # the Geneva stories


def test_a_failed_write_leaves_its_items_to_the_next_assignment(
    store: Store, database_url: str, monkeypatch
) -> None:
    """Batches are written while the next is decided: a write that fails stops the
    assignment with its error, its items and the later ones stay unassigned, and the
    next assignment (the index forgotten, as the pipeline does) places them all."""
    from aggregator import grouping
    from aggregator.exceptions import StoreError

    monkeypatch.setattr(grouping, "BATCH", 2)
    define_outlets(store, "bbc", "npr", "abc")
    for n, (source, title) in enumerate(JACKSON + OTHERS):
        save_titled(store, source, f"i{n}", title, T0 + timedelta(minutes=n))
    assigner = StoryAssigner(store, RULES)
    save = store.save_story_assignments
    calls = []

    def second_fails(decided):
        calls.append(len(decided))
        if len(calls) == 2:
            raise StoreError("database error: disk I/O error")
        return save(decided)

    monkeypatch.setattr(store, "save_story_assignments", second_fails)
    try:
        assigner.assign_pending(T0 + timedelta(hours=1))
    except StoreError as exc:
        assert "disk I/O error" in str(exc)
    else:
        raise AssertionError("the failed write was not reported")
    assert list(story_ids_by_title(database_url).values()).count(None) == 3
    monkeypatch.setattr(store, "save_story_assignments", save)
    assigner.forget()
    assert assigner.assign_pending(T0 + timedelta(hours=1)) == 3
    ids = story_ids_by_title(database_url)
    assert None not in ids.values()
    assert len({ids[title] for _, title in JACKSON}) == 1
