"""Series membership: a pure decision from an item and the configured rules."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aggregator.process.sanitize import plain_text
from aggregator.types import Item

_SPACE_RE = re.compile(r"\s+")
# Outlets append a running count to a series tag: "Violence Erupts as Islamic State Rises (1881)".
_COUNT_SUFFIX_RE = re.compile(r"\s*\(\d+\)\s*$")
SUMMARY_FALLBACK_CHARS = 600


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesRule:
    slug: str
    categories: frozenset[str]
    keywords: re.Pattern[str] | None


def compile_rule(slug: str, categories: Iterable[str], keywords: Sequence[str]) -> SeriesRule:
    """Categories match exactly (case-insensitive); keywords as whole words or phrases."""
    pattern = None
    words = [w.strip() for w in keywords if w.strip()]
    if words:
        alternatives = "|".join(
            r"\s+".join(re.escape(part) for part in word.split())
            for word in sorted(words, key=len, reverse=True)
        )
        pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
    return SeriesRule(
        slug=slug,
        categories=frozenset(_category_key(c) for c in categories if c.strip()),
        keywords=pattern,
    )


def series_for(item: Item, rules: Sequence[SeriesRule]) -> tuple[str, ...]:
    """The slugs of every series the item belongs to, in rule order."""
    if not rules:
        return ()
    categories = {_category_key(c.term) for c in item.categories}
    text = None
    matched = []
    for rule in rules:
        if rule.categories & categories:
            matched.append(rule.slug)
            continue
        if rule.keywords is None:
            continue
        if text is None:
            text = matchable_text(item)
        if rule.keywords.search(text):
            matched.append(rule.slug)
    return tuple(matched)


def matchable_text(item: Item) -> str:
    """Title and summary as plain text (the content's opening when there is no summary)."""
    if item.summary_html is not None:
        body = plain_text(item.summary_html, is_html=True)
    else:
        opening = (item.content_html or "")[: SUMMARY_FALLBACK_CHARS * 4]
        body = plain_text(opening, is_html=True)[:SUMMARY_FALLBACK_CHARS]
    return f"{item.title}\n{body}"


def _category_key(term: str) -> str:
    return _SPACE_RE.sub(" ", _COUNT_SUFFIX_RE.sub("", term)).strip().casefold()
