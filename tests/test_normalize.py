"""ParsedItem -> Item: sanitizing, plain titles, canonical links, unique entry keys."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.parse import parse_feed
from aggregator.process.identity import content_hash
from aggregator.process.normalize import LEAD_CHARS, UNTITLED, normalize_item, normalize_items
from aggregator.process.sanitize import plain_text, sanitize_html
from aggregator.types import Category, Enclosure, Item, ParsedItem

DATA = Path(__file__).parent / "data" / "parse"
NOW = datetime(2026, 2, 18, 12, 0, tzinfo=UTC)
BASE = "https://blog.example.com/2024/post.html"
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def parsed(**overrides: object) -> ParsedItem:
    """A plain, valid ParsedItem; tests override the fields they are about."""
    item = ParsedItem(
        guid="tag:example.com,2024:1",
        link=BASE,
        title="A title",
        title_is_html=False,
        content_html="<p>Body</p>",
        summary_html=None,
        published=datetime(2024, 5, 1, 8, 30, tzinfo=UTC),
        updated=None,
    )
    return replace(item, **overrides)  # type: ignore[arg-type]


def normalize(**overrides: object) -> Item:
    return normalize_item(parsed(**overrides), source_name="outlet", now=NOW)


_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


class _MarkupAudit(HTMLParser):
    """Collects what a browser would treat as active content."""

    DANGEROUS_TAGS = frozenset({"script", "style", "iframe", "object", "embed", "form", "applet"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.DANGEROUS_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name in {"style", "srcdoc", "formaction"}:
                self.problems.append(f"{tag}@{name}")
            if name in {"href", "src"} and value is not None:
                # As the URL standard parses it: tabs and newlines removed, C0 and
                # spaces trimmed, then a scheme is letters, digits, "+-." before ":".
                url = re.sub(r"[\t\n\r]", "", value).strip(_C0_AND_SPACE)
                scheme = _SCHEME.match(url)
                if scheme and scheme.group(1).lower() not in {"http", "https", "mailto"}:
                    self.problems.append(f"{tag}@{name}={value[:40]}")


def unsafe_markup(markup: str) -> list[str]:
    audit = _MarkupAudit()
    audit.feed(markup)
    audit.close()
    return audit.problems


def item_strings(item: Item) -> list[str]:
    strings = [
        value for value in (getattr(item, f.name) for f in fields(item)) if isinstance(value, str)
    ]
    strings += item.authors
    strings += [s for c in item.categories for s in (c.term, c.domain, c.label) if s]
    strings += [s for e in item.enclosures for s in (e.url, e.type) if s]
    return strings


# --- sanitize_html -------------------------------------------------------------


@pytest.mark.parametrize(
    "markup",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        "<style>body{display:none}</style>",
        "<iframe src='https://evil.example/'></iframe>",
        "<object data='x.swf'></object><embed src='x.swf'>",
        "<form action='https://evil.example/'><input name=q></form>",
        "<img src=x onerror=alert(1)>",
        "<a href='javascript:alert(1)'>x</a>",
        "<a href=' JaVaScRiPt:alert(1)'>x</a>",
        "<a href='java&#x09;script:alert(1)'>x</a>",
        "<img src='data:image/svg+xml;base64,PHN2Zz4='>",
        "<a href='vbscript:msgbox(1)'>x</a>",
        "<div onclick='steal()' onmouseover='steal()'>hover</div>",
        "<p style='position:fixed'>styled</p>",
        "<svg><script>alert(1)</script></svg>",
        "<math><mi xlink:href='javascript:alert(1)'>x</mi></math>",
    ],
)
def test_active_content_does_not_survive(markup: str) -> None:
    cleaned = sanitize_html(markup, BASE)
    assert cleaned is None or unsafe_markup(cleaned) == []
    assert cleaned is None or "<script" not in cleaned.lower()
    assert cleaned is None or "javascript:" not in cleaned.lower()


def test_safe_markup_is_kept() -> None:
    markup = (
        '<p>Text <b>bold</b> <em>em</em> <a href="https://e.com/x" title="t">link</a></p>'
        '<img src="https://e.com/i.png" alt="pic"><table><tbody><tr><td>1</td></tr></tbody></table>'
    )
    cleaned = sanitize_html(markup, BASE)
    assert cleaned == (
        '<p>Text <b>bold</b> <em>em</em> <a href="https://e.com/x" title="t" '
        'rel="noopener noreferrer nofollow">link</a></p><img src="https://e.com/i.png" alt="pic">'
        "<table><tbody><tr><td>1</td></tr></tbody></table>"
    )


def test_links_get_rel_noopener_noreferrer_nofollow() -> None:
    cleaned = sanitize_html('<a href="https://e.com/" rel="opener">x</a>', None)
    assert cleaned == '<a href="https://e.com/" rel="noopener noreferrer nofollow">x</a>'


def test_relative_urls_are_made_absolute_against_the_base() -> None:
    cleaned = sanitize_html('<a href="../other.html">o</a><img src="/img/a.png">', BASE)
    assert cleaned is not None
    assert 'href="https://blog.example.com/other.html"' in cleaned
    assert 'src="https://blog.example.com/img/a.png"' in cleaned


def test_relative_urls_are_kept_without_a_usable_base() -> None:
    for base in (None, "javascript:alert(1)", "not a url"):
        cleaned = sanitize_html('<img src="/img/a.png">', base)
        assert cleaned == '<img src="/img/a.png">'


def test_control_characters_are_stripped() -> None:
    assert sanitize_html("<p>a\x00b\x01c&#1;d\x85e\tf</p>", None) == "<p>abcde\tf</p>"


@pytest.mark.parametrize(
    "markup", [None, "", "   \n", "<script>x</script> ", "\x00\x01", "<!-- only a comment -->"]
)
def test_empty_result_is_none(markup: str | None) -> None:
    assert sanitize_html(markup, BASE) is None


_HTML_TOKENS = [
    "<a href='", "'>", "</a>", "<p>", "</p>", "<table>", "<tr>", "<td>", "</table>",
    "<script>", "</script>", "<style>", "<b>", "</b>", "<div>", "</div>", "<li>", "<ul>",
    "<img src=x onerror=alert(1)>", "javascript:", "&lt;", "&gt;", "&amp;", "&#0;", "&#x1;",
    "<!--", "-->", "<![CDATA[", "]]>", "<svg>", "<math>", "<form>", "<select>", "<option>",
    "<textarea>", "<noscript>", "<iframe>", "<pre>", "\n", " ", "x", "<", ">", '"', "'",
    "=", "/", "<br/>", "<h1>", "<caption>", "<template>", "<title>", "<xmp>", "<plaintext>",
    "<button>", "<object>", "\x00", "\ud800", "<ruby>", "<rt>", "..", "/img.png",
]  # fmt: skip
HTML_ISH = st.one_of(st.lists(st.sampled_from(_HTML_TOKENS), max_size=30).map("".join), st.text())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HTML_ISH, st.sampled_from([None, BASE, "http://other.example"]))
def test_sanitize_html_is_idempotent(markup: str, base: str | None) -> None:
    once = sanitize_html(markup, base)
    assert sanitize_html(once, base) == once
    if once is not None:
        assert unsafe_markup(once) == []


# Text with none of the characters sanitize_html's shortcut looks for: any code point
# (controls too, which are stripped first), whitespace of every kind, quotes, '=' ...
PLAIN_TEXT = st.text(
    st.characters(codec="utf-8", exclude_characters="<>&\r\xa0\ufeff"), max_size=300
)


@settings(max_examples=1000, deadline=None)
@given(PLAIN_TEXT, st.sampled_from([None, BASE]))
def test_text_without_markup_is_what_nh3_makes_of_it(text: str, base: str | None) -> None:
    """sanitize_html gives text that holds no markup back without calling nh3: it must
    be exactly what nh3 would have made of it."""
    from aggregator.process.sanitize import _ABSOLUTE_ONLY, _nh3_fixpoint, strip_control_chars

    through_nh3 = _nh3_fixpoint(strip_control_chars(text), _ABSOLUTE_ONLY)
    assert sanitize_html(text, base) == (through_nh3 if through_nh3.strip() else None)


# --- plain text (titles, authors, categories) -----------------------------------


@pytest.mark.parametrize(
    ("value", "is_html", "expected"),
    [
        ("A <b>bold</b> &amp; brave title", True, "A bold & brave title"),
        ("Declared text but <i>tagged</i>", False, "Declared text but tagged"),
        ("AT&T <3 you", False, "AT&T <3 you"),
        ("AT&amp;T", True, "AT&T"),
        ("AT&amp;T", False, "AT&amp;T"),
        ("<script>alert(1)</script>Hello", False, "Hello"),
        ("<style>b{}</style>Hi", True, "Hi"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;Hi", True, "Hi"),
        ("&amp;lt;b&amp;gt;Hi", True, "&lt;b&gt;Hi"),  # escaped twice: the text shows "&lt;"
        ("  many\t\tspaces\n\nand lines ", False, "many spaces and lines"),
        ("nul\x00 and\x07 bell\x85 c1", False, "nul and bell c1"),
        ("", True, ""),
        (None, False, ""),
    ],
)
def test_plain_text(value: str | None, is_html: bool, expected: str) -> None:
    assert plain_text(value, is_html=is_html) == expected


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HTML_ISH, st.booleans())
def test_plain_title_never_holds_script_or_control_characters(title: str, is_html: bool) -> None:
    item = normalize(title=title, title_is_html=is_html)
    assert "<script" not in item.title.lower()
    assert not CONTROL.search(item.title)
    assert item.title == item.title.strip()
    assert item.title


# --- normalize_item ------------------------------------------------------------


def test_title_from_html_is_plain_text() -> None:
    assert normalize(title="<b>Big</b> &amp; <i>bold</i>", title_is_html=True).title == "Big & bold"


def test_empty_title_comes_from_the_summary_text() -> None:
    summary = "<p>" + "word " * 40 + "</p>"
    item = normalize(title="  <b></b> ", title_is_html=True, summary_html=summary)
    assert item.title == ("word " * 20).strip()
    assert len(item.title) <= 100


def test_title_falls_back_to_content_then_untitled() -> None:
    assert normalize(title=None, content_html="<p>From content</p>").title == "From content"
    assert normalize(title=None, content_html=None, summary_html="<script>x</script>").title == (
        UNTITLED
    )


def test_links_canonical_and_as_sent() -> None:
    item = normalize(link="HTTPS://Blog.Example.com:443/a?utm_source=rss&id=3#c")
    assert item.link == "https://blog.example.com/a?id=3"
    assert item.source_link == "https://Blog.Example.com:443/a?utm_source=rss&id=3#c"


@pytest.mark.parametrize("link", ["javascript:alert(1)", "data:text/html,x", "/relative", "  "])
def test_unusable_links_become_none(link: str) -> None:
    item = normalize(link=link)
    assert item.link is None
    assert item.source_link is None
    assert item.identity == f"src:outlet:{item.entry_key}"


def test_identity_is_the_canonical_link() -> None:
    item = normalize(link="http://E.com/story?fbclid=1")
    assert item.identity == "link:http://e.com/story"
    assert item.entry_key == "guid:tag:example.com,2024:1"


def test_guid_is_stripped_and_empty_guid_falls_back_to_link() -> None:
    assert normalize(guid="  g-1\x00 ").guid == "g-1"
    item = normalize(guid="   ", link="https://e.com/a")
    assert item.guid is None
    assert item.entry_key == "link:https://e.com/a"


def test_item_without_guid_or_link_is_keyed_by_content() -> None:
    item = normalize(guid=None, link=None)
    assert item.entry_key == f"hash:{item.content_hash}"
    assert item.content_hash == content_hash(item.title, item.content_html, item.summary_html)


def test_content_and_summary_are_sanitized_against_the_item_link() -> None:
    item = normalize(
        content_html='<p onclick="x()">Hi <a href="/more">more</a></p><script>x</script>',
        summary_html='<img src="pic.png" onerror="x()">',
    )
    assert item.content_html == (
        '<p>Hi <a href="https://blog.example.com/more" rel="noopener noreferrer nofollow">'
        "more</a></p>"
    )
    assert item.summary_html == '<img src="https://blog.example.com/2024/pic.png">'


def test_dates_become_aware_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    item = normalize(
        published=datetime(2024, 5, 1, 10, 0, tzinfo=plus_two), updated=datetime(2024, 5, 2, 9, 0)
    )
    assert item.published == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert item.published is not None and item.published.tzinfo is UTC
    assert item.updated == datetime(2024, 5, 2, 9, 0, tzinfo=UTC)


def test_missing_past_and_future_dates_are_kept_as_they_are() -> None:
    assert normalize(published=None).published is None
    old = datetime(1912, 4, 15, tzinfo=UTC)
    assert normalize(published=old).published == old
    future = NOW + timedelta(days=400)
    assert normalize(published=future).published == future


def test_out_of_range_date_becomes_none() -> None:
    east = timezone(timedelta(hours=5))
    item = normalize(published=datetime(1, 1, 1, 1, 0, tzinfo=east))
    assert item.published is None


def test_authors_are_plain_unique_and_non_empty() -> None:
    item = normalize(authors=("<b>Jane</b> Doe", " ", "Jane  Doe", "joe@example.com", ""))
    assert item.authors == ("Jane Doe", "joe@example.com")


def test_categories_are_plain_unique_and_keep_their_domain() -> None:
    item = normalize(
        categories=(
            Category(
                term=" <i>Politics</i> ", domain="http://www.nytimes.com/namespaces/keywords/des"
            ),
            Category(term="Politics", domain="http://www.nytimes.com/namespaces/keywords/des"),
            Category(term="Politics"),
            Category(term="   "),
            Category(term="Kenya", label="<b>Kenya</b>"),
        )
    )
    assert item.categories == (
        Category(term="Politics", domain="http://www.nytimes.com/namespaces/keywords/des"),
        Category(term="Politics"),
        Category(term="Kenya", label="Kenya"),
    )


def test_enclosures_only_http_canonical_with_query() -> None:
    item = normalize(
        enclosures=(
            Enclosure(
                url="HTTPS://CDN.e.com:443/ep.mp3?token=a&utm_source=x#t",
                type="audio/mpeg",
                length=10,
            ),
            Enclosure(url="https://cdn.e.com/ep.mp3?token=a&utm_source=x", type="audio/mpeg"),
            Enclosure(url="javascript:alert(1)", type="audio/mpeg"),
            Enclosure(url="ftp://e.com/x.mp3"),
            Enclosure(url="https://cdn.e.com/b.ogg", length=-1),
        )
    )
    assert item.enclosures == (
        Enclosure(
            url="https://cdn.e.com/ep.mp3?token=a&utm_source=x", type="audio/mpeg", length=10
        ),
        Enclosure(url="https://cdn.e.com/b.ogg", type=None, length=None),
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "en"),
        (" en_US ", "en-US"),
        ("de-DE", "de-DE"),
        ("", None),
        ("<b>x</b>", None),
        (None, None),
    ],
)
def test_language_tag(language: str | None, expected: str | None) -> None:
    assert normalize(language=language).language == expected


# --- normalize_items -------------------------------------------------------------


def test_duplicate_guids_get_unique_keys_and_nothing_is_dropped() -> None:
    first = parsed(guid="same", link=None, content_html="<p>one</p>")
    second = parsed(guid="same", link=None, content_html="<p>two</p>")
    third = parsed(guid="same", link=None, content_html="<p>two</p>")
    items = normalize_items([first, second, third], source_name="outlet", now=NOW)
    assert len(items) == 3
    assert all(item.entry_key.startswith("guid:same#") for item in items)
    assert items[0].entry_key == f"guid:same#{items[0].content_hash[:16]}"
    assert len({item.entry_key for item in items}) == 3
    assert items[1].identity == f"src:outlet:{items[1].entry_key}"
    assert len({item.identity for item in items}) == 3


def test_keys_of_shared_guids_stay_with_their_article_when_the_feed_reorders() -> None:
    a = parsed(guid="same", link="https://example.com/a", title="A")
    b = parsed(guid="same", link="https://example.com/b", title="B")
    c = parsed(guid="same", link="https://example.com/c", title="C")
    before = {i.title: i.entry_key for i in normalize_items([a, b], source_name="o", now=NOW)}
    after = {i.title: i.entry_key for i in normalize_items([c, a, b], source_name="o", now=NOW)}
    assert after["A"] == before["A"]
    assert after["B"] == before["B"]
    assert len(set(after.values())) == 3


def test_items_without_guid_or_link_get_unique_hash_keys() -> None:
    twin = parsed(guid=None, link=None)
    items = normalize_items([twin, twin], source_name="outlet", now=NOW)
    assert items[0].entry_key == f"hash:{items[0].content_hash}"
    assert items[0].entry_key != items[1].entry_key


def test_keys_are_stable_from_one_poll_to_the_next() -> None:
    batch = [parsed(guid="g", content_html=f"<p>{n}</p>") for n in range(3)]
    first = normalize_items(batch, source_name="s", now=NOW)
    again = normalize_items(batch, source_name="s", now=NOW + timedelta(hours=1))
    assert [i.entry_key for i in first] == [i.entry_key for i in again]


def test_real_feed_with_duplicate_guids_keys_every_item_uniquely() -> None:
    feed = parse_feed(
        (DATA / "scriptingNews.rss").read_bytes(),
        content_type=None,
        url="http://scripting.com/rss.xml",
    )
    guids = [item.guid for item in feed.items]
    assert len(guids) - len(set(guids)) == 2  # the feed repeats two guids
    items = normalize_items(feed.items, source_name="scripting", now=NOW)
    assert len(items) == len(feed.items) == 50
    assert len({item.entry_key for item in items}) == 50


# --- hostile feeds from feedparser's sanitizer suite ------------------------------

SANITIZE_CASES = sorted((DATA / "sanitize").glob("*.xml"))


def test_the_hostile_cases_are_there() -> None:
    assert len(SANITIZE_CASES) == 100


@pytest.mark.parametrize("path", SANITIZE_CASES, ids=lambda path: path.name)
def test_no_active_content_survives_in_any_item_field(path: Path) -> None:
    feed = parse_feed(path.read_bytes(), content_type=None, url="https://feed.example/")
    items = normalize_items(feed.items, source_name="hostile", now=NOW)
    assert items, "each case carries one entry"
    for item in items:
        for markup in (item.content_html, item.summary_html):
            if markup is not None:
                assert unsafe_markup(markup) == []
        for text in item_strings(item):
            lowered = text.lower()
            assert "<script" not in lowered
            assert "onerror=" not in lowered
            assert "javascript:" not in lowered
            assert "<iframe" not in lowered


def test_markup_resolves_against_the_document_base_before_the_item_link() -> None:
    parsed = ParsedItem(
        guid="g",
        link="https://a.example/news/story.html",
        title="t",
        title_is_html=False,
        content_html='<img src="img.png">',
        summary_html=None,
        published=None,
        updated=None,
    )
    from_link = normalize_item(parsed, source_name="s", now=datetime.now(UTC))
    assert from_link.content_html == '<img src="https://a.example/news/img.png">'
    based = replace(parsed, base="https://a.example/feeds/rss.xml")
    from_base = normalize_item(based, source_name="s", now=datetime.now(UTC))
    assert from_base.content_html == '<img src="https://a.example/feeds/img.png">'


def test_the_lead_is_the_summary_as_text_else_the_content() -> None:
    summary = "<p>The <b>Bangladesh Nationalist Party</b> claims victory &amp; more.</p>"
    assert (
        normalize(summary_html=summary).lead
        == "The Bangladesh Nationalist Party claims victory & more."
    )
    assert normalize(content_html=summary, summary_html=None).lead.startswith("The Bangladesh")
    assert normalize(content_html=None, summary_html=None).lead == ""


def test_the_lead_is_cut_between_words_and_drops_a_wordpress_footer() -> None:
    long = "<p>" + "word " * 400 + "</p>"
    lead = normalize(summary_html=long).lead
    assert 390 <= len(lead) <= LEAD_CHARS and lead.endswith("word")
    footer = (
        "<p>Washington never wore wooden dentures.</p><p>The post Yes, George Washington "
        'led the Siege of Boston appeared first on <a href="https://www.boston.com">'
        "Boston.com</a>.</p>"
    )
    assert normalize(summary_html=footer).lead == "Washington never wore wooden dentures."


def test_categories_packed_into_one_are_split_when_the_source_says_so() -> None:
    packed = (Category(term="Politics, Latin America, United States", domain=None),)
    assert [c.term for c in normalize(categories=packed).categories] == [
        "Politics, Latin America, United States"
    ]
    split = normalize_item(
        parsed(categories=packed), source_name="mercopress", now=NOW, split_categories=","
    )
    assert [c.term for c in split.categories] == ["Politics", "Latin America", "United States"]
