"""Outlets' tags that look like running stories: candidates for series. Pure.

Outlets tag their articles with sections ("World"), subjects ("Politics and
Government"), places and people, CMS flags ("Uncategorized", "sponsorshipblock") and,
among them, running stories: "Russian Invasion of Ukraine (2022)", "Davos 2026",
"State of the Union address". A running story's tag recurs over days, but is not on
nearly every item of its outlet (that is a section or a flag), is not a bare number
(ABC numbers its items) and is not a place, a person or an organisation when the
outlet's taxonomy says so (the New York Times' ``nyt_geo``, ``nyt_per``, ``nyt_org``).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

from aggregator.process.series import SeriesRule, category_key
from aggregator.types import TagUse

MIN_ITEMS = 3
MIN_DAYS = 2
MAX_SHARE = 0.5  # of a source's items: a tag on more is a section or a flag
MIN_SOURCE_ITEMS = 4  # a source with fewer items says nothing about shares

# Tags content systems put on everything, or on nothing in particular.
NOISE_WORDS = frozenset(
    {"uncategorized", "uncategorised", "general", "news", "latest", "featured", "misc"}
)
NOISE_PHRASES = frozenset({"top stories", "breaking news", "news desk", "front page", "home page"})
# A machine's identifier rather than a name: lower-case, no spaces, joined by - or _.
_IDENTIFIER = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)+")
# The last part of a taxonomy URI that says the tag is a place, a person or a body.
_NOT_A_STORY_DOMAIN = re.compile(
    r"(?:^|[/#:_-])(?:nyt_)?(?:geo|per|org|people|persons?|places?|locations?|"
    r"organi[sz]ations?|companies|company)/?$",
    re.IGNORECASE,
)
_SLUG_RUN = re.compile(r"[^a-z0-9]+")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesSuggestion:
    slug: str
    title: str
    categories: tuple[tuple[str, str | None], ...]  # (term, domain) as outlets sent them
    outlets: tuple[tuple[str, int], ...]  # (source, items), most first
    items: int
    days: int
    first_seen: date
    last_seen: date
    dated: bool  # the tag names a year: an event ("Davos 2026"), not a subject

    def yaml(self) -> str:
        """A ready-to-paste entry of ``series:``."""
        lines = [
            f"- slug: {self.slug}",
            f"  title: {_quoted(self.title)}",
            "  match:",
            "    categories:",
        ]
        for term, domain in self.categories:
            if domain:
                lines.append(f"      - {{term: {_quoted(term)}, domain: {_quoted(domain)}}}")
            else:
                lines.append(f"      - {_quoted(term)}")
        return "\n".join(lines)


def is_noise(term: str) -> bool:
    """A tag that names nothing: a bare number, a content system's catch-all, or an
    identifier ("internal-open-access-from-nl", "homepage_regional_europe")."""
    text = " ".join(term.split())
    folded = text.casefold()
    return (
        not text
        or text.isdigit()
        or folded in NOISE_WORDS
        or folded in NOISE_PHRASES
        or bool(_IDENTIFIER.fullmatch(text))
    )


def names_no_story(domain: str | None) -> bool:
    """Whether the tag's taxonomy says it is a place, a person or an organisation."""
    return bool(domain) and bool(_NOT_A_STORY_DOMAIN.search(domain or ""))


def suggest_series(
    uses: Iterable[TagUse],
    items_per_source: Mapping[str, int],
    *,
    declared: Sequence[SeriesRule] = (),
    min_items: int = MIN_ITEMS,
    min_days: int = MIN_DAYS,
    max_share: float = MAX_SHARE,
) -> list[SeriesSuggestion]:
    """Tags that look like running stories, the most widely carried first; a tag is its
    words, whatever outlets carry it. Tags a declared series already takes are left out.

    Besides noise, a tag in lower case from an outlet that capitalises its tags is its
    content system's ("overnight", "sponsorshipblock"), and a tag page that is a
    section's front (the Guardian's ``.../sport/sport``) is a section."""
    uses = list(uses)
    capitalising = _capitalising_sources(uses)
    by_tag: dict[str, list[TagUse]] = defaultdict(list)
    for use in uses:
        if (
            is_noise(use.term)
            or names_no_story(use.domain)
            or _is_section_front(use.domain)
            or (use.source in capitalising and use.term == use.term.lower())
        ):
            continue
        by_tag[category_key(use.term)].append(use)
    suggestions = []
    for key, tagged in by_tag.items():
        items = {use.item: use.source for use in tagged}
        per_source = Counter(items.values())
        if any(
            items_per_source.get(source, 0) >= MIN_SOURCE_ITEMS
            and count > max_share * items_per_source[source]
            for source, count in per_source.items()
        ):
            continue
        days = {use.day for use in tagged}
        if len(items) < min_items or len(days) < min_days:
            continue
        categories = tuple(dict.fromkeys((use.term, use.domain) for use in tagged))
        if any(_declared(rule, categories) for rule in declared):
            continue
        title = Counter(use.term for use in tagged).most_common(1)[0][0]
        suggestions.append(
            SeriesSuggestion(
                slug=slug_of(key),
                title=title,
                categories=categories,
                outlets=tuple(per_source.most_common()),
                items=len(items),
                days=len(days),
                first_seen=min(days),
                last_seen=max(days),
                dated=bool(_YEAR.search(title)),
            )
        )
    suggestions.sort(key=lambda s: (-len(s.outlets), not s.dated, -s.items, s.slug))
    return _unique_slugs(suggestions)


def _capitalising_sources(uses: Sequence[TagUse]) -> set[str]:
    """Sources at least 80% of whose tags have a capital letter."""
    capitals: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for use in uses:
        total[use.source] += 1
        capitals[use.source] += use.term != use.term.lower()
    return {source for source, n in total.items() if capitals[source] >= 0.8 * n}


def _is_section_front(domain: str | None) -> bool:
    """A tag page whose path ends in the same word twice: a section's front page."""
    if not domain or "://" not in domain:
        return False
    parts = [p for p in domain.split("://", 1)[1].split("/")[1:] if p]
    return len(parts) >= 2 and parts[-1] == parts[-2]


def slug_of(text: str) -> str:
    slug = _SLUG_RUN.sub("-", text.casefold()).strip("-")[:64].strip("-")
    return slug or "series"


def _declared(rule: SeriesRule, categories: Iterable[tuple[str, str | None]]) -> bool:
    return any(cat.matches(category_key(t), d) for t, d in categories for cat in rule.categories)


def _unique_slugs(suggestions: list[SeriesSuggestion]) -> list[SeriesSuggestion]:
    seen: Counter[str] = Counter()
    unique = []
    for suggestion in suggestions:
        seen[suggestion.slug] += 1
        if seen[suggestion.slug] > 1:
            slug = f"{suggestion.slug[:60]}-{seen[suggestion.slug]}"
            suggestion = replace(suggestion, slug=slug)
        unique.append(suggestion)
    return unique


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
