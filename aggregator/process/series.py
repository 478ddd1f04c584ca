"""Series membership: a pure decision from an item and the configured rules.

A rule's signals are its categories (an outlet's tag, optionally of a given domain), its
keywords (whole words or phrases in the title or summary) and its regular expressions
(over the title). An item matches when it shows at least ``min_score`` of them and none
of the rule's ``exclude`` words; the match keeps the signals it saw, as its reason.
Which sources a rule listens to (``sources``, ``tags``) is the caller's to apply
(``SeriesRule.applies_to``): the item alone does not say who carried it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aggregator.process.sanitize import plain_text
from aggregator.types import Category, SeriesMembership

_SPACE_RE = re.compile(r"\s+")
# Outlets append a running count to a series tag: "Violence Erupts as Islamic State Rises (1881)".
_COUNT_SUFFIX_RE = re.compile(r"\s*\(\d+\)\s*$")
SUMMARY_FALLBACK_CHARS = 600
MAX_REASONS = 3  # signals kept as a match's reason


class SeriesText(Protocol):
    """What matching reads of an item (an ``Item``, or one read back from the store)."""

    @property
    def title(self) -> str: ...
    @property
    def summary_html(self) -> str | None: ...
    @property
    def content_html(self) -> str | None: ...
    @property
    def categories(self) -> tuple[Category, ...]: ...


@dataclass(frozen=True, slots=True)
class CategoryRule:
    term: str  # as configured, for the reason
    key: str  # compared with an item's category key
    domain: re.Pattern[str] | None  # None: any domain, or none

    def matches(self, key: str, domain: str | None) -> bool:
        if key != self.key:
            return False
        return self.domain is None or bool(self.domain.fullmatch(domain or ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesRule:
    slug: str
    categories: tuple[CategoryRule, ...] = ()
    keywords: tuple[str, ...] = ()
    keyword_pattern: re.Pattern[str] | None = None  # group n + 1 is keywords[n]
    regexes: tuple[re.Pattern[str], ...] = ()
    exclude: re.Pattern[str] | None = None
    sources: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    min_score: int = 1

    def applies_to(self, source: str, tags: Iterable[str]) -> bool:
        """Whether items this source carries are matched against the rule at all."""
        if not self.sources and not self.tags:
            return True
        return source in self.sources or not self.tags.isdisjoint(tags)


def compile_rule(
    slug: str,
    categories: Iterable[str | tuple[str, str | None]] = (),
    keywords: Sequence[str] = (),
    *,
    regexes: Sequence[str] = (),
    exclude: Sequence[str] = (),
    sources: Iterable[str] = (),
    tags: Iterable[str] = (),
    min_score: int = 1,
) -> SeriesRule:
    """Categories match exactly (case-insensitive, a trailing running count ignored),
    their domain by glob; keywords and exclusions as whole words or phrases; regular
    expressions anywhere in the title, case-insensitive."""
    # Longest first: at one position, the alternation takes the first phrase that fits.
    words = tuple(sorted(dict.fromkeys(w.strip() for w in keywords if w.strip()), key=_longest))
    return SeriesRule(
        slug=slug,
        categories=tuple(_category_rule(c) for c in categories),
        keywords=words,
        keyword_pattern=_phrases(words, capture=True),
        regexes=tuple(re.compile(r, re.IGNORECASE) for r in regexes),
        exclude=_phrases(sorted((w.strip() for w in exclude if w.strip()), key=_longest)),
        sources=frozenset(sources),
        tags=frozenset(tags),
        min_score=min_score,
    )


def series_for(item: SeriesText, rules: Sequence[SeriesRule]) -> tuple[SeriesMembership, ...]:
    """Every series the item belongs to, in rule order, each with the signals seen."""
    if not rules:
        return ()
    categories = [(category_key(c.term), c.domain) for c in item.categories]
    text: str | None = None
    matched = []
    for rule in rules:
        signals = [
            f"category {cat.term!r}"
            for cat in rule.categories
            if any(cat.matches(key, domain) for key, domain in categories)
        ]
        if rule.keyword_pattern is not None or rule.exclude is not None:
            text = matchable_text(item) if text is None else text
        if rule.keyword_pattern is not None:
            found = {m.lastindex or 0 for m in rule.keyword_pattern.finditer(text or "")}
            signals += [f"keyword {rule.keywords[i - 1]!r}" for i in sorted(found) if i]
        signals += [f"title /{r.pattern}/" for r in rule.regexes if r.search(item.title)]
        if len(signals) < rule.min_score:
            continue
        if rule.exclude is not None and rule.exclude.search(text or ""):
            continue
        matched.append(SeriesMembership(slug=rule.slug, reason=", ".join(signals[:MAX_REASONS])))
    return tuple(matched)


def matchable_text(item: SeriesText) -> str:
    """Title and summary as plain text (the content's opening when there is no summary)."""
    if item.summary_html is not None:
        body = plain_text(item.summary_html, is_html=True)
    else:
        opening = (item.content_html or "")[: SUMMARY_FALLBACK_CHARS * 4]
        body = plain_text(opening, is_html=True)[:SUMMARY_FALLBACK_CHARS]
    return f"{item.title}\n{body}"


def category_key(term: str) -> str:
    """How categories compare: case and spacing folded, a running count dropped."""
    return _SPACE_RE.sub(" ", _COUNT_SUFFIX_RE.sub("", term)).strip().casefold()


def _category_rule(category: str | tuple[str, str | None]) -> CategoryRule:
    term, domain = (category, None) if isinstance(category, str) else category
    pattern = re.compile(fnmatch.translate(domain), re.IGNORECASE) if domain else None
    return CategoryRule(term=term, key=category_key(term), domain=pattern)


def _longest(phrase: str) -> int:
    return -len(phrase)


def _phrases(phrases: Sequence[str], *, capture: bool = False) -> re.Pattern[str] | None:
    """Whole words or phrases, any whitespace between words; with ``capture`` the
    phrase found is group n + 1 for ``phrases[n]``."""
    if not phrases:
        return None
    bodies = (r"\s+".join(re.escape(part) for part in phrase.split()) for phrase in phrases)
    alternatives = "|".join(f"({body})" if capture else body for body in bodies)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
