"""Make untrusted markup safe to republish, or reduce it to plain text.

Every string an outlet sends passes through here: HTML fields through
``sanitize_html`` (an nh3 allowlist), everything else through ``plain_text``.
"""

from __future__ import annotations

import functools
import html
import re

import nh3

from aggregator.process.urls import absolute_http_url

_ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "article", "aside", "b", "bdi", "blockquote", "br",
        "caption", "center", "code", "col", "colgroup", "dd", "del", "details", "dfn",
        "div", "dl", "dt", "em", "figcaption", "figure", "footer", "h1", "h2", "h3",
        "h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol",
        "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "small", "span", "strike",
        "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
        "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
    }
)  # fmt: skip
# No style, class or id: they let a feed restyle or spoof the page that shows it.
# Only href and src are URL-checked by nh3, so no other URL-valued attribute is kept.
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "acronym": {"title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
    "time": {"datetime"},
    "del": {"datetime"},
    "ins": {"datetime"},
}
# Tags removed together with their text; everything else unknown is unwrapped.
_DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "noscript", "template", "iframe", "object", "embed", "applet"}
)
_URL_SCHEMES = frozenset({"http", "https", "mailto"})
_LINK_REL = "noopener noreferrer nofollow"

# C0 controls except tab/LF/CR, DEL, C1 controls, lone surrogates (unencodable),
# and the two non-characters XML forbids.
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# What an HTML parser reads as more than text (tags, references) or changes on the way
# through (CR to LF, a BOM dropped; nh3 writes U+00A0 as &nbsp;): text without any of
# these comes out of nh3 as it went in (tests/test_normalize.py, property test).
_MARKUP_OR_CHANGED = re.compile("[<>&\r\xa0\ufeff]")
_WHITESPACE_RUN = re.compile(r"\s+")
_TAG_LIKE = re.compile(r"<[A-Za-z/!?]")
_TAG_OPENERS = re.compile(r"<+(?=[A-Za-z/!?])")
_TO_TEXT = nh3.Cleaner(tags=set(), clean_content_tags=set(_DROPPED_WITH_CONTENT))
# Unescaping can reveal markup that was escaped (twice) in the source; a few
# rounds reach plain text for anything a publisher plausibly sends.
_MAX_TEXT_ROUNDS = 3
# nh3 output re-parsed is almost always stable; the rare rest settles in another round.
_MAX_SANITIZE_ROUNDS = 4


def sanitize_html(markup: str | None, base_url: str | None) -> str | None:
    """Safe HTML for republishing, relative links made absolute against ``base_url``.

    Returns None when nothing but whitespace is left.
    """
    if markup is None:
        return None
    cleaned = strip_control_chars(markup)
    if _MARKUP_OR_CHANGED.search(cleaned):
        cleaner = _html_cleaner(base_url) if _RELATIVE_URL.search(cleaned) else _ABSOLUTE_ONLY
        cleaned = _nh3_fixpoint(cleaned, cleaner)
    # else: text nh3 would give back unchanged (a plain-text summary, say), at a
    # hundredth of the cost of parsing it twice.
    return cleaned if cleaned.strip() else None


def _nh3_fixpoint(cleaned: str, cleaner: nh3.Cleaner) -> str:
    for _ in range(_MAX_SANITIZE_ROUNDS):
        again = cleaner.clean(cleaned)
        if "&#" in cleaned:  # only a numeric reference can put a control back
            again = strip_control_chars(again)
        if again == cleaned:
            break
        cleaned = again
    return cleaned


def plain_text(value: str | None, *, is_html: bool) -> str:
    """One line of plain text: markup stripped, entities decoded, whitespace collapsed.

    Text that is not declared HTML is still treated as HTML when it contains
    something that looks like a tag, because feeds mislabel their titles.
    """
    if value is None:
        return ""
    if not is_html and value.isascii() and value.isprintable() and "<" not in value:
        # The common case, nothing to decode or strip: only spaces to collapse.
        return " ".join(value.split()) if "  " in value else value.strip()
    text = strip_control_chars(value)
    for _ in range(_MAX_TEXT_ROUNDS):
        if not (is_html or _TAG_LIKE.search(text)):
            break
        text = strip_control_chars(html.unescape(_TO_TEXT.clean(text)))
        is_html = False
    # Whatever survived the rounds is escaped markup nested too deep to be text.
    text = _TAG_OPENERS.sub("", text)
    return _WHITESPACE_RUN.sub(" ", text).strip()


_SANITIZED_TAG = re.compile(r"<[^>]*(?:>|$)")  # a tag, or one cut off at the end


def text_of_sanitized(markup: str) -> str:
    """The text of markup ``sanitize_html`` made, cheaply: its tags are well-formed, so
    dropping them and decoding entities is enough (words only; spacing not kept)."""
    return html.unescape(_SANITIZED_TAG.sub(" ", markup)) if markup else ""


def strip_control_chars(text: str) -> str:
    """Remove NUL and the other control characters no feed should carry."""
    return _CONTROL_CHARS.sub("", text)


@functools.lru_cache(maxsize=64)
def _html_cleaner(base_url: str | None) -> nh3.Cleaner:
    """Building a cleaner costs as much as cleaning an article; items of one document
    share their base, so the few live bases keep theirs."""
    base = absolute_http_url(base_url) if base_url else None
    if base is not None:
        try:
            return _make_html_cleaner(("rewrite_with_base", base))
        except ValueError:  # a host Python accepts but nh3's URL parser does not
            pass
    return _make_html_cleaner("pass_through")


def _make_html_cleaner(url_relative: nh3.UrlRelative) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(_ALLOWED_TAGS),
        clean_content_tags=set(_DROPPED_WITH_CONTENT),
        attributes=_ALLOWED_ATTRIBUTES,
        link_rel=_LINK_REL,
        url_schemes=set(_URL_SCHEMES),
        url_relative=url_relative,
        strip_comments=True,
    )


# Building a cleaner costs as much as cleaning an article, and rebasing needs one per
# base URL: markup whose every href/src has a scheme shares this one instead.
_ABSOLUTE_ONLY = _make_html_cleaner("pass_through")
# An href or src whose value does not start with a scheme: relative, or suspicious
# enough to let the rebasing cleaner decide.
_RELATIVE_URL = re.compile(
    r"""(?:href|src)\s*=\s*["']?\s*(?![A-Za-z][A-Za-z0-9+.-]*:)""", re.IGNORECASE
)
