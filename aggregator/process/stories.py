"""Stories: the same event reported by several outlets, assigned as items arrive.

An item's title (and summary, when there is one) becomes a bag of significant terms,
weighted by how rare each term is in the stream seen so far (IDF learned online) and
boosted where the outlet capitalised it (names, places). A story is the normalised sum
of its members' vectors. A new item joins the story whose vector it is most similar to,
among the stories that share a term with it and were active inside the time window, if
that similarity reaches the threshold; otherwise it starts a story of its own.

Nothing is re-clustered: each item costs a lookup of its terms in an inverted index of
recent stories, so the cost per item stays flat as the stream grows. ``decide`` is the
decision, a pure function; ``StoryIndex`` holds the state around it. When an item is
close to two stories that are themselves close, they are merged: early reports of an
event often start apart, before its vocabulary settles.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import unicodedata
from collections import Counter, defaultdict, deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aggregator.process.moments import at_micros, micros, window_end, window_start

Vector = Mapping[str, float]


SUMMARY_WORDS = 30  # of a summary, its lead: what the event is, before the background


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
        too under until up update updates us very via video vs was watch we were what when
        where which while who whom why will with would you your yours"""
    )
    # The commonest words of the other languages outlets publish in (after folding:
    # apostrophes end a word, plurals lose their "s").
    + _words(
        """au aux avec ce ces cette dans de des du elle en est et il ils la le les leur lui
        mai ne ni nou on ou par pas pour qu que qui sa se son sont sur un une vou d l s c
        al con del el en es esta este la las lo los para pero po por que se su un una y
        der die da das dem den des ein eine einer im ist mit nach nicht sich und von vor
        wie zu zum zur auf au bei fur für
        il gli della delle di da dei nel nella per che una uno sono
        do dos da das em no na nos nas um uma com ao pelo pela
        i amb del dels els les pel per"""
    )
    # When, not what: dates in headlines ("All of Africa Today - February 17, 2026",
    # "Magazine solutions - February 27, 2026") are no event. "March" is also one.
    + _words(
        """january february april may june july august september october november december
        monday tuesday wednesday thursday friday saturday sunday today yesterday tomorrow"""
    )
)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupingRules:
    threshold: float = 0.13  # cosine similarity an item needs to join a story
    # ... a story of one report: two headlines alone need more in common than a headline
    # and a story whose several reports have settled its vocabulary.
    pair_threshold: float = 0.25
    # ... for a headline that names no one, to join a story that names someone: sharing
    # "strike", "kill" and "people" is not enough to be the same event. Also for one
    # whose names are all guessed and give part of the story's subject (see _bar).
    unnamed_threshold: float = 0.18
    # ... for a headline that names none of the story's subject (the names most of its
    # reports give) and names someone the story never did.
    subject_threshold: float = 0.3
    merge_threshold: float = 0.3  # similarity of two stories an item bridges, to merge them
    # terms an item must share with a story (one word is a topic, unless it is a name of
    # the story's subject: see _shares_enough)
    shared_terms: int = 2
    window: timedelta = timedelta(hours=72)  # stories older than this take no new items
    capital_boost: float = 1.0  # weight of a term the outlet capitalised mid-title
    max_candidates: int = 30  # stories scored per item, the most recent first
    centroid_terms: int = 200  # a story is its strongest terms, not every word it ever saw
    summary_weight: float = 0.4  # of a term only the summary has, against the headline's


def terms(title: str, summary: str | None = None, *, outlet: str | None = None) -> Counter[str]:
    """An item's significant terms with their counts. A word capitalised mid-headline is
    marked '^' (a name); one capitalised where capitals say nothing (the first word, a
    Title Case headline) is marked '?': ``StoryIndex`` takes it for a name when the
    stream usually capitalises it mid-headline. The first ``SUMMARY_WORDS`` words of the
    summary are marked '~': they weigh less than the headline's and name no one.

    Segments of the title that only name the outlet ("... - Reuters") are dropped.
    """
    found: Counter[str] = Counter()
    words = _WORD.findall(unicodedata.normalize("NFKC", strip_outlet_name(title, outlet)))
    marks_names = not _is_title_case(words)
    for position, word in enumerate(words):
        term = _term_of(word)
        if term:
            if not word[:1].isupper():
                found[term] += 1
            elif marks_names and position > 0:
                found["^" + term] += 1
            else:  # a capital at the start, or in Title Case: a name or not
                found["?" + term] += 1
    if summary:
        lead = _WORD.findall(unicodedata.normalize("NFKC", summary))
        for word in lead[:SUMMARY_WORDS]:
            term = _term_of(word)
            if term:
                found["~" + term] += 1
    return found


# A window's vocabulary is some tens of thousands of words; each remembered costs about
# 250 bytes (the word, its term, the cache's own node), so this stays near 15 MB.
@functools.lru_cache(maxsize=60_000)
def _term_of(word: str) -> str:
    """The term a word counts as ("" for a stopword, a letter, a short number).
    Remembered: stemming every word of every headline again was most of the cost of
    putting a window's stories back at start."""
    term = _stem(word.casefold())
    if len(term) < 2 or term in _STOPWORDS or (term.isdigit() and not _is_event_number(term)):
        return ""
    return sys.intern(term)


def _is_event_number(digits: str) -> bool:
    """Four digits or more (a flight's number), not a year of 1900-2099: a year, like a
    day of the month or a small count, says when or how many, not what."""
    return len(digits) >= 4 and not (len(digits) == 4 and digits[:2] in ("19", "20"))


def _is_title_case(words: list[str]) -> bool:
    """Most of the longer words after the first capitalised ("Malaria Claims One As
    Cases Rise in North West District"): there, a capital does not mark a name."""
    longer = capitalised = 0
    for word in words[1:]:
        if len(word) >= 4 and not word.isdigit():
            longer += 1
            capitalised += word[:1].isupper()
    return longer >= 3 and capitalised >= 0.7 * longer


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


def weigh(
    counts: Counter[str],
    idf: Mapping[str, float],
    rules: GroupingRules,
    plain: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """TF-IDF weights of an item's terms, unit length; capitalised terms boosted."""
    return _unit(_weights(counts, idf, rules, plain))


def _weights(
    counts: Counter[str],
    idf: Mapping[str, float],
    rules: GroupingRules,
    plain: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """TF-IDF weights, capitalised terms boosted, summary terms lowered; a term of both
    the headline and the summary weighs as the headline's. ``plain``: each marked term
    without its mark, when the caller has it."""
    vector: dict[str, float] = {}
    for marked, count in counts.items():
        term = plain[marked] if plain is not None else _plain(marked)
        weight = (1 + math.log(count)) * idf.get(term, 1.0)
        if marked[0] == "^":
            weight *= rules.capital_boost
        elif marked[0] == "~":
            weight *= rules.summary_weight
            if not weight:
                continue
        vector[term] = max(vector.get(term, 0.0), weight)
    return vector


def _plain(marked: str) -> str:
    """A term without its mark ('^' a name, '?' perhaps one, '~' from the summary)."""
    return marked[1:] if marked[0] in "^?~" else marked


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


@dataclass(frozen=True, slots=True)
class Decision:
    """Where an item goes: an existing story (None: a new one), and which other stories
    it shows to be the same event, to be merged into that one."""

    story: int | None
    merge: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Placement:
    """Where ``StoryIndex.place`` put an item."""

    story: int
    created: bool  # the item started this story
    merged: tuple[int, ...]  # stories merged into it on the way
    last_seen: datetime  # the story's latest item, this one included


@dataclass(frozen=True, slots=True)
class Candidate:
    story: int
    centroid: Vector  # unit length, the strongest terms
    total: Vector  # sum of the members' vectors
    names: frozenset[str] = frozenset()  # terms its outlets capitalised mid-title
    size: int = 1  # reports joined
    subject: frozenset[str] = frozenset()  # the names most of its reports give
    # terms its headlines wrote in lower case: a name that is never one of them is only
    # a name (ICE, the agency, is not "ice")
    words: AbstractSet[str] = frozenset()


def decide(
    item: Vector,
    candidates: Iterable[Candidate],
    rules: GroupingRules,
    names: frozenset[str] = frozenset(),
    *,
    headline: Vector | None = None,
    words: frozenset[str] = frozenset(),
    guessed: frozenset[str] = frozenset(),
) -> Decision:
    """The story an item joins, and the stories it bridges.

    The item joins the most similar candidate at or above ``threshold`` (for a story of
    one report, ``pair_threshold`` if higher; for an item that names no one, a story
    that names someone only at ``unnamed_threshold``, as for one whose names are all
    ``guessed`` (first or Title Case words the stream usually capitalises) and give part
    of the story's subject; for an item that names none of a story's subject but someone the
    story never named, at ``subject_threshold``). Other candidates it also reaches are
    merged with that story when the stories are themselves similar
    (``merge_threshold``): reports that started apart, before the vocabulary of the
    event settled, come together, in the largest of them.
    """
    own = item if headline is None else headline
    # As many as the headline has, at most shared_terms: a one-word headline needs one,
    # with a summary or without.
    needed = min(rules.shared_terms, len(own))
    scored = sorted(
        (
            (score, c)
            for c in candidates
            if _shares_enough(item, own, names, c, needed, words)
            and (not names or not c.names or not names.isdisjoint(c.names))
            and (score := cosine(item, c.centroid)) >= _bar(c, names, guessed, rules)
        ),
        key=lambda entry: (-entry[0], entry[1].story),
    )
    if not scored:
        return Decision(None)
    best = scored[0][1]
    if len(scored) == 1:
        return Decision(best.story)
    total = _add(dict(best.total), own)
    joined = _unit(total)
    group = [best]
    for _, candidate in scored[1:]:
        if cosine(joined, candidate.centroid) >= rules.merge_threshold:
            group.append(candidate)
            joined = _unit(_add(total, candidate.total))  # the merged story, for the next
    # The largest story (by reports it took directly) takes the others in: the fewest
    # reports change story, and a long-running story keeps its id. Merging the largest
    # into a new one rewrote 300,000 rows in the bench's cold poll (twice its time).
    target = max(group, key=lambda c: c.size)
    return Decision(target.story, tuple(c.story for c in group if c is not target))


def _shares_enough(
    item: Vector,
    headline: Collection[str],
    names: frozenset[str],
    story: Candidate,
    needed: int,
    words: frozenset[str],
) -> bool:
    """Whether the item shares enough terms with the story to be the same event: its
    headline ``needed`` terms, or one name, and its summary the rest ("A New Chapter for
    Bangladesh" / "... Bangladesh Nationalist Party claims victory in ... elections"),
    or the story's subject alone, a name most of its reports give and the item gives too
    ("SXSW 2014: 10 Artists to Watch"; one word is a topic, but not that one).
    A word the headline writes in lower case is not shared with a story that only ever
    wrote it as a name: Greenland's "piece of ice" has nothing in common with ICE."""
    centroid = story.centroid
    shared = [
        term
        for term in headline
        if term in centroid
        and not (term in words and term in story.names and term not in story.words)
    ]
    if len(shared) >= needed:
        return True
    if not shared or names.isdisjoint(shared):
        return False
    if any(term in story.subject and term in names for term in shared):
        return True
    return len(shared) + sum(t in centroid for t in item if t not in headline) >= needed


def _bar(
    candidate: Candidate, names: frozenset[str], guessed: frozenset[str], rules: GroupingRules
) -> float:
    """The similarity an item needs to join this candidate."""
    named = bool(names)
    subject = candidate.subject
    bar = rules.threshold
    if subject and names.isdisjoint(subject) and not names <= candidate.names:
        # Another subject: "Ukraine updates: Peace talks in Geneva" has "talks" and
        # "Geneva" in common with Iran's talks there, but not Iran, and names Ukraine.
        bar = max(bar, rules.subject_threshold)
    if candidate.size <= 1:  # two headlines alone
        bar = max(bar, rules.pair_threshold)
    if not named and candidate.names:  # a headline naming no one, a story naming someone
        bar = max(bar, rules.unnamed_threshold)
    given = names & subject
    if given and given < subject and names <= guessed:
        # Names only guessed, giving part of the subject: "Botswana: Malaria Claims One
        # As Cases Rise in North West District" is Title Case, so its "West" is a name
        # only because the stream writes "West Bank" so.
        bar = max(bar, rules.unnamed_threshold)
    return bar


def _add(total: dict[str, float], vector: Vector) -> dict[str, float]:
    for term, weight in vector.items():
        total[term] = total.get(term, 0.0) + weight
    return total


_PRUNE_EVERY = 5000
_LATER_STORIES_PASSED = 120  # per term, by an item dated before them (see _candidates)
_HOUR = timedelta(hours=1)
_SUBJECT_AFTER = 3  # reports before a story has a subject
_SUBJECT_SHARE = 0.6  # of its reports that give a name, for it to be the subject
_EXACT_UP_TO = 32  # a story's centroid is recomputed on every join up to this size,
_REFRESH_EVERY = 8  # then on every 8th  # assignments between two sweeps of expired stories


@dataclass
class _Story:
    total: dict[str, float]  # sum of member vectors
    centroid: dict[str, float]
    first_seen: datetime
    last_seen: datetime
    names: frozenset[str] = frozenset()
    size: int = 0  # items joined (merged stories' not counted)
    # Reports naming each name; None while the story has one report (its names, once
    # each): most stories have one, and a Counter and a set each cost 30 MB over 57,000.
    named: Counter[str] | None = None
    words: AbstractSet[str] = frozenset()  # terms written in lower case
    # ``_subject`` of the above (None: not worked out since the last join). Kept: a
    # story is a candidate for many items, and a long-running one names hundreds.
    subject: frozenset[str] | None = None


@dataclass
class StoryIndex:
    """Stories in memory, for one process's stream (the evaluation, and tests)."""

    rules: GroupingRules = field(default_factory=GroupingRules)
    _stories: dict[int, _Story] = field(default_factory=dict)
    _merged_into: dict[int, int] = field(default_factory=dict)
    _postings: defaultdict[str, dict[int, None]] = field(default_factory=lambda: defaultdict(dict))
    # Document frequencies over the items of the window: how rare a word is now.
    _document_frequency: Counter[str] = field(default_factory=Counter)
    _documents: int = 0
    # (hour, the terms counted in it, items in it): an hour expires as a whole.
    _hours: deque[tuple[datetime, Counter[str], int]] = field(default_factory=deque)
    _since_prune: int = 0  # items counted in since the last sweep of expired stories
    _next_id: int = 1
    # How often each term was written capitalised mid-headline, and in lower case: whether
    # a capital where capitals say nothing (a headline's first word) marks a name.
    _as_name: Counter[str] = field(default_factory=Counter)
    _as_word: Counter[str] = field(default_factory=Counter)

    def assign(self, counts: Counter[str], when: datetime) -> int:
        """The story id of an item with these terms, seen at ``when``."""
        return self.place(counts, when).story

    def place(self, counts: Counter[str], when: datetime) -> Placement:
        """Assign an item and say how: a new story or not, and what was merged into it."""
        # The summary helps its own item find the story whose headlines say what its
        # headline does not; stories are made of headlines alone, so that the background
        # words of summaries (talks, Geneva, officials) do not pull stories together.
        plain, headline_counts, names, guessed = self._observe(counts, when)
        weights = _weights(counts, self._idf(plain.values()), self.rules, plain)
        vector = _unit(weights)
        headline = vector
        if len(headline_counts) < len(counts):
            headline = _unit({plain[m]: weights[plain[m]] for m in headline_counts})
        candidates = self._candidates(headline, when)  # the gate needs a headline term
        words = _words_of(headline_counts)
        decision = decide(
            vector, candidates, self.rules, names, headline=headline, words=words, guessed=guessed
        )
        created = decision.story is None
        story_id = self._new_story(when) if decision.story is None else decision.story
        story = self._stories[story_id]
        for other_id in decision.merge:
            other = self._stories.pop(other_id)
            _add(story.total, other.total)
            story.names |= other.names
            story.named = _named(story) + _named(other)
            story.words = _union(story.words, other.words)
            story.last_seen = max(story.last_seen, other.last_seen)
            story.first_seen = min(story.first_seen, other.first_seen)
            self._merged_into[other_id] = story_id
        self._join(story_id, headline, names, words, when, index_all=bool(decision.merge))
        return Placement(story_id, created, decision.merge, story.last_seen)

    def restore(self, counts: Counter[str], when: datetime, story_id: int) -> None:
        """Put back an item assigned before (by another run): no decision, no merge."""
        plain, headline_counts, names, _ = self._observe(counts, when)
        idf = self._idf(plain[m] for m in headline_counts)
        headline = weigh(headline_counts, idf, self.rules, plain)
        if story_id not in self._stories:
            self._stories[story_id] = _Story({}, {}, when, when)
            self._next_id = max(self._next_id, story_id + 1)
        self._join(story_id, headline, names, _words_of(headline_counts), when, index_all=False)

    def join(self, counts: Counter[str], when: datetime, story_id: int) -> Placement:
        """Add an item to a story decided elsewhere (a near-duplicate joins the story of
        the text it repeats); decided as usual when that story has left the window."""
        story_id = self.story_of(story_id)
        if story_id not in self._stories:
            return self.place(counts, when)
        self.restore(counts, when, story_id)
        return Placement(story_id, False, (), self._stories[story_id].last_seen)

    def alone(self, when: datetime) -> Placement:
        """A story of its own for an item kept out of the index (its outlet opted out,
        or it could not be placed): only its id is the index's."""
        story_id, self._next_id = self._next_id, self._next_id + 1
        return Placement(story_id, True, (), when)

    def reserve_ids_below(self, next_id: int) -> None:
        """New stories get ids from ``next_id`` on (ids the store has already used)."""
        self._next_id = max(self._next_id, next_id)

    def _count_document(self, plain: set[str], when: datetime) -> None:
        self._documents += 1
        self._document_frequency.update(plain)
        hour = when.replace(minute=0, second=0, microsecond=0)
        if not self._hours or hour > self._hours[-1][0]:
            self._hours.append((hour, Counter(plain), 1))
        else:  # this hour, or an item dated earlier than the last: counted with the last
            start, counts, items = self._hours[-1]
            counts.update(plain)
            self._hours[-1] = (start, counts, items + 1)
        self._since_prune += 1
        # A sweep walks every posting, so it comes after as many items as the index holds
        # stories (at least _PRUNE_EVERY): its cost per item stays the same however
        # large the window, and what it forgets is at most one window more.
        if self._since_prune >= max(_PRUNE_EVERY, len(self._stories)):
            self.prune(when)

    def _observe(
        self, counts: Counter[str], when: datetime
    ) -> tuple[dict[str, str], Counter[str], frozenset[str], frozenset[str]]:
        """Count an item into the stream (document frequencies; how its headline
        capitalises words); each term without its mark, the headline's terms, and the
        item's names with those of them that are guessed (see ``_names_of``)."""
        plain = {marked: _plain(marked) for marked in counts}
        self._count_document(set(plain.values()), when)
        headline = Counter({m: n for m, n in counts.items() if m[0] != "~"})
        for marked in headline:
            if marked[0] == "^":
                self._as_name[plain[marked]] += 1
            elif marked[0] != "?":
                self._as_word[marked] += 1
        return plain, headline, *self._names_of(headline)

    def _names_of(self, counts: Counter[str]) -> tuple[frozenset[str], frozenset[str]]:
        """The item's names: what it capitalised mid-headline, and what it capitalised
        at the start (or in Title Case) that headlines usually capitalise mid-headline;
        and the second kind alone, the names guessed from the stream."""
        marked_names, guessed = set(), set()
        for marked in counts:
            if marked[0] == "^":
                marked_names.add(_plain(marked))
            elif marked[0] == "?":
                term = _plain(marked)
                if self._as_name[term] > self._as_word[term]:
                    guessed.add(term)
        return frozenset(marked_names | guessed), frozenset(guessed - marked_names)

    def _new_story(self, when: datetime) -> int:
        story_id = self.alone(when).story
        self._stories[story_id] = _Story({}, {}, when, when)
        return story_id

    def _join(
        self,
        story_id: int,
        vector: dict[str, float],
        names: frozenset[str],
        words: frozenset[str],
        when: datetime,
        *,
        index_all: bool,
    ) -> None:
        story = self._stories[story_id]
        _add(story.total, vector)
        if story.size:
            story.named = _named(story)
            story.named.update(names)
        if not names <= story.names:
            story.names |= names
        story.words = _union(story.words, words)
        cap = self.rules.centroid_terms
        if len(story.total) > 3 * cap:  # bounded, so that a long story costs no more
            story.total = _top(story.total, 2 * cap)
        story.size += 1
        story.subject = None
        if index_all or story.size <= _EXACT_UP_TO or story.size % _REFRESH_EVERY == 0:
            # One more report moves a large story's centroid little: refreshed in steps.
            story.centroid = _unit(_top(story.total, cap))
        story.last_seen = max(story.last_seen, when)
        story.first_seen = min(story.first_seen, when)
        for term in story.centroid if index_all else vector:
            postings = self._postings[term]
            postings.pop(story_id, None)
            postings[story_id] = None  # most recent last

    def prune(self, now: datetime) -> None:
        """Forget stories past the window: memory stays bounded by the recent stream."""
        self._since_prune = 0
        oldest = window_start(now, self.rules.window)
        hours, frequency = self._hours, self._document_frequency
        while hours and hours[0][0] < window_start(oldest, _HOUR):
            _, counts, items = hours.popleft()
            self._documents -= items
            for term, count in counts.items():
                frequency[term] -= count
                if frequency[term] <= 0:
                    del frequency[term]
        expired = [i for i, story in self._stories.items() if story.last_seen < oldest]
        for story_id in expired:
            del self._stories[story_id]
        stories = self._stories
        for term in list(self._postings):
            postings = self._postings[term]
            # Gone: expired and merged stories, and the terms a story's vector has
            # dropped (a long story would otherwise be posted under every word any of
            # its reports ever used, and be found, and scored, through each).
            for story_id in [
                s for s in postings if s not in stories or term not in stories[s].total
            ]:
                del postings[story_id]
            if not postings:
                del self._postings[term]
        for lexicon in (self._as_name, self._as_word):
            for term in [t for t in lexicon if t not in frequency]:
                del lexicon[term]
        # A merged story's pointer is needed while the story it went into is held.
        gone = [i for i in self._merged_into if self.story_of(i) not in stories]
        for story_id in gone:
            del self._merged_into[story_id]

    def state(self) -> tuple[Any, ...]:
        """Everything this index holds but its rules, as plain values (numbers, strings,
        bytes, lists, tuples, dicts, sets): for ``from_state`` in another process."""
        stories = [
            (
                story_id,
                story.total,
                story.centroid,
                micros(story.first_seen),
                micros(story.last_seen),
                story.names,
                story.size,
                None if story.named is None else dict(story.named),
                story.words,
            )
            for story_id, story in self._stories.items()
        ]
        return (
            stories,
            self._merged_into,
            {term: list(postings) for term, postings in self._postings.items()},
            dict(self._document_frequency),
            self._documents,
            [(micros(hour), dict(counts), items) for hour, counts, items in self._hours],
            self._since_prune,
            self._next_id,
            dict(self._as_name),
            dict(self._as_word),
        )

    @classmethod
    def from_state(cls, rules: GroupingRules, state: tuple[Any, ...]) -> StoryIndex:
        """The index ``state`` was taken from, under these rules; it decides as that
        one would have. TypeError or ValueError when ``state`` is not such a value."""
        (stories, merged, postings, frequency, documents, hours, since_prune, next_id,
         as_name, as_word) = state  # fmt: skip
        index = cls(rules)
        # The unpickled values are fresh and this index's own: checked, not copied.
        index._stories = {}
        for story_id, total, centroid, first, last, names, size, named, words in stories:
            first_seen = at_micros(first)  # most stories have one report: one moment
            index._stories[story_id] = _Story(
                _plain_dict(total),
                _plain_dict(centroid),
                first_seen,
                first_seen if last == first else at_micros(last),
                frozenset(names),
                int(size),
                None if named is None else Counter(named),
                words,
            )
        index._merged_into = dict(merged)
        index._postings = defaultdict(
            dict, {term: dict.fromkeys(ids) for term, ids in postings.items()}
        )
        index._document_frequency = Counter(frequency)
        index._documents = int(documents)
        index._hours = deque((at_micros(hour), Counter(counts), n) for hour, counts, n in hours)
        index._since_prune, index._next_id = int(since_prune), int(next_id)
        index._as_name, index._as_word = Counter(as_name), Counter(as_word)
        return index

    @property
    def size(self) -> tuple[int, int]:
        """(stories, distinct terms) held: both bounded by the window's items."""
        return len(self._stories), len(self._document_frequency)

    def story_of(self, story_id: int) -> int:
        """The story ``story_id`` is now part of (itself, unless it was merged)."""
        while story_id in self._merged_into:
            story_id = self._merged_into[story_id]
        return story_id

    def _idf(self, plain: Iterable[str]) -> dict[str, float]:
        documents = self._documents
        return {
            term: math.log((documents + 1) / (self._document_frequency[term] + 1)) + 1
            for term in plain
        }

    def _candidates(self, vector: Vector, when: datetime) -> Sequence[Candidate]:
        """Stories active within the window around ``when``: on both sides, since an
        outlet's archive (a source added late, a feed back after months) brings items
        older than stories the index already holds, which must not join them."""
        oldest = window_start(when, self.rules.window)
        newest = window_end(when, self.rules.window)
        seen: dict[int, None] = {}
        expired: list[tuple[str, int]] = []
        for term in sorted(vector, key=vector.__getitem__, reverse=True):
            later = 0
            for story_id in reversed(self._postings.get(term, {})):
                story = self._stories.get(story_id)
                if story is None or story.last_seen < oldest:
                    # Merged, or past this item's window and so past that of any item
                    # as new: forgotten here, once, rather than passed over by every
                    # later search. Postings run mostly oldest to newest, but an archive
                    # read late breaks the order, so the search goes on past them.
                    expired.append((term, story_id))
                    continue
                if len(seen) >= self.rules.max_candidates:
                    break
                if story.first_seen > newest:
                    # Began after this item's time. An archive item walks past these,
                    # newest first, to the stories of its days; as many as the window's
                    # stories of a common word would make its cost grow with the store.
                    later += 1
                    if later > _LATER_STORIES_PASSED:
                        break
                    continue
                seen[story_id] = None
        for term, story_id in expired:
            postings = self._postings[term]
            postings.pop(story_id, None)
            if not postings:
                del self._postings[term]
        stories = self._stories
        return [
            Candidate(
                i,
                stories[i].centroid,
                stories[i].total,
                stories[i].names,
                stories[i].size,
                _subject_of(stories[i]),
                stories[i].words,
            )
            for i in seen
        ]


def _plain_dict(value: Any) -> dict[str, float]:
    """``value`` when it is a dict, as an index's state holds (a TypeError otherwise)."""
    if type(value) is not dict:
        raise TypeError(f"a story's vector is a dict, not {type(value).__name__}")
    return value


def _words_of(headline: Counter[str]) -> frozenset[str]:
    """The terms a headline wrote in lower case (unmarked: neither a name nor a first
    or Title Case word)."""
    return frozenset(marked for marked in headline if marked[0] not in "^?")


def _named(story: _Story) -> Counter[str]:
    """How many of the story's reports give each name."""
    return story.named if story.named is not None else Counter(story.names)


def _union(held: AbstractSet[str], more: AbstractSet[str]) -> AbstractSet[str]:
    """``held`` with ``more``: a story of one report shares its report's set."""
    if not held:
        return more
    if more <= held:
        return held
    grown = held if isinstance(held, set) else set(held)
    grown |= more
    return grown


def _subject_of(story: _Story) -> frozenset[str]:
    """The story's subject, worked out once between two joins."""
    if story.subject is None:
        story.subject = _subject(story)
    return story.subject


def _subject(story: _Story) -> frozenset[str]:
    """The names most of a story's reports give (Iran, in the Iran talks): none until
    it has a few reports, nor when no name is given by most of them."""
    if story.size < _SUBJECT_AFTER or not story.named:
        return frozenset()
    most = max(story.named.values())
    if most < _SUBJECT_SHARE * story.size:
        return frozenset()
    return frozenset(name for name, count in story.named.items() if count == most)
