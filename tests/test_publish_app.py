"""The publishing app, through Starlette's TestClient and a fake catalog."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
import warnings
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html.parser import HTMLParser
from typing import Any

import feedparser
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from aggregator.exceptions import StoreError
from aggregator.publish.app import create_app
from aggregator.types import (
    Credit,
    FeedInfo,
    FeedKind,
    FeedPage,
    Listing,
    PublishedEntry,
    SeriesCounts,
    SourceState,
)

# Starlette >= 1.x wants httpx2 for its TestClient and warns (an error here) on import
# when only httpx is installed; the client itself works the same with either.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

BASE_URL = "https://news.example.org"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}


def make_entry(entry_id: int, *, hours_ago: int = 0) -> PublishedEntry:
    moment = NOW - timedelta(hours=hours_ago)
    return PublishedEntry(
        id=entry_id,
        identity=f"https://example.com/story/{entry_id}",
        link=f"https://example.com/story/{entry_id}",
        title=f"Story {entry_id}",
        content_html=f"<p>Body {entry_id}</p>",
        summary_html=None,
        published=moment,
        updated=moment,
        authors=(),
        categories=(),
        enclosures=(),
        language=None,
        credits=(
            Credit(
                source="wire",
                source_title="Wire Service",
                link=f"https://wire.example/{entry_id}",
                guid=None,
                first_seen=moment,
            ),
        ),
    )


class FakeCatalog:
    """An in-memory catalog; records whether it was ever called on the event loop."""

    def __init__(self) -> None:
        self._infos: dict[tuple[FeedKind, str], FeedInfo] = {}
        self._entries: dict[tuple[FeedKind, str], list[PublishedEntry]] = {}
        self.reachable = True
        self.failing_store = False
        self.calls_on_event_loop = 0
        self._sources: list[SourceState] = []
        self.listed_with_counts: list[bool] = []
        self.changes = 0  # what version() answers: counted by add_entry, as the store does
        self.pages_loaded = 0
        self.hold: threading.Event | None = None
        self.versions_read = 0
        self.collector_on_during_load: list[bool] = []

    # builders

    def with_feed(
        self,
        slug: str,
        *entries: PublishedEntry,
        kind: FeedKind = "feeds",
        title: str | None = None,
        description: str = "",
    ) -> FakeCatalog:
        key = (kind, slug)
        self._infos[key] = FeedInfo(
            kind=kind, slug=slug, title=title or slug.title(), description=description
        )
        self._entries[key] = list(entries)
        return self

    def with_series(
        self,
        slug: str,
        *entries: PublishedEntry,
        title: str | None = None,
        counts: SeriesCounts | None = None,
    ) -> FakeCatalog:
        self.with_feed(slug, *entries, kind="series", title=title)
        self._infos[("series", slug)] = replace(self._infos[("series", slug)], counts=counts)
        return self

    def with_source(self, name: str, **state: Any) -> FakeCatalog:
        values: dict[str, Any] = {
            "name": name,
            "url": f"https://{name}.example/feed",
            "fetch_url": None,
            "gone": False,
            "etag": None,
            "last_modified": None,
            "last_polled_at": NOW,
            "next_poll_at": NOW + timedelta(minutes=15),
            "last_status": "ok",
            "last_http_status": 200,
            "last_error": None,
            "consecutive_errors": 0,
            "item_count": 3,
        }
        self._sources.append(SourceState(**(values | state)))
        return self

    def add_entry(self, slug: str, entry: PublishedEntry, *, kind: FeedKind = "feeds") -> None:
        self._entries[(kind, slug)].insert(0, entry)
        self.changes += 1

    # the Catalog protocol

    def listing(self, *, counts: bool = True) -> Listing:
        self._note_thread()
        self.listed_with_counts.append(counts)
        infos = list(self._infos.values())
        return Listing(
            feeds=tuple(i for i in infos if i.kind == "feeds"),
            series=tuple(i for i in infos if i.kind == "series"),
        )

    def feed_page(self, kind: FeedKind, slug: str, page: int = 1) -> FeedPage | None:
        self._note_thread()
        self.collector_on_during_load.append(gc.isenabled())
        if self.hold is not None:  # a slow store: the test says when the load may end
            assert self.hold.wait(30)
        self.pages_loaded += 1
        if self.failing_store:
            raise StoreError("connection refused")
        info = self._infos.get((kind, slug))
        if info is None:
            return None
        entries = tuple(self._entries[(kind, slug)])
        return FeedPage(
            slug=slug,
            kind=kind,
            title=info.title,
            description=info.description,
            self_url=f"{BASE_URL}/{kind}/{slug}",
            home_url=f"{BASE_URL}/",
            entries=entries,
            updated=max((e.updated for e in entries), default=NOW),
        )

    def sources(self) -> tuple[SourceState, ...]:
        self._note_thread()
        return tuple(self._sources)

    def ping(self) -> None:
        self._note_thread()
        if not self.reachable:
            raise ConnectionError("database is down")

    def story(self, story_id: int) -> None:
        self._note_thread()
        return None

    def version(self) -> int:
        self._note_thread()
        self.versions_read += 1
        if self.failing_store:
            raise StoreError("connection refused")
        return self.changes

    def _note_thread(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.calls_on_event_loop += 1


@pytest.fixture
def catalog() -> FakeCatalog:
    return (
        FakeCatalog()
        .with_feed("world", make_entry(2), make_entry(1, hours_ago=1), title="World & Co")
        .with_feed("tech", make_entry(3), title="Tech <News>", description="Gadgets & more")
        .with_series("vienna-talks", make_entry(2), title="Vienna talks")
    )


@pytest.fixture
def client(catalog: FakeCatalog) -> TestClient:
    # The publication counter is read on every request, and no copy from before a change
    # is served while the feed loads again: a change is seen at once. The tests of the
    # rendered-feed cache below keep the defaults.
    app = create_app(catalog, base_url=f"{BASE_URL}/", recheck=0, stale_while_loading=0)
    return TestClient(app)


# --- feeds -----------------------------------------------------------------------


def test_a_feed_is_loaded_and_rendered_with_the_collector_paused(
    client: TestClient, catalog: FakeCatalog
) -> None:
    assert gc.isenabled()
    assert client.get("/feeds/world.rss").status_code == 200
    assert catalog.collector_on_during_load == [False]
    assert gc.isenabled()  # on again after
    assert client.get("/feeds/nowhere.rss").status_code == 404
    assert catalog.collector_on_during_load == [False, False]
    assert gc.isenabled()  # also after a load that found nothing


@pytest.mark.parametrize("kind, slug", [("feeds", "world"), ("series", "vienna-talks")])
@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_feed_is_served_in_each_format(
    client: TestClient, catalog: FakeCatalog, kind: str, slug: str, fmt: str
) -> None:
    response = client.get(f"/{kind}/{slug}.{fmt}")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPES[fmt]
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.headers["etag"].startswith('"')
    assert catalog.calls_on_event_loop == 0
    if fmt == "json":
        assert json.loads(response.content)["feed_url"] == f"{BASE_URL}/{kind}/{slug}.json"
    else:
        parsed = feedparser.parse(response.content)
        assert parsed.bozo == 0
        assert len(parsed.entries) >= 1


def test_feed_entries_come_newest_first(client: TestClient) -> None:
    parsed = feedparser.parse(client.get("/feeds/world.atom").content)
    assert [e.id for e in parsed.entries] == [
        "tag:aggregator,2026:item:2",
        "tag:aggregator,2026:item:1",
    ]


def test_last_modified_is_an_http_date(client: TestClient) -> None:
    response = client.get("/feeds/world.rss")
    assert response.headers["last-modified"] == "Sun, 01 Mar 2026 12:00:00 GMT"


@pytest.mark.parametrize(
    "path, message",
    [
        ("/feeds/nope.rss", "no merged feed named 'nope'; see / for the list"),
        ("/series/nope.json", "no series named 'nope'; see / for the list"),
        ("/feeds/world.xml", "unknown feed format in 'world.xml'; use .rss, .atom or .json"),
        ("/feeds/world", "unknown feed format in 'world'; use .rss, .atom or .json"),
        ("/feeds/.rss", "unknown feed format in '.rss'; use .rss, .atom or .json"),
    ],
)
def test_unknown_feed_is_404_with_a_hint(client: TestClient, path: str, message: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.text == message
    assert response.headers["content-type"].startswith("text/plain")


def test_head_sends_headers_without_a_body(client: TestClient) -> None:
    identity = {"Accept-Encoding": "identity"}
    full = client.get("/feeds/world.atom", headers=identity)
    head = client.head("/feeds/world.atom", headers=identity)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == full.headers["etag"]
    assert head.headers["content-type"] == CONTENT_TYPES["atom"]
    assert head.headers["content-length"] == str(len(full.content))


# --- conditional requests ----------------------------------------------------------


@pytest.mark.parametrize(
    "if_none_match",
    ["{etag}", "W/{etag}", '"stale", {etag}', "*"],
    ids=["exact", "weak", "list", "star"],
)
def test_matching_if_none_match_is_304(client: TestClient, if_none_match: str) -> None:
    etag = client.get("/feeds/world.json").headers["etag"]
    response = client.get(
        "/feeds/world.json", headers={"If-None-Match": if_none_match.format(etag=etag)}
    )
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert "content-length" not in response.headers


def test_if_none_match_wins_over_if_modified_since(client: TestClient) -> None:
    response = client.get(
        "/feeds/world.rss",
        headers={
            "If-None-Match": '"something-else"',
            "If-Modified-Since": format_datetime(NOW + timedelta(days=1), usegmt=True),
        },
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "since, status",
    [
        (format_datetime(NOW, usegmt=True), 304),
        (format_datetime(NOW + timedelta(hours=1), usegmt=True), 304),
        (format_datetime(NOW - timedelta(seconds=1), usegmt=True), 200),
        ("not a date", 200),
    ],
    ids=["equal", "later", "earlier", "garbage"],
)
def test_if_modified_since(client: TestClient, since: str, status: int) -> None:
    response = client.get("/feeds/world.rss", headers={"If-Modified-Since": since})
    assert response.status_code == status


def test_etag_follows_the_data(client: TestClient, catalog: FakeCatalog) -> None:
    first = client.get("/feeds/world.rss").headers["etag"]
    assert client.get("/feeds/world.rss").headers["etag"] == first

    catalog.add_entry("world", make_entry(9))
    changed = client.get("/feeds/world.rss")
    assert changed.headers["etag"] != first
    stale = client.get("/feeds/world.rss", headers={"If-None-Match": first})
    assert stale.status_code == 200


def test_formats_have_different_etags(client: TestClient) -> None:
    etags = {client.get(f"/feeds/world.{fmt}").headers["etag"] for fmt in CONTENT_TYPES}
    assert len(etags) == 3


def test_store_failure_is_503(client: TestClient, catalog: FakeCatalog) -> None:
    catalog.failing_store = True
    response = client.get("/feeds/world.rss")
    assert response.status_code == 503


# --- index and OPML ------------------------------------------------------------------


class _IndexPage(HTMLParser):
    """Collects autodiscovery links in <head> and link targets in <body>."""

    def __init__(self) -> None:
        super().__init__()
        self.in_head = False
        self.alternates: set[tuple[str | None, str | None, str | None]] = set()
        self.anchors: set[str | None] = set()
        self.tags: set[str] = set()
        self.viewport = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.add(tag)
        if tag == "head":
            self.in_head = True
        elif tag == "link" and self.in_head and attributes.get("rel") == "alternate":
            self.alternates.add((attributes["type"], attributes["href"], attributes["title"]))
        elif tag == "a":
            self.anchors.add(attributes.get("href"))
        elif tag == "meta" and attributes.get("name") == "viewport":
            self.viewport = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.in_head = False


def test_index_lists_every_feed_with_autodiscovery(
    client: TestClient, catalog: FakeCatalog
) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = _IndexPage()
    page.feed(response.text)

    expected = {
        (media_type, f"{BASE_URL}/{kind}/{slug}.{fmt}", f"{title} ({label})")
        for kind, slug, title in [
            ("feeds", "world", "World & Co"),
            ("feeds", "tech", "Tech <News>"),
            ("series", "vienna-talks", "Vienna talks"),
        ]
        for fmt, media_type, label in [
            ("rss", "application/rss+xml", "RSS"),
            ("atom", "application/atom+xml", "Atom"),
            ("json", "application/feed+json", "JSON Feed"),
        ]
    }
    assert page.alternates == expected
    assert {href for _, href, _ in expected} | {f"{BASE_URL}/opml"} == page.anchors
    assert page.viewport
    assert "script" not in page.tags
    assert catalog.calls_on_event_loop == 0


def test_index_escapes_titles_and_descriptions(client: TestClient) -> None:
    text = client.get("/").text
    assert "Tech &lt;News&gt;" in text
    assert "Gadgets &amp; more" in text
    assert "<News>" not in text


def test_index_with_nothing_to_list() -> None:
    client = TestClient(create_app(FakeCatalog(), base_url=BASE_URL))
    text = client.get("/").text
    assert "No merged feeds yet." in text
    assert "No series yet." in text


def test_opml_has_one_rss_outline_per_merged_feed(client: TestClient) -> None:
    response = client.get("/opml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/x-opml; charset=utf-8"
    root = ET.fromstring(response.content)
    assert root.tag == "opml"
    assert root.get("version") == "2.0"
    outlines = root.findall("body/outline")
    assert [
        (o.get("type"), o.get("title"), o.get("xmlUrl"), o.get("htmlUrl")) for o in outlines
    ] == [
        ("rss", "World & Co", f"{BASE_URL}/feeds/world.rss", BASE_URL),
        ("rss", "Tech <News>", f"{BASE_URL}/feeds/tech.rss", BASE_URL),
    ]
    assert outlines[1].get("description") == "Gadgets & more"


# --- health ----------------------------------------------------------------------------


def test_healthz_ok(client: TestClient, catalog: FakeCatalog) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.text) == (200, "ok")
    assert catalog.calls_on_event_loop == 0


def test_healthz_answers_while_the_store_is_down_and_readyz_does_not(
    client: TestClient, catalog: FakeCatalog
) -> None:
    assert (client.get("/readyz").status_code, client.get("/readyz").text) == (200, "ready")
    catalog.reachable = False
    assert client.get("/healthz").status_code == 200  # alive: restarting would not help
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.text == "the store cannot be reached\n"


def test_readyz_reports_what_the_poller_says_is_wrong(catalog: FakeCatalog) -> None:
    problems: list[str] = []
    app = create_app(catalog, base_url=BASE_URL, readiness=lambda: list(problems))
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        problems += ["the scheduler is not running", "the poll of bbc has run 95s"]
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.text.splitlines() == problems


def test_added_entry_is_served(client: TestClient, catalog: FakeCatalog) -> None:
    catalog.add_entry("tech", replace(make_entry(50), title="Fresh"))
    parsed = feedparser.parse(client.get("/feeds/tech.rss").content)
    assert [e.title for e in parsed.entries] == ["Fresh", "Story 3"]


def test_sources_json_reports_every_source_state() -> None:
    catalog = (
        FakeCatalog()
        .with_source("bbc")
        .with_source(
            "old", gone=True, last_status="gone", last_http_status=410, last_error="HTTP 410 Gone"
        )
        .with_source(
            "moved",
            fetch_url="https://new.example/feed",
            consecutive_errors=2,
            last_status="error",
            last_error="HTTP 503 Service Unavailable",
        )
    )
    response = TestClient(create_app(catalog, base_url=BASE_URL)).get("/sources.json")
    assert response.status_code == 200
    sources = {s["name"]: s for s in response.json()["sources"]}
    assert sources["bbc"] == {
        "name": "bbc",
        "url": "https://bbc.example/feed",
        "moved_to": None,
        "status": "ok",
        "http_status": 200,
        "last_poll": "2026-03-01T12:00:00Z",
        "next_poll": "2026-03-01T12:15:00Z",
        "items": 3,
        "consecutive_errors": 0,
        "last_error": None,
    }
    assert (sources["old"]["status"], sources["old"]["next_poll"]) == ("gone", None)
    assert sources["moved"]["moved_to"] == "https://new.example/feed"
    assert sources["moved"]["consecutive_errors"] == 2
    assert catalog.calls_on_event_loop == 0


def test_series_are_listed_with_what_they_hold() -> None:
    counts = SeriesCounts(
        items=1881,
        stories=412,
        outlets=(("nyt", 900), ("bbc & co", 981)),
        first_seen=NOW - timedelta(days=30),
        last_seen=NOW,
    )
    catalog = FakeCatalog().with_series("is", title="Islamic State", counts=counts)
    client = TestClient(create_app(catalog, base_url=BASE_URL))
    listed = client.get("/series/")
    assert listed.status_code == 200
    assert listed.json() == {
        "series": [
            {
                "slug": "is",
                "title": "Islamic State",
                "description": "",
                "auto": False,
                "feeds": {
                    "rss": f"{BASE_URL}/series/is.rss",
                    "atom": f"{BASE_URL}/series/is.atom",
                    "json": f"{BASE_URL}/series/is.json",
                },
                "items": 1881,
                "stories": 412,
                "outlets": [{"source": "nyt", "items": 900}, {"source": "bbc & co", "items": 981}],
                "first_seen": "2026-01-30T12:00:00Z",
                "last_seen": "2026-03-01T12:00:00Z",
            }
        ]
    }
    page = client.get("/").text
    assert "1881 reports in 412 stories; 2026-01-30 to 2026-03-01" in page
    assert "2 outlets: nyt (900), bbc &amp; co (981)" in page
    assert "Series from outlets" not in page  # no series made from tags


def test_series_made_from_outlets_tags_are_listed_apart() -> None:
    catalog = FakeCatalog().with_series("declared", title="Declared")
    catalog.with_series("davos-2026", title="Davos 2026")
    key = ("series", "davos-2026")
    catalog._infos[key] = replace(catalog._infos[key], auto=True)
    client = TestClient(create_app(catalog, base_url=BASE_URL))
    listed = {s["slug"]: s["auto"] for s in client.get("/series/").json()["series"]}
    assert listed == {"declared": False, "davos-2026": True}
    page = client.get("/").text
    declared_at, auto_heading = page.index("<h3>Declared</h3>"), page.index("Series from outlets")
    assert declared_at < auto_heading < page.index("<h3>Davos 2026</h3>")


def test_the_opml_does_not_count_what_series_hold(client: TestClient, catalog: FakeCatalog) -> None:
    client.get("/opml")
    client.get("/")
    assert catalog.listed_with_counts == [False, True]


# --- compression and the rendered-feed cache ---------------------------------------


def test_gzip_when_accepted_with_its_own_etag(client: TestClient) -> None:
    plain = client.get("/feeds/world.rss", headers={"Accept-Encoding": "identity"})
    zipped = client.get("/feeds/world.rss", headers={"Accept-Encoding": "br;q=1, gzip;q=0.5"})
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
    assert zipped.content == plain.content  # httpx decoded it
    assert int(zipped.headers["content-length"]) < len(plain.content)
    # another representation, another tag; each revalidates as itself
    assert zipped.headers["etag"] != plain.headers["etag"]
    again = client.get(
        "/feeds/world.rss",
        headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]},
    )
    assert again.status_code == 304
    refused = client.get("/feeds/world.rss", headers={"Accept-Encoding": "gzip;q=0, br"})
    assert "content-encoding" not in refused.headers


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_revalidation_costs_no_query_within_the_recheck_time(
    catalog: FakeCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator.publish import feed_cache

    clock = _Clock()
    monkeypatch.setattr(feed_cache.time, "monotonic", clock)
    client = TestClient(create_app(catalog, base_url=f"{BASE_URL}/", stale_while_loading=0))
    first = client.get("/feeds/world.rss")
    assert (catalog.pages_loaded, catalog.versions_read) == (1, 1)
    for _ in range(20):  # full requests and revalidations, from memory
        assert client.get("/feeds/world.rss").content == first.content
        revalidated = client.get(
            "/feeds/world.rss", headers={"If-None-Match": first.headers["etag"]}
        )
        assert revalidated.status_code == 304
    assert (catalog.pages_loaded, catalog.versions_read) == (1, 1)
    # A poll changes the feed: seen once the recheck time has passed, never later.
    catalog.add_entry("world", make_entry(9))
    clock.now += 0.3
    changed = client.get("/feeds/world.rss", headers={"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["etag"] != first.headers["etag"]
    assert "Story 9" in changed.text
    assert (catalog.pages_loaded, catalog.versions_read) == (2, 2)
    clock.now += 0.3  # nothing changed: the counter is read, nothing rendered
    assert client.get("/feeds/world.rss").content == changed.content
    assert (catalog.pages_loaded, catalog.versions_read) == (2, 3)


def test_feeds_are_served_from_memory_while_the_store_is_down(
    catalog: FakeCatalog,
) -> None:
    client = TestClient(create_app(catalog, base_url=f"{BASE_URL}/", recheck=0))
    served = client.get("/feeds/world.atom")
    catalog.failing_store = True
    assert client.get("/feeds/world.atom").content == served.content
    assert client.get("/feeds/tech.atom").status_code == 503  # never rendered: no copy


def test_feeds_take_get_and_head_only_and_nothing_below_them(client: TestClient) -> None:
    posted = client.post("/feeds/world.rss", content=b"x")
    assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
    assert client.get("/feeds/world/extra.rss").status_code == 404
    listed = client.get("/series/")  # the list of series, not a feed
    assert listed.status_code == 200 and listed.json()["series"][0]["slug"] == "vienna-talks"


def test_a_304_says_nothing_of_a_body(client: TestClient) -> None:
    first = client.get("/feeds/world.atom", headers={"Accept-Encoding": "gzip"})
    again = client.get(
        "/feeds/world.atom",
        headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["etag"]},
    )
    assert again.status_code == 304 and again.content == b""
    assert "content-length" not in again.headers and "content-encoding" not in again.headers
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["cache-control"] == first.headers["cache-control"]


def test_readers_asking_at_once_after_a_change_share_one_load(catalog: FakeCatalog) -> None:
    import httpx

    app = create_app(catalog, base_url=f"{BASE_URL}/", recheck=0, stale_while_loading=0)

    async def ask_many() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            return list(await asyncio.gather(*(client.get("/feeds/world.rss") for _ in range(20))))

    first = asyncio.run(ask_many())
    assert {r.status_code for r in first} == {200} and catalog.pages_loaded == 1
    catalog.add_entry("world", make_entry(9))
    changed = asyncio.run(ask_many())
    assert {r.text for r in changed} == {changed[0].text} and "Story 9" in changed[0].text
    assert catalog.pages_loaded == 2


def test_while_a_feed_loads_again_readers_get_the_copy_from_before(catalog: FakeCatalog) -> None:
    app = create_app(catalog, base_url=f"{BASE_URL}/", recheck=0, stale_while_loading=60)
    with TestClient(app) as client:
        before = client.get("/feeds/world.rss")
        catalog.hold = threading.Event()
        catalog.add_entry("world", make_entry(9))
        during = client.get("/feeds/world.rss")  # answered at once: the load is held up
        assert during.status_code == 200 and during.content == before.content
        catalog.hold.set()
        deadline = time.monotonic() + 30  # the load ends in the background: then, the change
        while "Story 9" not in (after := client.get("/feeds/world.rss")).text:
            assert time.monotonic() < deadline, "the change was never served"
        assert after.headers["etag"] != before.headers["etag"]
        assert catalog.pages_loaded == 2  # one load for every request that came meanwhile


def test_after_a_quiet_spell_the_first_reader_gets_the_change(
    catalog: FakeCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The copy from before a change is served only while the change is certainly
    # recent; the counter read after a quiet spell cannot tell how old a change is.
    from aggregator.publish import feed_cache

    clock = _Clock()
    monkeypatch.setattr(feed_cache.time, "monotonic", clock)
    client = TestClient(create_app(catalog, base_url=f"{BASE_URL}/"))  # default windows
    before = client.get("/feeds/world.rss")
    catalog.add_entry("world", make_entry(9))
    clock.now += 300  # nobody asked for five minutes
    after = client.get("/feeds/world.rss", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and "Story 9" in after.text


@pytest.mark.parametrize(
    ("header", "gzip"),
    [
        ("gzip", True),
        ("gzip;q=0", False),
        ("gzip;level=1;q=0", False),  # q after another parameter
        ("br, *;q=0.1", True),
        ("br, *;q=0", False),
        ("identity", False),
        ("GZIP; Q=0.5", True),
        ("gzip;q=x", False),
        ("", False),
    ],
)
def test_accept_encoding_is_read_with_its_qualities(header: str, gzip: bool) -> None:
    from aggregator.publish.feed_endpoint import accepts_gzip

    assert accepts_gzip(header) is gzip


def test_the_rendered_feeds_held_stay_within_their_byte_budget() -> None:
    from aggregator.publish.feed_cache import FeedCache, rendered

    cache = FeedCache(lambda: 1, max_bytes=10_000)
    version = asyncio.run(cache.version())

    def feed(size: int):  # type: ignore[no-untyped-def]
        return rendered(
            etag=f'"{size}"', last_modified=NOW, body=b"x" * size, media_type="t", max_age=60
        )

    for n in range(10):
        cache.put(("feeds", f"f{n}", "rss", "1"), feed(3000), version)  # ~3 KB, gzip tiny
    held = [n for n in range(10) if cache.get(("feeds", f"f{n}", "rss", "1")) is not None]
    assert held == [7, 8, 9]  # the newest that fit; the oldest went


def test_metrics_count_feed_requests_by_status(catalog: FakeCatalog) -> None:
    from aggregator.metrics import Metrics

    metrics = Metrics()
    app = create_app(catalog, base_url=BASE_URL, recheck=0, stale_while_loading=0, metrics=metrics)
    with TestClient(app) as client:
        etag = client.get("/feeds/world.rss").headers["etag"]
        assert client.get("/feeds/world.rss", headers={"If-None-Match": etag}).status_code == 304
        assert client.get("/feeds/nothing.rss").status_code == 404
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    for code in ("200", "304", "404"):
        assert f'aggregator_feed_requests_total{{code="{code}"}} 1.0' in lines
    ratio = next(line for line in lines if line.startswith("aggregator_feed_not_modified_ratio "))
    assert float(ratio.split()[1]) == pytest.approx(1 / 3)


def test_metrics_are_not_found_where_nothing_counts_them(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404
