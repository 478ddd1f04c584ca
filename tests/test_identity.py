"""content_hash, entry_key and identity: the keys dedupe depends on."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.process.identity import MAX_KEY_PART, content_hash, entry_key, identity

HASH = "0" * 64


def test_content_hash_is_sha256_hex_and_stable() -> None:
    digest = content_hash("Title", "<p>Body</p>", None)
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert digest == content_hash("Title", "<p>Body</p>", None)
    # Pinned: a change of serialization would silently re-key every stored item.
    assert digest == hashlib.sha256(b'["Title","<p>Body</p>",null]').hexdigest()


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("a", "b", None), ("a", None, "b")),
        (("ab", None, None), ("a", "b", None)),
        (("a", "", None), ("a", None, None)),
        (("a", "b", "c"), ("a", "b", "C")),
    ],
)
def test_content_hash_tells_fields_apart(
    one: tuple[str | None, str | None, str | None],
    other: tuple[str | None, str | None, str | None],
) -> None:
    assert content_hash(*one) != content_hash(*other)


def test_content_hash_accepts_any_code_point() -> None:
    assert len(content_hash("\ud800", "\x00", "\U0001f600")) == 64


def test_entry_key_prefers_the_guid() -> None:
    assert (
        entry_key("  tag:example.com,2024:1 ", "http://e.com/a", HASH)
        == "guid:tag:example.com,2024:1"
    )


@pytest.mark.parametrize("guid", [None, "", "   \n"])
def test_entry_key_falls_back_to_the_canonical_link(guid: str | None) -> None:
    key = entry_key(guid, "HTTP://E.com:80/a?utm_source=x#top", HASH)
    assert key == "link:http://e.com/a"


def test_entry_key_falls_back_to_the_content_hash() -> None:
    assert entry_key(None, None, HASH) == f"hash:{HASH}"
    assert entry_key("", "javascript:alert(1)", HASH) == f"hash:{HASH}"


def test_long_guid_is_hashed_to_keep_keys_bounded() -> None:
    guid = "x" * (MAX_KEY_PART + 1)
    key = entry_key(guid, None, HASH)
    assert key == "guid-sha256:" + hashlib.sha256(guid.encode()).hexdigest()
    assert entry_key("x" * MAX_KEY_PART, None, HASH) == "guid:" + "x" * MAX_KEY_PART


def test_long_link_is_hashed_to_keep_keys_bounded() -> None:
    link = "https://e.com/" + "a" * 600
    assert entry_key(None, link, HASH).startswith("link-sha256:")
    assert identity("src", "guid:1", link) == entry_key(None, link, HASH)


def test_identity_is_the_canonical_link_across_sources() -> None:
    one = identity("outlet-a", "guid:1", "https://news.example/story?utm_source=a")
    other = identity("outlet-b", "guid:zz", "HTTPS://NEWS.example/story?fbclid=b#x")
    assert one == other == "link:https://news.example/story"


def test_identity_without_a_link_is_scoped_to_the_source() -> None:
    assert identity("outlet-a", "guid:1", None) == "src:outlet-a:guid:1"
    assert identity("outlet-a", "guid:1", "mailto:x@y") == "src:outlet-a:guid:1"
    assert identity("outlet-a", "guid:1", None) != identity("outlet-b", "guid:1", None)


@settings(max_examples=200, deadline=None)
@given(
    st.text(),
    st.one_of(st.none(), st.text(), st.text().map(lambda path: "https://e.com/" + path)),
    st.one_of(st.none(), st.text()),
)
def test_keys_are_bounded_and_deterministic(guid: str, link: str | None, title: str | None) -> None:
    digest = content_hash(title, None, None)
    key = entry_key(guid, link, digest)
    assert key == entry_key(guid, link, digest)
    assert len(key) <= len("guid-sha256:") + MAX_KEY_PART
    assert len(identity("s", key, link)) <= len("src:s:guid-sha256:") + MAX_KEY_PART
