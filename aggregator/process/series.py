"""Series membership: a pure decision from an item and the configured rules.

A rule's signals are its categories (an outlet's tag, optionally of a given domain), its
keywords (whole words or phrases in the title or summary) and its regular expressions
(over the title). Each weighs ``STRONG`` but a keyword only the summary has, ``WEAK``. An
item matches when its signals weigh at least ``min_score`` (by default one strong or two
weak ones) and it has none of the rule's ``exclude`` words; the match keeps the signals it
saw, as its reason.
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
# What a signal weighs: an outlet's tag, a keyword in the headline or a regex over it
# says what the article is about; a keyword in the summary may be background ("...
# talks on Ukraine and Iran"), so one alone is not enough at the default min_score.
STRONG = 2
WEAK = 1
DEFAULT_MIN_SCORE = STRONG


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
    min_score: int = DEFAULT_MIN_SCORE

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
    min_score: int = DEFAULT_MIN_SCORE,
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
    summary: str | None = None
    matched = []
    for rule in rules:
        tags = [
            (STRONG, f"category {cat.term!r}")
            for cat in rule.categories
            if any(cat.matches(key, domain) for key, domain in categories)
        ]
        signals = list(tags)
        if rule.keyword_pattern is not None or rule.exclude is not None:
            summary = summary_text(item) if summary is None else summary
        if rule.keyword_pattern is not None:
            in_title = _found(rule.keyword_pattern, item.title)
            in_summary = _found(rule.keyword_pattern, summary or "") - in_title
            signals += [(STRONG, f"keyword {rule.keywords[i]!r}") for i in sorted(in_title)]
            signals += [
                (WEAK, f"keyword {rule.keywords[i]!r} in the summary") for i in sorted(in_summary)
            ]
        signals += [(STRONG, f"title /{r.pattern}/") for r in rule.regexes if r.search(item.title)]
        if sum(weight for weight, _ in signals) < rule.min_score:
            continue
        if rule.exclude is not None and (
            rule.exclude.search(item.title) or rule.exclude.search(summary or "")
        ):
            continue
        reason = ", ".join(signal for _, signal in signals[:MAX_REASONS])
        matched.append(SeriesMembership(slug=rule.slug, reason=reason, tagged=bool(tags)))
    return tuple(matched)


def _found(pattern: re.Pattern[str], text: str) -> set[int]:
    """Indexes of the keywords (group n + 1 is keyword n) found in the text."""
    return {m.lastindex - 1 for m in pattern.finditer(text) if m.lastindex}


def summary_text(item: SeriesText) -> str:
    """The summary as plain text (the content's opening when there is no summary)."""
    if item.summary_html is not None:
        return plain_text(item.summary_html, is_html=True)
    opening = (item.content_html or "")[: SUMMARY_FALLBACK_CHARS * 4]
    return plain_text(opening, is_html=True)[:SUMMARY_FALLBACK_CHARS]


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
