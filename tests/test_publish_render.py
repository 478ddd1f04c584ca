"""Rendering merged feeds: RSS 2.0, Atom 1.0, JSON Feed 1.1, and their validators.

feedparser 6 does not read JSON Feed, so JSON documents are checked with json.loads
against the same expectations feedparser checks for RSS and Atom.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from aggregator.exceptions import PublishError
from aggregator.publish import (
    FEED_FORMATS,
    body_etag,
    page_last_modified,
    render_atom,
    render_json_feed,
    render_rss,
)
from aggregator.publish.credits import credits_footer_html, entry_body_html, is_web_url
from aggregator.types import (
    Category,
    Credit,
    Enclosure,
    FeedPage,
    PublishedEntry,
    Report,
    StorySeries,
)

BASE_URL = "https://news.example.org"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

TRICKY_TITLE = 'Tom & Jerry\'s <3 "quotes" — talks resume'
UNICODE_TITLE = "Переговоры в Вене: 東京 と تهران ✓"
HOSTILE_BODY = "<p>Never paste &lt;script&gt;alert(1)&lt;/script&gt; into a page.</p>"


# --- builders ----------------------------------------------------------------


def make_credit(source: str, title: str, link: str | None, *, guid: str | None = None) -> Credit:
    return Credit(source=source, source_title=title, link=link, guid=guid, first_seen=NOW)


def make_entry(entry_id: int, *, hours_ago: int = 0, **changes: Any) -> PublishedEntry:
    moment = NOW - timedelta(hours=hours_ago)
    entry = PublishedEntry(
        id=entry_id,
        identity=f"https://example.com/story/{entry_id}",
        link=f"https://example.com/story/{entry_id}",
        title=f"Story {entry_id}",
        content_html=f"<p>Body of story {entry_id}.</p>",
        summary_html=None,
        published=moment,
        updated=moment,
        authors=(),
        categories=(),
        enclosures=(),
        language="en",
        credits=(make_credit("wire", "Wire Service", f"https://wire.example/{entry_id}"),),
    )
    return replace(entry, **changes)


def make_page(*entries: PublishedEntry, **changes: Any) -> FeedPage:
    page = FeedPage(
        slug="world",
        kind="feeds",
        title="World news & analysis",
        description="Every outlet's world coverage, merged",
        self_url=f"{BASE_URL}/feeds/world",
        home_url=f"{BASE_URL}/",
        entries=entries,
        updated=NOW,
    )
    return replace(page, **changes)


MULTI_OUTLET = make_entry(
    101,
    hours_ago=1,
    title=TRICKY_TITLE,
    summary_html="<p>Short version.</p>",
    authors=("Jane Roe",),
    categories=(
        Category(term="diplomacy", domain="https://outlet-a.example/tags", label="Diplomacy"),
        Category(term="iran", domain="https://outlet-b.example/topics"),
    ),
    enclosures=(
        Enclosure(url="https://cdn.example/talks.mp3", type="audio/mpeg", length=None),
        Enclosure(url="https://cdn.example/talks.jpg", type="image/jpeg", length=2048),
    ),
    credits=(
        make_credit("sputnik", "Sputnik International", "https://sputnik.example/a/1", guid="s1"),
        make_credit("fars", "Fars News", "https://fars.example/news/77"),
        make_credit("wire", "Wire Service", "https://wire.example/101"),
    ),
    series=("vienna-talks",),
    why=(StorySeries(slug="vienna-talks", reason="keyword 'Vienna'", item_id=99),),
    story=7,
)
NO_LINK = make_entry(
    102,
    hours_ago=2,
    link=None,
    title=UNICODE_TITLE,
    content_html=None,
    summary_html="<p>Только резюме.</p>",
    credits=(make_credit("tass", "TASS", "https://tass.example/w/9"),),
)
HOSTILE = make_entry(103, hours_ago=3, content_html=HOSTILE_BODY)
UNCREDITED = make_entry(104, hours_ago=4, content_html=None, credits=())

PAGE = make_page(MULTI_OUTLET, NO_LINK, HOSTILE, UNCREDITED)
EXPECTED_IDS = [f"tag:aggregator,2026:item:{n}" for n in (101, 102, 103, 104)]

Renderer = Callable[[FeedPage], bytes]
XML_RENDERERS = [pytest.param(render_rss, id="rss"), pytest.param(render_atom, id="atom")]


# --- reading the output back ---------------------------------------------------


def parse_xml_feed(document: bytes) -> Any:
    parsed = feedparser.parse(document)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def xml_entry_html(entry: Any) -> str:
    """The entry's HTML body as feedparser sees it (RSS description or Atom content)."""
    if entry.get("content"):
        return str(entry.content[0].value)
    return str(entry.get("summary", ""))


def json_items(document: bytes) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(document)["items"]
    return items


def ids_titles_bodies(render: Renderer, page: FeedPage) -> list[tuple[str, str, str]]:
    document = render(page)
    if render is render_json_feed:
        return [(i["id"], i.get("title", ""), i["content_html"]) for i in json_items(document)]
    entries = parse_xml_feed(document).entries
    return [(e.id, e.title, xml_entry_html(e)) for e in entries]


ALL_RENDERERS = [*XML_RENDERERS, pytest.param(render_json_feed, id="json")]


# --- every format --------------------------------------------------------------


@pytest.mark.parametrize("render", ALL_RENDERERS)
def test_entries_keep_page_order_and_stable_ids(render: Renderer) -> None:
    rendered = ids_titles_bodies(render, PAGE)
    assert [entry_id for entry_id, _, _ in rendered] == EXPECTED_IDS


@pytest.mark.parametrize("render", ALL_RENDERERS)
def test_output_is_a_function_of_the_data(render: Renderer) -> None:
    first = render(PAGE)
    second = render(make_page(*PAGE.entries))
    assert first == second


@pytest.mark.parametrize("render", ALL_RENDERERS)
def test_titles_round_trip_exactly(render: Renderer) -> None:
    titles = [title for _, title, _ in ids_titles_bodies(render, PAGE)]
    assert titles[:2] == [TRICKY_TITLE, UNICODE_TITLE]


@pytest.mark.parametrize("render", ALL_RENDERERS)
def test_every_outlet_is_credited_with_its_own_link(render: Renderer) -> None:
    _, _, body = ids_titles_bodies(render, PAGE)[0]
    for credit in MULTI_OUTLET.credits:
        assert credit.link is not None
        assert f'href="{credit.link}"' in body
        assert credit.source_title in body
    assert body.startswith("<p>Body of story 101.</p>")


@pytest.mark.parametrize("render", ALL_RENDERERS)
def test_sanitized_markup_text_stays_text(render: Renderer) -> None:
    _, _, body = ids_titles_bodies(render, PAGE)[2]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script" not in body


@pytest.mark.parametrize("render", ALL_RENDERERS)
def test_summary_is_the_body_when_there_is_no_content(render: Renderer) -> None:
    _, _, body = ids_titles_bodies(render, PAGE)[1]
    assert "Только резюме." in body
    assert 'href="https://tass.example/w/9"' in body


@pytest.mark.parametrize("render", ALL_RENDERERS)
def test_an_empty_page_renders(render: Renderer) -> None:
    assert ids_titles_bodies(render, make_page()) == []


@pytest.mark.parametrize("render", ALL_RENDERERS)
def test_characters_xml_cannot_carry_are_dropped_not_fatal(render: Renderer) -> None:
    page = make_page(make_entry(1, title="bell\x07 and nul\x00 here"))
    [(_, title, _)] = ids_titles_bodies(render, page)
    expected = "bell\x07 and nul\x00 here" if render is render_json_feed else "bell and nul here"
    assert title == expected


@pytest.mark.parametrize("render", XML_RENDERERS)
def test_a_body_stored_with_characters_xml_cannot_carry_is_cleaned_not_fatal(
    render: Renderer,
) -> None:
    """Bodies are cleaned as they are stored, so the XML renderers write them as they
    are and clean them only when lxml refuses one: an item stored before that still
    renders, and the page's other entries with it."""
    dirty = make_entry(1, content_html="<p>bell\x07 and nul\x00 here</p>", summary_html="v\x0bt")
    page = make_page(dirty, make_entry(2))
    (_, _, body), (_, _, other) = ids_titles_bodies(render, page)
    assert "bell and nul here" in body and "\x07" not in body
    assert "Body of story 2." in other


@pytest.mark.parametrize("render", XML_RENDERERS)
def test_empty_title_gets_a_placeholder(render: Renderer) -> None:
    [(_, title, _)] = ids_titles_bodies(render, make_page(make_entry(1, title="")))
    assert title == "(untitled)"


def test_every_format_is_registered() -> None:
    assert {name: fmt.render for name, fmt in FEED_FORMATS.items()} == {
        "rss": render_rss,
        "atom": render_atom,
        "json": render_json_feed,
    }


# --- RSS ---------------------------------------------------------------------


def test_rss_channel_dates_come_from_the_page_not_the_clock() -> None:
    feed = parse_xml_feed(render_rss(PAGE)).feed
    assert feed.updated == "Sun, 01 Mar 2026 12:00:00 +0000"
    assert feed.published == "Sun, 01 Mar 2026 12:00:00 +0000"
    assert feed.generator == "aggregator"


def test_rss_links_self_and_home() -> None:
    parsed = parse_xml_feed(render_rss(PAGE))
    assert parsed.version == "rss20"
    assert parsed.feed.link == f"{BASE_URL}/"
    self_links = [link.href for link in parsed.feed.links if link.rel == "self"]
    assert self_links == [f"{BASE_URL}/feeds/world.rss"]


def test_rss_guid_is_not_a_permalink() -> None:
    entry = parse_xml_feed(render_rss(PAGE)).entries[0]
    assert entry.guidislink is False
    assert entry.link == MULTI_OUTLET.link


def test_rss_item_without_link_has_none() -> None:
    root = etree.fromstring(render_rss(PAGE))
    items = root.findall("channel/item")
    assert items[1].find("link") is None


def test_rss_source_names_the_first_outlet() -> None:
    root = etree.fromstring(render_rss(PAGE))
    source = root.find("channel/item/source")
    assert source is not None
    assert (source.get("url"), source.text) == (
        "https://sputnik.example/a/1",
        "Sputnik International",
    )


def test_rss_has_one_enclosure_with_a_length() -> None:
    entry = parse_xml_feed(render_rss(PAGE)).entries[0]
    enclosures = [link for link in entry.links if link.rel == "enclosure"]
    assert [(e.href, e.type, e.length) for e in enclosures] == [
        ("https://cdn.example/talks.mp3", "audio/mpeg", "0")
    ]


def test_rss_categories_carry_term_domain_and_series() -> None:
    entry = parse_xml_feed(render_rss(PAGE)).entries[0]
    assert [(tag.term, tag.scheme) for tag in entry.tags] == [
        ("diplomacy", "https://outlet-a.example/tags"),
        ("iran", "https://outlet-b.example/topics"),
        ("vienna-talks", f"{BASE_URL}/series/"),
    ]


def test_rss_pub_dates_are_the_entries() -> None:
    entries = parse_xml_feed(render_rss(PAGE)).entries
    assert [e.published for e in entries[:2]] == [
        "Sun, 01 Mar 2026 11:00:00 +0000",
        "Sun, 01 Mar 2026 10:00:00 +0000",
    ]


# --- Atom --------------------------------------------------------------------


def test_atom_root_is_in_the_atom_namespace() -> None:
    root = etree.fromstring(render_atom(PAGE))
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"


def test_atom_feed_id_links_and_updated() -> None:
    parsed = parse_xml_feed(render_atom(PAGE))
    assert parsed.version == "atom10"
    assert parsed.feed.id == f"{BASE_URL}/feeds/world"
    assert parsed.feed.updated == "2026-03-01T12:00:00+00:00"
    assert parsed.feed.subtitle == PAGE.description
    links = {(link.rel, link.href) for link in parsed.feed.links}
    assert links == {("self", f"{BASE_URL}/feeds/world.atom"), ("alternate", f"{BASE_URL}/")}


def test_atom_authors_name_the_outlets_then_the_writers() -> None:
    entry = parse_xml_feed(render_atom(PAGE)).entries[0]
    assert [author.name for author in entry.authors] == [
        "Sputnik International, Fars News, Wire Service",
        "Jane Roe",
    ]


def test_atom_entry_without_link_uses_the_first_outlet_link() -> None:
    entry = parse_xml_feed(render_atom(PAGE)).entries[1]
    assert entry.link == "https://tass.example/w/9"


def test_atom_enclosures_are_all_kept_as_enclosure_links() -> None:
    entry = parse_xml_feed(render_atom(PAGE)).entries[0]
    assert [(link.rel, link.href) for link in entry.links] == [
        ("alternate", MULTI_OUTLET.link),
        ("enclosure", "https://cdn.example/talks.mp3"),
        ("enclosure", "https://cdn.example/talks.jpg"),
    ]
    assert entry.links[2].length == "2048"


def test_atom_summary_accompanies_content_when_both_exist() -> None:
    entry = parse_xml_feed(render_atom(PAGE)).entries[0]
    assert entry.summary == "<p>Short version.</p>"
    assert entry.content[0].type == "text/html"


def test_atom_categories_carry_scheme_label_and_series() -> None:
    entry = parse_xml_feed(render_atom(PAGE)).entries[0]
    assert [(tag.term, tag.scheme, tag.label) for tag in entry.tags] == [
        ("diplomacy", "https://outlet-a.example/tags", "Diplomacy"),
        ("iran", "https://outlet-b.example/topics", None),
        ("vienna-talks", f"{BASE_URL}/series/", None),
    ]


def test_atom_feed_has_an_author_when_an_entry_has_none() -> None:
    credited_only = parse_xml_feed(render_atom(make_page(MULTI_OUTLET))).feed
    with_uncredited = parse_xml_feed(render_atom(PAGE)).feed
    assert "author" not in credited_only
    assert with_uncredited.author == PAGE.title


# --- JSON Feed -------------------------------------------------------------------


def test_json_feed_has_required_keys() -> None:
    document = json.loads(render_json_feed(PAGE))
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert document["title"] == PAGE.title
    assert document["feed_url"] == f"{BASE_URL}/feeds/world.json"
    assert document["home_page_url"] == f"{BASE_URL}/"
    for item in document["items"]:
        assert item["id"]
        assert "content_html" in item or "content_text" in item


def test_json_feed_is_utf8_not_escaped_ascii() -> None:
    assert UNICODE_TITLE.encode("utf-8") in render_json_feed(PAGE)


def test_json_authors_credit_each_outlet_then_the_writers() -> None:
    item = json_items(render_json_feed(PAGE))[0]
    assert item["authors"] == [
        {"name": "Sputnik International", "url": "https://sputnik.example/a/1"},
        {"name": "Fars News", "url": "https://fars.example/news/77"},
        {"name": "Wire Service", "url": "https://wire.example/101"},
        {"name": "Jane Roe"},
    ]


def test_json_outlets_extension_lists_every_credit() -> None:
    item = json_items(render_json_feed(PAGE))[0]
    assert item["_aggregator"] == {
        "outlets": [
            {
                "source": "sputnik",
                "title": "Sputnik International",
                "url": "https://sputnik.example/a/1",
                "guid": "s1",
            },
            {
                "source": "fars",
                "title": "Fars News",
                "url": "https://fars.example/news/77",
                "guid": None,
            },
            {
                "source": "wire",
                "title": "Wire Service",
                "url": "https://wire.example/101",
                "guid": None,
            },
        ],
        "series": [
            {
                "slug": "vienna-talks",
                "feed_url": f"{BASE_URL}/series/vienna-talks.json",
                "reason": "keyword 'Vienna'",
                "item": 99,  # the report that brought the story into the series
            }
        ],
        "story": f"{BASE_URL}/stories/7.json",
    }


def test_json_attachments_tags_dates_and_links() -> None:
    first, second, *_ = json_items(render_json_feed(PAGE))
    assert first["attachments"] == [
        {"url": "https://cdn.example/talks.mp3", "mime_type": "audio/mpeg"},
        {"url": "https://cdn.example/talks.jpg", "mime_type": "image/jpeg", "size_in_bytes": 2048},
    ]
    assert first["tags"] == ["diplomacy", "iran"]
    assert first["date_published"] == "2026-03-01T11:00:00+00:00"
    assert first["url"] == MULTI_OUTLET.link
    assert second["url"] == "https://tass.example/w/9"


# --- shared pieces ---------------------------------------------------------------


def test_credits_footer_escapes_names_and_links_only_web_urls() -> None:
    footer = credits_footer_html(
        (
            make_credit("a", "A <b>&</b> Co", "https://a.example/?x=1&y=2"),
            make_credit("b", "B", "javascript:alert(1)"),
            make_credit("c", "C", None),
        )
    )
    assert footer == (
        '<p class="aggregator-credits">Reported by: '
        '<a href="https://a.example/?x=1&amp;y=2">A &lt;b&gt;&amp;&lt;/b&gt; Co</a>, B, C</p>'
    )


def test_entry_body_without_content_or_credits_is_empty() -> None:
    assert entry_body_html(make_entry(1, content_html=None, credits=())) == ""


def test_renderer_refusal_becomes_publish_error() -> None:
    page = make_page(make_entry(1, link="https://example.com/\x00"))
    with pytest.raises(PublishError, match="feeds/world"):
        render_rss(page)


# --- validators ------------------------------------------------------------------


def _etag(page: FeedPage, fmt: str) -> str:
    return body_etag(FEED_FORMATS[fmt].render(page))


def test_etag_is_strong_quoted_and_stable() -> None:
    etag = _etag(PAGE, "rss")
    assert etag.startswith('"') and etag.endswith('"')
    assert not etag.startswith("W/")
    assert _etag(make_page(*PAGE.entries), "rss") == etag


def test_rendering_never_reads_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # feedgen stamps datetime.now() where a renderer leaves a date unset: the ETag is a
    # hash of the bytes, so the bytes must be the data's alone.
    import feedgen.entry
    import feedgen.feed

    before = {fmt: _etag(PAGE, fmt) for fmt in FEED_FORMATS}

    class AnyDatetime(type):  # feedgen checks its arguments with isinstance(x, datetime)
        def __instancecheck__(cls, instance: object) -> bool:
            return isinstance(instance, datetime)

    class Later(datetime, metaclass=AnyDatetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Later:
            return cls(2099, 1, 1, tzinfo=tz)

    monkeypatch.setattr(feedgen.feed, "datetime", Later)
    monkeypatch.setattr(feedgen.entry, "datetime", Later)
    assert {fmt: _etag(PAGE, fmt) for fmt in FEED_FORMATS} == before


def test_etag_differs_by_format() -> None:
    assert len({_etag(PAGE, fmt) for fmt in FEED_FORMATS}) == len(FEED_FORMATS)


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(make_page(make_entry(100), *PAGE.entries), id="entry added"),
        pytest.param(make_page(*PAGE.entries[1:]), id="entry dropped"),
        pytest.param(
            make_page(replace(MULTI_OUTLET, credits=MULTI_OUTLET.credits[:1]), *PAGE.entries[1:]),
            id="credit dropped",
        ),
        pytest.param(
            make_page(replace(MULTI_OUTLET, content_html="<p>Edited</p>"), *PAGE.entries[1:]),
            id="content edited",
        ),
        pytest.param(replace(PAGE, title="Other"), id="feed title"),
    ],
)
def test_etag_changes_with_the_data(changed: FeedPage) -> None:
    for fmt in FEED_FORMATS:
        assert _etag(changed, fmt) != _etag(PAGE, fmt)


def test_last_modified_is_the_latest_change_to_the_second() -> None:
    later = make_entry(9, updated=NOW + timedelta(minutes=5, microseconds=250))
    page = make_page(later, updated=NOW)
    assert page_last_modified(page) == NOW + timedelta(minutes=5)
    assert page_last_modified(page).tzinfo is not None
    assert page_last_modified(make_page()) == NOW


def test_a_story_entry_lists_every_report_escaped_and_linked() -> None:
    reports = (
        Report(
            title=TRICKY_TITLE,
            link="https://a.example/1",
            source="a",
            source_title="A <News>",
            published=NOW,
        ),
        Report(
            title="Second report",
            link="javascript:alert(1)",
            source="b",
            source_title="B",
            published=NOW,
        ),
    )
    entry = make_entry(1, reports=reports)
    body = entry_body_html(entry)
    assert "Reported by 2 outlets:" in body
    assert '<a href="https://a.example/1">Tom &amp; Jerry&#x27;s &lt;3' in body
    assert "(A &lt;News&gt;)" in body
    assert "javascript:" not in body  # a report's link that is not http(s) is not a link
    for render in (render_rss, render_atom, render_json_feed):
        assert render(make_page(entry))


def test_the_story_page_escapes_what_outlets_sent() -> None:
    from aggregator.publish.html_index import render_story_page
    from aggregator.types import StoryView

    entry = make_entry(1, title="<script>alert(1)</script> & more", link="javascript:alert(1)")
    page = render_story_page(
        StoryView(id=7, first_seen=NOW, last_seen=NOW, entries=(entry,)), base_url=BASE_URL
    ).decode()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "javascript:" not in page
    assert f'href="{BASE_URL}/stories/7.json"' in page


# --- the Atom schema (RFC 4287, Appendix B) ---------------------------------------------


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(PAGE, id="outlets, enclosures, hostile and unicode text"),
        pytest.param(make_page(), id="empty"),
        pytest.param(replace(PAGE, kind="series", slug="vienna-talks"), id="series"),
    ],
)
def test_atom_is_valid_against_the_rfc_4287_schema(page: FeedPage) -> None:
    from tests.atom_schema import atom_errors

    assert atom_errors(render_atom(page)) == []


def test_the_atom_schema_check_can_fail() -> None:
    from tests.atom_schema import atom_errors

    document = render_atom(PAGE)
    without_id = re.sub(rb"<id>[^<]*</id>", b"", document, count=1)  # the feed's own id
    assert atom_errors(without_id) != []


# --- paging (RFC 5005) ----------------------------------------------------------------


def test_a_middle_page_links_the_first_the_previous_and_the_next() -> None:
    from tests.atom_schema import atom_errors

    middle = replace(PAGE, page=2, has_next=True)
    page_two, page_three = f"{BASE_URL}/feeds/world.%s?page=2", f"{BASE_URL}/feeds/world.%s?page=3"
    atom = parse_xml_feed(render_atom(middle)).feed
    assert {(link.rel, link.href) for link in atom.links} >= {
        ("self", page_two % "atom"),
        ("first", f"{BASE_URL}/feeds/world.atom"),
        ("previous", f"{BASE_URL}/feeds/world.atom"),
        ("next", page_three % "atom"),
    }
    assert atom_errors(render_atom(middle)) == []
    channel = etree.fromstring(render_rss(middle)).find("channel")
    assert channel is not None
    rss_links = {
        (link.get("rel"), link.get("href"))
        for link in channel.findall("{http://www.w3.org/2005/Atom}link")
    }
    assert rss_links == {
        ("self", page_two % "rss"),
        ("first", f"{BASE_URL}/feeds/world.rss"),
        ("previous", f"{BASE_URL}/feeds/world.rss"),
        ("prev", f"{BASE_URL}/feeds/world.rss"),  # its synonym, which some readers seek
        ("next", page_three % "rss"),
    }
    assert channel.index(channel.find("item")) > max(  # type: ignore[arg-type]
        channel.index(link) for link in channel.findall("{http://www.w3.org/2005/Atom}link")
    )
    document = json.loads(render_json_feed(middle))
    assert document["feed_url"] == page_two % "json"
    assert document["next_url"] == page_three % "json"
    last = json.loads(render_json_feed(replace(PAGE, page=3)))
    assert "next_url" not in last


def test_a_feed_says_its_language_when_its_entries_agree_on_one() -> None:
    from tests.atom_schema import atom_errors

    english = make_page(make_entry(1), make_entry(2, language="EN"), make_entry(3, language=None))
    assert etree.fromstring(render_rss(english)).findtext("channel/language") == "en"
    atom = etree.fromstring(render_atom(english))
    assert atom.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert atom_errors(render_atom(english)) == []
    assert json.loads(render_json_feed(english))["language"] == "en"
    mixed = make_page(make_entry(1), make_entry(2, language="fr"))
    assert etree.fromstring(render_rss(mixed)).find("channel/language") is None
    assert "language" not in json.loads(render_json_feed(mixed))
    assert json.loads(render_json_feed(mixed))["items"][1]["language"] == "fr"  # each its own


def _web_scheme(url: str) -> bool:
    from urllib.parse import urlsplit

    return urlsplit(url).scheme in ("http", "https")


@pytest.mark.parametrize(
    ("url", "web"),
    [
        ("https://example.com/a", True),
        ("http://example.com/a", True),
        ("HTTPS://example.com/a", True),
        (" \thttp://example.com/a", True),
        ("javascript:alert(1)", False),
        ("java\nscript:alert(1)", False),
        ("httpx://example.com", False),
        ("ftp://example.com", False),
        ("/relative", False),
        (None, False),
    ],
)
def test_a_web_url_is_one_urlsplit_finds_http_or_https_in(url: str | None, web: bool) -> None:
    assert is_web_url(url) is web


@given(
    st.sampled_from(["", "http://", "https://", "HTTP://", "http:", " http://", "javascript:"]),
    st.text(max_size=30),
)
def test_the_quick_web_url_check_agrees_with_urlsplit(prefix: str, rest: str) -> None:
    url = prefix + rest
    try:
        expected = _web_scheme(url)
    except ValueError:  # urlsplit refuses it (a bracket left open): not stored, not compared
        return
    assert is_web_url(url) is expected


def test_a_feed_page_may_be_cached_for_the_shortest_interval_of_its_sources(
    tmp_path: Path,
) -> None:
    from aggregator.publish.catalog import StoreCatalog
    from aggregator.settings import load_settings
    from aggregator.store import Store

    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'a.db'}\n"
        "polling: {interval: 2h, min_interval: 10m, max_interval: 1d}\n"
        "sources:\n"
        "  - {name: hourly, url: 'https://a.example/feed', interval: 1h, tags: [slow]}\n"
        "  - {name: default, url: 'https://b.example/feed', tags: [slow]}\n"
        "  - {name: auto, url: 'https://c.example/feed', interval: auto}\n"
        "  - {name: fast, url: 'https://d.example/feed', interval: 5m}\n"
        "feeds:\n"
        "  - {slug: slow, title: Slow, tags: [slow]}\n"
        "  - {slug: auto, title: Auto, sources: [auto, default]}\n"
        "  - {slug: fast, title: Fast, sources: [fast, hourly]}\n",
        encoding="utf-8",
    )
    settings = load_settings(config, environ={})
    with Store.open(settings.database) as store:
        catalog = StoreCatalog(settings, store)
        ages = {slug: catalog.feed_page("feeds", slug).max_age for slug in ("slow", "auto", "fast")}  # type: ignore[union-attr]
    # The shortest interval among the feed's sources; an automatic interval may go
    # down to min_interval, and none is taken below it.
    assert ages == {"slow": 3600, "auto": 600, "fast": 600}
