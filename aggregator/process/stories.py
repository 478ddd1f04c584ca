"""Stories: the same event reported by several outlets, assigned as items arrive.

An item's title (and summary, when there is one) becomes a bag of significant terms,
weighted by how rare each term is in the stream seen so far (IDF learned online) and
boosted where the outlet capitalised it (names, places). A story is the normalised sum
of its members' vectors. A new item joins the story whose vector it is most similar to,
among the stories that share a term with it and were active inside the time window, if
that similarity reaches the threshold; otherwise it starts a story of its own.

Nothing is re-clustered: each item costs a lookup of its terms in an inverted index of
recent stories, so the cost per item stays flat as the stream grows. ``choose_story`` is
the decision, a pure function; ``StoryIndex`` holds the state around it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

Vector = Mapping[str, float]


def _words(text: str) -> list[str]:
    return text.split()


_APOSTROPHES = "'\u2019"
_WORD = re.compile(rf"[^\W_]+(?:[{_APOSTROPHES}][^\W_]+)*")
# " - ", " | ", " : ", en and em dashes, bullets: how outlets attach their names.
_SEPARATORS = re.compile(r"\s+(?:[-\u2013\u2014|:\u2022\u00b7]|::)\s+")
_STOPWORDS = frozenset(
    _words(
        """a about above after again against all also am amid an and any are as at be because
        been before being below between both but by can could did do does doing down during
        each few for from further had has have having he her here hers him his how i if in
        into is it its itself just live me more most my new news no nor not now of off on
        once only or other our out over own photos report reports said same says she should
        so some such than that the their them then there these they this those through to
        too under until up update updates very via video vs was watch we were what when
        where which while who whom why will with would you your yours"""
    )
)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupingRules:
    threshold: float = 0.13  # cosine similarity an item needs to join a story
    window: timedelta = timedelta(hours=72)  # stories older than this take no new items
    capital_boost: float = 1.0  # weight of a term the outlet capitalised mid-title
    max_candidates: int = 200  # stories scored per item, the most recent first
    centroid_terms: int = 200  # a story is its strongest terms, not every word it ever saw


def terms(title: str, summary: str | None = None, *, outlet: str | None = None) -> Counter[str]:
    """An item's significant terms with their counts; capitalised ones marked with '^'.

    Segments of the title that only name the outlet ("... - Reuters") are dropped.
    """
    found: Counter[str] = Counter()
    for text in (strip_outlet_name(title, outlet), summary or ""):
        for position, match in enumerate(_WORD.finditer(unicodedata.normalize("NFKC", text))):
            word = match.group()
            term = _stem(word.casefold())
            if len(term) < 2 or term in _STOPWORDS or (term.isdigit() and len(term) < 4):
                continue
            capitalised = position > 0 and word[:1].isupper()
            found[f"^{term}" if capitalised else term] += 1
    return found


def strip_outlet_name(title: str, outlet: str | None) -> str:
    """The title without leading or trailing segments that are the outlet's name."""
    if not outlet:
        return title
    name = _comparable(outlet)
    segments = _SEPARATORS.split(title)
    while len(segments) > 1 and _comparable(segments[-1]) in (name, ""):
        segments.pop()
    while len(segments) > 1 and _comparable(segments[0]) in (name, ""):
        segments.pop(0)
    return " - ".join(segments)


def _comparable(text: str) -> str:
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def _stem(word: str) -> str:
    """A light English stemmer: possessives, plurals and -ing/-ed forms fold together."""
    if word[-2:] in ("'s", "\u2019s"):
        word = word[:-2]
    word = word.replace("\u2019", "'")
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ied"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("ed") and not word.endswith("eed"):
        return word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def weigh(counts: Counter[str], idf: Mapping[str, float], rules: GroupingRules) -> dict[str, float]:
    """TF-IDF weights of an item's terms, unit length; capitalised terms boosted."""
    vector: dict[str, float] = {}
    for marked, count in counts.items():
        capitalised = marked.startswith("^")
        term = marked[1:] if capitalised else marked
        weight = (1 + math.log(count)) * idf.get(term, 1.0)
        if capitalised:
            weight *= rules.capital_boost
        vector[term] = max(vector.get(term, 0.0), weight)
    return _unit(vector)


def _unit(vector: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(w * w for w in vector.values()))
    return {t: w / norm for t, w in vector.items()} if norm else {}


def _top(vector: Mapping[str, float], count: int) -> dict[str, float]:
    if len(vector) <= count:
        return dict(vector)
    strongest = sorted(vector.items(), key=lambda pair: (-pair[1], pair[0]))[:count]
    return dict(strongest)


def cosine(item: Vector, story: Vector) -> float:
    """Cosine of two unit vectors."""
    if len(item) > len(story):
        item, story = story, item
    return sum(weight * story.get(term, 0.0) for term, weight in item.items())


def choose_story(
    item: Vector, candidates: Iterable[tuple[int, Vector]], rules: GroupingRules
) -> int | None:
    """The candidate story the item belongs to, or None for a story of its own."""
    best, best_score = None, rules.threshold
    for story_id, centroid in candidates:
        score = cosine(item, centroid)
        if score >= best_score:
            best, best_score = story_id, score
    return best


@dataclass
class _Story:
    total: dict[str, float]  # sum of member vectors
    centroid: dict[str, float]
    last_seen: datetime
    size: int = 1


@dataclass
class StoryIndex:
    """Stories in memory, for one process's stream (the evaluation, and tests)."""

    rules: GroupingRules = field(default_factory=GroupingRules)
    _stories: dict[int, _Story] = field(default_factory=dict)
    _postings: defaultdict[str, dict[int, None]] = field(default_factory=lambda: defaultdict(dict))
    _document_frequency: Counter[str] = field(default_factory=Counter)
    _documents: int = 0

    def assign(self, counts: Counter[str], when: datetime) -> int:
        """The story id of an item with these terms, seen at ``when``."""
        plain = {term.lstrip("^") for term in counts}
        self._documents += 1
        self._document_frequency.update(plain)
        vector = weigh(counts, self._idf(plain), self.rules)
        story_id = choose_story(vector, self._candidates(vector, when), self.rules)
        if story_id is None:
            story_id = len(self._stories) + 1
            self._stories[story_id] = _Story(total=dict(vector), centroid=vector, last_seen=when)
        else:
            story = self._stories[story_id]
            for term, weight in vector.items():
                story.total[term] = story.total.get(term, 0.0) + weight
            story.centroid = _unit(_top(story.total, self.rules.centroid_terms))
            story.last_seen = max(story.last_seen, when)
            story.size += 1
        for term in vector:
            postings = self._postings[term]
            postings.pop(story_id, None)
            postings[story_id] = None  # most recent last
        return story_id

    def _idf(self, plain: Iterable[str]) -> dict[str, float]:
        documents = self._documents
        return {
            term: math.log((documents + 1) / (self._document_frequency[term] + 1)) + 1
            for term in plain
        }

    def _candidates(self, vector: Vector, when: datetime) -> Sequence[tuple[int, Vector]]:
        oldest = when - self.rules.window
        seen: dict[int, None] = {}
        for term in sorted(vector, key=vector.__getitem__, reverse=True):
            for story_id in reversed(self._postings.get(term, {})):
                if len(seen) >= self.rules.max_candidates:
                    break
                if self._stories[story_id].last_seen < oldest:
                    break  # postings run oldest to newest: the rest are older still
                seen[story_id] = None
        return [(story_id, self._stories[story_id].centroid) for story_id in seen]
