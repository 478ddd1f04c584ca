"""parse_feed: bytes + content type -> ParsedFeed, or ParseError and nothing else."""

from __future__ import annotations

import codecs
import gzip
import json
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator.exceptions import ParseError
from aggregator.parse import parse_feed
from aggregator.parse.json_feed import parse_rfc3339
from aggregator.types import Category, Enclosure, ParsedFeed

DATA = Path(__file__).parent / "data" / "parse"
URL = "https://news.example.com/feeds/main.xml"
ATTACK_MEMORY_LIMIT = 16 * 1024 * 1024  # unguarded, quadratic.xml alone takes ~300 MB


def parse(content: bytes, content_type: str | None = None, url: str = URL) -> ParsedFeed:
    return parse_feed(content, content_type=content_type, url=url)


def rss(items: str, channel: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>Example</title><link>/</link>{channel}{items}</channel></rss>"
    ).encode()


# --- not a feed ------------------------------------------------------------------


@pytest.mark.parametrize(
    "content", [b"", b"   \n\t", codecs.BOM_UTF8, codecs.BOM_UTF8 + b"\r\n", b"\x00\x00"]
)
def test_empty_body_is_a_parse_error(content: bytes) -> None:
    with pytest.raises(ParseError, match="empty"):
        parse(content)


@pytest.mark.parametrize(
    "name",
    ["sqlite-releases.html", "node-feedparser-notafeed.html", "rss-parser-html-document-moved.rss"],
)
def test_html_page_is_a_parse_error(name: str) -> None:
    with pytest.raises(ParseError, match="not a feed: the document is an HTML page"):
        parse((DATA / name).read_bytes())


def test_html_content_type_names_the_page_in_the_message() -> None:
    with pytest.raises(ParseError, match="HTML page"):
        parse(b"<p>Moved</p>", content_type="text/html; charset=utf-8")


@pytest.mark.parametrize(
    "content",
    [
        b'<?xml version="1.0"?><note><to>Ana</to></note>',
        b"just some text",
        b'<?xml version="1.0"?><opml version="2.0"><body><outline text="x"/></body></opml>',
    ],
)
def test_document_without_a_feed_version_is_a_parse_error(content: bytes) -> None:
    with pytest.raises(ParseError, match="not a feed"):
        parse(content)


def test_bytes_that_look_like_a_path_are_never_opened(tmp_path: Path) -> None:
    secret = tmp_path / "feed.xml"
    secret.write_bytes(rss("<item><title>secret</title></item>"))
    with pytest.raises(ParseError):
        parse(str(secret).encode())


def test_a_library_failure_is_translated_to_parse_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("feedparser.parse", explode)
    with pytest.raises(ParseError, match="boom") as caught:
        parse(b"<!DOCTYPE rss>" + rss(""))  # a DOCTYPE: not for the lxml path
    assert isinstance(caught.value.__cause__, RuntimeError)


# --- RSS and Atom mapping ---------------------------------------------------------


def test_rss_item_fields() -> None:
    feed = parse(
        rss(
            """<item>
              <title>Tom &amp; Jerry</title>
              <link>/2024/05/tom-jerry</link>
              <guid isPermaLink="false">post-42</guid>
              <description>&lt;p&gt;Short&lt;/p&gt;</description>
              <content:encoded><![CDATA[<p>Long <a href="/more">more</a></p>]]></content:encoded>
              <pubDate>Wed, 01 May 2024 10:30:00 +0200</pubDate>
              <author>jane@example.com (Jane Doe)</author>
              <category domain="https://news.example.com/tags/cats">Cats</category>
              <category>Dogs</category>
              <enclosure url="/media/ep1.mp3" type="audio/mpeg" length="12345"/>
              <enclosure url="https://cdn.example.com/ep1.ogg" type="audio/ogg" length="about 3MB"/>
            </item>""",
            channel="<language>en-GB</language>",
        )
    )
    assert feed.version == "rss20"
    assert feed.title == "Example"
    assert feed.link == "https://news.example.com/"
    assert feed.language == "en-GB"
    assert feed.warning is None
    (item,) = feed.items
    assert item.guid == "post-42"
    assert item.link == "https://news.example.com/2024/05/tom-jerry"
    assert item.title == "Tom & Jerry"
    assert item.title_is_html is False
    # Markup stays as sent; process resolves its relative URLs against item.base.
    assert item.content_html == '<p>Long <a href="/more">more</a></p>'
    assert item.base == URL
    assert item.summary_html == "<p>Short</p>"
    assert item.published == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    assert item.updated is None
    assert item.authors == ("Jane Doe",)
    assert item.categories == (
        Category(term="Cats", domain="https://news.example.com/tags/cats"),
        Category(term="Dogs"),
    )
    assert item.enclosures == (
        Enclosure(url="https://news.example.com/media/ep1.mp3", type="audio/mpeg", length=12345),
        Enclosure(url="https://cdn.example.com/ep1.ogg", type="audio/ogg", length=None),
    )
    assert item.language == "en-GB"


def test_author_falls_back_to_email() -> None:
    feed = parse(rss("<item><title>t</title><author>only@example.com</author></item>"))
    assert feed.items[0].authors == ("only@example.com",)


def test_atom_entry_fields() -> None:
    content = b"""<?xml version="1.0" encoding="utf-8"?>
    <feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr">
      <title>Atom example</title>
      <link href="https://atom.example/"/>
      <id>urn:uuid:feed</id>
      <updated>2024-05-02T00:00:00Z</updated>
      <entry>
        <id>urn:uuid:entry-1</id>
        <title type="html">&lt;b&gt;Bold&lt;/b&gt; news</title>
        <link rel="alternate" href="entries/1"/>
        <link rel="enclosure" href="media/1.mp4" type="video/mp4" length="99"/>
        <published>2024-05-01T10:00:00+02:00</published>
        <updated>2024-05-01T12:00:00Z</updated>
        <author><name>Jean</name><email>jean@example.com</email></author>
        <category term="politique" scheme="https://atom.example/tags" label="Politique"/>
        <summary type="text">1 &lt; 2 &amp; 3</summary>
        <content type="xhtml" xml:lang="de"><div xmlns="http://www.w3.org/1999/xhtml"><p>Hallo</p></div></content>
      </entry>
    </feed>"""
    feed = parse(content, content_type="application/atom+xml", url="https://atom.example/feed.atom")
    assert feed.version == "atom10"
    (item,) = feed.items
    assert item.guid == "urn:uuid:entry-1"
    assert item.link == "https://atom.example/entries/1"
    assert item.title == "<b>Bold</b> news"
    assert item.title_is_html is True
    assert item.summary_html == "1 &lt; 2 &amp; 3"
    assert item.content_html is not None and "<p>Hallo</p>" in item.content_html
    assert item.published == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert item.updated == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert item.authors == ("Jean",)
    assert item.categories == (
        Category(term="politique", domain="https://atom.example/tags", label="Politique"),
    )
    assert item.enclosures == (
        Enclosure(url="https://atom.example/media/1.mp4", type="video/mp4", length=99),
    )
    assert item.language == "de"


def test_plain_text_content_is_escaped() -> None:
    content = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
      <entry><id>1</id><title>t</title>
      <content type="text">if a &lt;b&gt; then &lt;script&gt;</content></entry></feed>"""
    (item,) = parse(content).items
    assert item.content_html == "if a &lt;b&gt; then &lt;script&gt;"


@pytest.mark.parametrize(
    "date",
    [
        "not a date",
        "0000-01-01T00:00:00Z",
        "Mon, 31 Dec 9999 23:00:00 -0500",  # year 10000 in UTC
        "9999-12-31T23:59:60Z",
    ],
)
def test_invalid_or_out_of_range_dates_are_none(date: str) -> None:
    content = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><id>1</id>'
        f"<title>t</title><published>{date}</published><updated>{date}</updated></entry></feed>"
    ).encode()
    (item,) = parse(content).items
    assert item.published is None
    assert item.updated is None


def test_bozo_feed_with_items_yields_them_with_a_warning() -> None:
    content = rss(
        "<item><title>First</title><guid>1</guid></item>"
        "<item><title>Fish & Chips</title><guid>2</guid></item>"
    )
    feed = parse(content)
    assert feed.warning is not None and "not well-formed" in feed.warning
    assert [item.title for item in feed.items] == ["First", "Fish & Chips"]


def test_braingle_item_with_its_guid_repeated() -> None:
    feed = parse((DATA / "braingle-brainteasers-feedburner.xml").read_bytes())
    (item,) = feed.items
    assert item.guid == "http://www.braingle.com/50366.html"


def test_relative_links_resolve_against_the_feed_url() -> None:
    feed = parse(
        (DATA / "feed-extractor-rss-feed-miss-base-url.xml").read_bytes(),
        url="https://huggingface.co/blog/feed.xml",
    )
    assert len(feed.items) == 175
    assert feed.link == "https://huggingface.co/blog"
    assert feed.items[0].link == "https://huggingface.co/blog/intro-graphml"
    assert all(item.link and item.link.startswith("https://") for item in feed.items)
    assert {item.base for item in feed.items} == {"https://huggingface.co/blog/feed.xml"}


def test_xml_base_is_the_base_of_an_entry_markup() -> None:
    feed = parse(
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://a.example/blog/">'
        b"<title>t</title><entry><id>urn:x:1</id><title>x</title>"
        b'<content type="html" xml:base="posts/">&lt;img src="p.png"&gt;</content></entry></feed>'
    )
    (item,) = feed.items
    assert item.content_html == '<img src="p.png">'
    assert item.base == "https://a.example/blog/posts/"


# --- encodings ---------------------------------------------------------------------


def test_windows_1251_decodes_to_cyrillic() -> None:
    feed = parse((DATA / "oren-ru-windows1251.xml").read_bytes())
    assert feed.title == "Новости Оренбурга и области / Раздел Новости"
    assert feed.items[0].title == "В Бузулуке главные стройплощадки – детсад и Ледовый дворец"


def test_gzip_body_decompressed_parses_like_the_plain_file() -> None:
    plain = parse((DATA / "oren-ru-windows1251.xml").read_bytes())
    unzipped = parse(gzip.decompress((DATA / "oren-ru-windows1251.xml.gz").read_bytes()))
    assert unzipped == plain


def test_koi8_r_decodes_to_cyrillic() -> None:
    feed = parse((DATA / "koi8r-sample.xml").read_bytes())
    assert [item.title for item in feed.items] == ["Первая новость", "Вторая новость"]


@pytest.mark.parametrize("name", ["simplepie-feed-utf16le.xml", "simplepie-feed-utf16be.xml"])
def test_utf16_without_bom_or_declaration_decodes(name: str) -> None:
    feed = parse((DATA / name).read_bytes())
    assert feed.title == "Test feed"
    assert feed.items[0].title == "Test feed title 1"


@pytest.mark.parametrize(
    ("codec", "bom"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-32-le", codecs.BOM_UTF32_LE),
        ("utf-32-be", codecs.BOM_UTF32_BE),
    ],
)
def test_wide_encodings_with_bom_and_declaration_decode(codec: str, bom: bytes) -> None:
    text = rss("<item><title>Ärger über Œuvre – 東京</title></item>").decode()
    content = bom + text.replace('encoding="utf-8"', 'encoding="utf-16"').encode(codec)
    feed = parse(content, content_type="application/rss+xml; charset=utf-16")
    assert feed.items[0].title == "Ärger über Œuvre – 東京"


def test_utf8_document_that_declares_utf16_still_decodes() -> None:
    content = rss("<item><title>Café</title></item>").replace(
        b'encoding="utf-8"', b'encoding="utf-16"'
    )
    assert parse(content).items[0].title == "Café"


def test_charset_in_content_type_wins_over_the_declaration() -> None:
    content = rss("<item><title>Café</title></item>").decode().encode("latin-1")
    feed = parse(content, content_type='text/xml; charset="ISO-8859-1"')
    assert feed.items[0].title == "Café"


# --- entity attacks --------------------------------------------------------------

ATTACKS = sorted((DATA / "xml-attacks").glob("*.xml"))


def parse_measuring_memory(content: bytes) -> tuple[ParsedFeed | None, int]:
    """The feed (None on ParseError) and the peak of memory Python allocated meanwhile."""
    tracemalloc.start()
    try:
        try:
            feed: ParsedFeed | None = parse(content)
        except ParseError:
            feed = None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return feed, peak


def test_the_attack_files_are_there() -> None:
    assert len(ATTACKS) == 8


@pytest.mark.parametrize("path", ATTACKS, ids=lambda path: path.name)
def test_entity_attacks_are_defused_with_bounded_memory(path: Path) -> None:
    feed, peak = parse_measuring_memory(path.read_bytes())
    assert peak < ATTACK_MEMORY_LIMIT
    if feed is not None:
        assert "1234567890" not in repr(feed)


def test_internal_entities_are_not_expanded() -> None:
    # Small enough that expat's own amplification guard would let it through.
    value = "B" * 50
    content = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "{value}"> <!-- ] --> '
        '<!ENTITY b "x]y">]>'
        f'<rss version="2.0"><channel><title>t</title><item><title>{"&a;" * 20}</title>'
        '<guid isPermaLink="false">g</guid></item></channel></rss>'
    ).encode()
    feed = parse(content)
    (item,) = feed.items
    assert item.guid == "g"
    assert item.title is not None and "BBBB" not in item.title


_BIG_ENTITY = b'<!DOCTYPE rss [<!ENTITY a "' + b"B" * 100_000 + b'">]>'
_MANY_REFERENCES = (
    b"<channel><title>t</title><item><title>" + b"&a;" * 1000 + b"</title></item></channel>"
)


@pytest.mark.parametrize(
    "content",
    [
        b"<!-- " + _BIG_ENTITY + b'<rss version="2.0">' + _MANY_REFERENCES + b"</rss>",
        b"<?pi " + _BIG_ENTITY + b'<rss version="2.0">' + _MANY_REFERENCES + b"</rss>",
        b'<rss version="2.0">' + _BIG_ENTITY + _MANY_REFERENCES + b"</rss>",
        _BIG_ENTITY.replace(b"DOCTYPE", b"doctype")
        + b'<rss version="2.0">'
        + _MANY_REFERENCES
        + b"</rss>",
    ],
    ids=["in-unclosed-comment", "in-unclosed-pi", "after-the-root", "lower-case-doctype"],
)
def test_entities_declared_outside_the_prolog_are_not_expanded_either(content: bytes) -> None:
    feed, peak = parse_measuring_memory(content)
    assert peak < ATTACK_MEMORY_LIMIT
    titles = [item.title or "" for item in feed.items] if feed else []
    assert all("BBBB" not in title for title in titles)


def test_external_entity_is_not_resolved() -> None:
    feed = parse((DATA / "xml-attacks" / "laminas-xxe-atom10.xml").read_bytes())
    assert feed.version == "atom10"
    assert feed.title is not None and "XXE_URI" not in feed.title


def test_doctype_without_subset_is_kept() -> None:
    content = (
        b'<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"'
        b' "http://my.netscape.com/publish/formats/rss-0.91.dtd">'
        b'<rss version="0.91"><channel><title>t</title>'
        b"<item><title>i</title></item></channel></rss>"
    )
    feed = parse(content)
    assert feed.version == "rss091u"
    assert feed.warning is None
    assert feed.items[0].title == "i"


@pytest.mark.parametrize(
    "content",
    [
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "never closed>]><rss/>',
        b"<!DOCTYPE rss [<!ENTITY a 'x'>",
        b"<!DOCTYPE rss",
    ],
)
def test_unclosed_doctype_is_a_parse_error(content: bytes) -> None:
    with pytest.raises(ParseError, match="DOCTYPE"):
        parse(content)


def test_feed_wrapped_in_an_xhtml_page_is_still_read() -> None:
    feed = parse((DATA / "avians-blog-duplicate-content.atom").read_bytes())
    assert feed.version == "atom10"
    assert len(feed.items) == 10


# --- JSON Feed -----------------------------------------------------------------------


def test_json_feed_fields() -> None:
    content = (DATA / "jsonfeed-full.json").read_bytes()
    feed = parse(content, "application/feed+json", url="https://example.org/feed.json")
    assert feed.version == "json11"
    assert feed.title == "My Example Feed"
    assert feed.link == "https://example.org/"
    assert feed.language == "en"
    first, second = feed.items
    assert first.guid == "2"
    assert first.link == "https://example.org/second-item"
    assert first.title == "Title"
    assert first.content_html == 'Content with <a href="http://example.com/">link</a>'
    assert first.summary_html == "A summary"
    assert first.published == datetime(2020, 1, 2, 21, 0, tzinfo=UTC)
    assert first.updated == datetime(2020, 1, 4, 0, 0, tzinfo=UTC)
    assert first.authors == ("joe@example.com",)
    assert first.enclosures == (
        Enclosure(url="http://example.com/downloads/file.m4a", type="audio/x-m4a", length=12345678),
        Enclosure(url="http://example.com/downloads/another.mp3"),
    )
    assert first.language == "de"
    assert second.authors == ("Jane",)
    assert second.language == "en"
    assert second.published == datetime(2020, 1, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "text/plain", "application/octet-stream"]
)
def test_json_feed_is_sniffed_whatever_the_content_type(content_type: str | None) -> None:
    content = (DATA / "jsonfeed-full.json").read_bytes()
    assert parse(content, content_type).version == "json11"
    assert parse(codecs.BOM_UTF8 + content, content_type).version == "json11"


def test_json_feed_text_fields_are_escaped_and_items_inherit_feed_authors() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1",
        "title": "T",
        "author": {"name": "Feed Author"},
        "items": [{"id": 7, "content_text": "a < b & <script>", "tags": ["x", 3, "y"]}],
    }
    (item,) = parse(json.dumps(document).encode()).items
    assert item.guid == "7"
    assert item.content_html == "a &lt; b &amp; &lt;script&gt;"
    assert item.authors == ("Feed Author",)
    assert item.categories == (Category(term="x"), Category(term="y"))


def test_json_feed_relative_urls_resolve_against_home_page_url() -> None:
    content = (DATA / "feed-extractor-json-feed-miss-base-url.json").read_bytes()
    feed = parse(content, "application/feed+json", url="https://jsonfeed.micro.blog/feed.json")
    assert feed.link == "https://jsonfeed.micro.blog/"
    assert [item.link for item in feed.items] == [
        "https://jsonfeed.micro.blog/2020/08/07/json-feed-version.html",
        "https://jsonfeed.micro.blog/2017/05/17/announcing-json-feed.html",
    ]


def test_json_feed_with_wrong_types_keeps_what_it_can() -> None:
    feed = parse((DATA / "reader-invalid.json").read_bytes(), "application/feed+json")
    assert feed.title is None
    assert len(feed.items) == 8
    first = feed.items[0]
    assert first.title is None and first.content_html is None and first.published is None
    assert feed.items[1].guid == "3.1415"
    assert feed.items[4].authors == ("joe@example.com",)
    assert feed.items[7].authors == ("Jane",)
    assert [e.url for e in first.enclosures] == [
        "https://news.example.com/feeds/control",
        "https://news.example.com/feeds/float size",
        "https://news.example.com/feeds/non-number size",
    ]
    assert [e.length for e in first.enclosures] == [None, None, None]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ((DATA / "netnewswire-allthis-partial.json").read_bytes(), "invalid JSON"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "invalid JSON"),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', "no items"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', "no items"),
        (b'{"rss": {"channel": {}}}', "not a JSON Feed"),
        (b'{"version": "2.0", "items": []}', "not a JSON Feed"),
        (b"[1, 2]", "not an object"),
        (b"{" * 100_000, "invalid JSON"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": [], "x": 1e99999}', None),
    ],
)
def test_broken_json_feed(content: bytes, message: str | None) -> None:
    if message is None:
        assert parse(content, "application/json").items == ()
        return
    with pytest.raises(ParseError, match=message):
        parse(content, "application/feed+json")


def test_json_content_type_on_an_xml_body_reads_the_xml() -> None:
    assert parse(rss("<item><title>x</title></item>"), "application/json").version == "rss20"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020-01-02T14:00:00-07:00", datetime(2020, 1, 2, 21, 0, tzinfo=UTC)),
        ("2020-01-02T14:00:00Z", datetime(2020, 1, 2, 14, 0, tzinfo=UTC)),
        ("2020-01-02t14:00:00z", datetime(2020, 1, 2, 14, 0, tzinfo=UTC)),
        ("2020-01-04T01:00:00+0100", datetime(2020, 1, 4, 0, 0, tzinfo=UTC)),
        ("2020-01-02 14:00:00.123456+00:00", datetime(2020, 1, 2, 14, 0, 0, 123456, tzinfo=UTC)),
        ("2020-01-02T14:00:00", datetime(2020, 1, 2, 14, 0, tzinfo=UTC)),
        ("0001-01-01T00:00:00+01:00", None),
        ("9999-12-31T23:00:00-05:00", None),
        ("2020-02-30T00:00:00Z", None),
        ("not a date", None),
        ("", None),
        (20200102, None),
        (None, None),
    ],
)
def test_parse_rfc3339(value: object, expected: datetime | None) -> None:
    assert parse_rfc3339(value) == expected


# --- expectations kept beside the data ---------------------------------------------

EXPECTATIONS = sorted((DATA / "expected").glob("*.json"))


@pytest.mark.parametrize("expected_path", EXPECTATIONS, ids=lambda path: path.stem)
def test_real_feed_matches_its_expectation(expected_path: Path) -> None:
    expected: dict[str, Any] = json.loads(expected_path.read_text(encoding="utf-8"))
    content = (DATA / expected_path.stem).read_bytes()
    feed = parse(content, expected["content_type"], url=expected["url"])
    first = feed.items[0]
    actual = {
        "url": expected["url"],
        "content_type": expected["content_type"],
        "version": feed.version,
        "title": feed.title,
        "link": feed.link,
        "language": feed.language,
        "warning": feed.warning,
        "item_count": len(feed.items),
        "first_item": {
            "guid": first.guid,
            "link": first.link,
            "title": first.title,
            "title_is_html": first.title_is_html,
            "published": first.published.isoformat() if first.published else None,
            "updated": first.updated.isoformat() if first.updated else None,
            "authors": list(first.authors),
            "categories": [[c.term, c.domain, c.label] for c in first.categories],
            "enclosures": [[e.url, e.type, e.length] for e in first.enclosures],
            "language": first.language,
        },
    }
    assert actual == expected
