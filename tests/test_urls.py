"""canonical_url and absolute_http_url: the link forms identity and display rely on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.process.urls import absolute_http_url, canonical_url, is_tracking_param


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "mailto:someone@example.com",
        "ftp://example.com/file",
        "file:///etc/passwd",
        "about:blank",
        "",
        "   ",
        "http://",
        "http:example.com",
        "https://[::1",
        "http://example.com:99999/",
        "http://example.com:port/",
        "/relative/without/base",
    ],
)
def test_anything_but_an_http_url_with_a_host_is_none(url: str) -> None:
    assert canonical_url(url) is None
    assert absolute_http_url(url) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM/Path", "http://example.com/Path"),
        ("https://example.com", "https://example.com/"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com:80", "http://example.com/"),
        ("http://example.com/a#section-2", "http://example.com/a"),
        ("http://example.com/a/../b/./c", "http://example.com/a/../b/./c"),
        ("  http://example.com/a \n", "http://example.com/a"),
        ("http://exa\x00mple.com/a\x7f\x85", "http://example.com/a"),
        ("http://user:Pw@Example.com/", "http://user:Pw@example.com/"),
        ("http://[2001:DB8::1]:8080/x", "http://[2001:db8::1]:8080/x"),
        ("http://example.com./a", "http://example.com/a"),
    ],
)
def test_canonical_form(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://e.com/a?utm_source=rss&utm_medium=feed&id=7", "http://e.com/a?id=7"),
        ("http://e.com/a?UTM_Campaign=x", "http://e.com/a"),
        ("http://e.com/a?b=2&fbclid=abc&a=1", "http://e.com/a?b=2&a=1"),
        ("http://e.com/a?gclid=1&dclid=2&msclkid=3&mc_cid=4&mc_eid=5", "http://e.com/a"),
        ("http://e.com/a?igshid=1&yclid=2&_ga=3&ref_src=twsrc", "http://e.com/a"),
        ("http://e.com/a?z=1&y=2&x=3", "http://e.com/a?z=1&y=2&x=3"),
        ("http://e.com/a?ref=home", "http://e.com/a?ref=home"),
        ("http://e.com/a?q=utm_source", "http://e.com/a?q=utm_source"),
        ("http://e.com/a?x=1&&y=2", "http://e.com/a?x=1&y=2"),
        ("http://e.com/a?", "http://e.com/a"),
    ],
)
def test_tracking_parameters_are_dropped_and_the_rest_keeps_its_order(
    url: str, expected: str
) -> None:
    assert canonical_url(url) == expected


def test_keep_query_keeps_tracking_parameters() -> None:
    url = "HTTP://CDN.example.com:80/ep.mp3?utm_source=feed&token=abc#t=10"
    assert (
        canonical_url(url, keep_query=True)
        == "http://cdn.example.com/ep.mp3?utm_source=feed&token=abc"
    )


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("/post/1", "https://blog.example.com/feed.xml", "https://blog.example.com/post/1"),
        ("post/1", "https://blog.example.com/feed/", "https://blog.example.com/feed/post/1"),
        ("//cdn.example.com/x", "https://blog.example.com/", "https://cdn.example.com/x"),
        ("https://other.example/x", "https://blog.example.com/", "https://other.example/x"),
        ("javascript:alert(1)", "https://blog.example.com/", None),
    ],
)
def test_relative_links_resolve_against_the_base(url: str, base: str, expected: str | None) -> None:
    assert canonical_url(url, base) == expected


def test_absolute_http_url_keeps_what_the_outlet_sent() -> None:
    url = "/a?utm_source=x#frag"
    assert absolute_http_url(url, "https://e.com/feed") == "https://e.com/a?utm_source=x#frag"


def test_tracking_param_names() -> None:
    assert is_tracking_param("utm_anything")
    assert is_tracking_param("FBCLID")
    assert not is_tracking_param("id")


_URL_CHARS = st.characters(codec="utf-8")
_URLISH = st.builds(
    lambda scheme, host, port, path, query, fragment: (
        f"{scheme}://{host}{port}{path}{query}{fragment}"
    ),
    st.sampled_from(["http", "HTTPS", "Http", "ftp", "javascript"]),
    st.text(alphabet=_URL_CHARS, max_size=20),
    st.sampled_from(["", ":80", ":443", ":8080", ":", ":0x"]),
    st.text(alphabet=_URL_CHARS, max_size=30),
    st.lists(
        st.tuples(
            st.sampled_from(["utm_source", "id", "fbclid", "", "q", "_ga"]),
            st.text(alphabet=_URL_CHARS, max_size=5),
        ),
        max_size=4,
    ).map(lambda pairs: "?" + "&".join(f"{k}={v}" for k, v in pairs) if pairs else ""),
    st.text(alphabet=_URL_CHARS, max_size=10).map(lambda t: "#" + t if t else ""),
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(_URLISH, st.text()))
def test_canonical_url_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    if once is not None:
        assert canonical_url(once) == once
        assert once.startswith(("http://", "https://"))
        assert "#" not in once


@settings(max_examples=300, deadline=None)
@given(st.one_of(_URLISH, st.text()), st.sampled_from(["https://e.com/a/b", "http://x.org"]))
def test_canonical_url_with_base_is_idempotent(url: str, base: str) -> None:
    once = canonical_url(url, base)
    if once is not None:
        assert canonical_url(once) == once
        assert canonical_url(once, base) == once
