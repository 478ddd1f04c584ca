"""Near-duplicates: the same article text reached under another link or guid.

Wire copy republished by several outlets, or an item an outlet re-posts under a new
guid, has a new link and so a new identity; what stays is the text. An item's text
(title and the start of its body, when long enough to tell articles apart) becomes a
bottom-k sketch: the ``k`` smallest hashes of its word 4-grams. Two sketches estimate
the resemblance (Jaccard similarity of the 4-gram sets) of their texts; at
``duplicate_threshold`` or above, the later item is a duplicate of the earlier one.

Measured on the 2026 same-time capture of 26 outlets: AP copy carried by two outlets
scores 0.87; reports of the same event in different words, under 0.4; two different
TIME articles sharing paragraphs of background further down, 0.17 (0.62 over their
whole texts: the lead is what wire copies share and background does not). A false
merge here hides a real article, so the default threshold sits well above these.

``DuplicateIndex`` finds candidates through the few smallest hashes of each sketch
(two texts that resemble each other share most of those), bounded by a time window.
"""

from __future__ import annotations

import heapq
import string
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aggregator.process.moments import at_micros, micros, window_start

# A sketch: its hashes in ascending order, 4 bytes each, big-endian; b"" for none. Kept
# packed, here and in the store: a window's worth of originals as tuples of Python ints
# cost 2.5 KB each (140 MB at 57,000 items), packed 256 bytes.
Fingerprint = bytes

SKETCH_SIZE = 64  # hashes kept per text
SHINGLE = 4  # words per n-gram
INDEX_KEYS = 8  # smallest hashes of a sketch an item is found by
MIN_SHARED_KEYS = 4  # of those, shared with an original for it to be scored
MAX_CANDIDATES = 16  # originals scored per item, those sharing most keys first
MAX_POSTINGS = 16  # originals found by one hash: one that more originals share is boilerplate
MAX_WORDS = 150  # the lead, in tokens: wire copies share it; the cost per item is bounded
MIN_WORDS = 30  # shorter texts get no fingerprint: too little to tell articles apart


@dataclass(frozen=True, slots=True, kw_only=True)
class DuplicateRules:
    threshold: float = 0.75  # estimated resemblance at which a later text is a duplicate
    window: timedelta = timedelta(hours=72)


def fingerprint(title: str, body: str) -> Fingerprint:
    """The sketch of an item's text, or b"" when it is too short to have one."""
    words = _lead(f"{title} {body}")
    if len(words) < MIN_WORDS:
        return b""
    text = b" ".join(words)
    starts = [0]
    for word in words:
        starts.append(starts[-1] + len(word) + 1)
    crc32 = zlib.crc32
    hashes = {
        crc32(text[starts[i] : starts[i + SHINGLE] - 1]) for i in range(len(starts) - SHINGLE)
    }
    smallest = sorted(hashes)[:SKETCH_SIZE]
    return struct.pack(f">{len(smallest)}I", *smallest)


# Words, cheaply: UTF-8 bytes with ASCII folded to lower case, punctuation (ASCII and
# the typographic marks outlets' systems substitute for it) made spaces, then split.
_FOLD = bytes.maketrans(
    string.ascii_uppercase.encode() + string.punctuation.encode(),
    string.ascii_lowercase.encode() + b" " * len(string.punctuation),
)
_MARKS = tuple(
    mark.encode() for mark in "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00a0\u00ab\u00bb"
)


def _lead(text: str) -> list[bytes]:
    """The words of the text's first ``MAX_WORDS`` whitespace-separated tokens."""
    data = b" ".join(text.encode().split(None, MAX_WORDS)[:MAX_WORDS])
    if not data.isascii():
        for mark in _MARKS:
            if mark in data:
                data = data.replace(mark, b" ")
    return data.translate(_FOLD).split()


def hashes(sketch: Fingerprint, count: int = SKETCH_SIZE) -> tuple[int, ...]:
    """The sketch's ``count`` smallest hashes (all of them by default)."""
    return struct.unpack_from(f">{min(count, len(sketch) // 4)}I", sketch)


def resemblance(a: Fingerprint, b: Fingerprint) -> float:
    """Estimated Jaccard similarity of the two texts' 4-gram sets, 0..1: the share of
    the union's ``SKETCH_SIZE`` smallest hashes that both sketches hold."""
    if not a or not b:
        return 0.0
    mine, theirs = set(hashes(a)), set(hashes(b))
    both = mine & theirs
    if not both:
        return 0.0
    union = sorted(mine | theirs)[:SKETCH_SIZE]
    return len(both.intersection(union)) / len(union)


def is_duplicate(a: Fingerprint, b: Fingerprint, rules: DuplicateRules) -> bool:
    return resemblance(a, b) >= rules.threshold


@dataclass(frozen=True, slots=True)
class Original:
    item: int
    story: int  # the story it was placed in (it may have merged into another since)
    when: datetime
    sketch: Fingerprint


@dataclass
class DuplicateIndex:
    """Recent originals (items that are not duplicates), found by their smallest hashes."""

    rules: DuplicateRules = field(default_factory=DuplicateRules)
    _originals: dict[int, Original] = field(default_factory=dict)
    # The originals each hash finds: one (nine keys in ten) as a plain id, more as a
    # list; a list each cost 20 MB and 330,000 objects for the collector to walk at a
    # window of 74,000 originals.
    _postings: dict[int, int | list[int]] = field(default_factory=dict)
    _by_date: list[tuple[datetime, int]] = field(default_factory=list)  # a heap, oldest first

    def original_of(self, sketch: Fingerprint, when: datetime) -> Original | None:
        """The earliest recent original this text duplicates, or None.

        Only originals sharing at least ``MIN_SHARED_KEYS`` of the sketch's smallest
        hashes are scored, at most ``MAX_CANDIDATES`` of them: a text that resembles
        this one at the threshold shares most of those (4 or more of 8 for 99.7% of pairs
        at a resemblance of 0.75, simulated); one that merely shares a sentence or
        an outlet's boilerplate line rarely shares two."""
        if not sketch:
            return None
        oldest = window_start(when, self.rules.window)
        shared: Counter[int] = Counter()
        for key in hashes(sketch, INDEX_KEYS):
            posted = self._postings.get(key)
            if isinstance(posted, int):
                shared[posted] += 1
            elif posted is not None:
                shared.update(posted)
        candidates = [item for item, count in shared.items() if count >= MIN_SHARED_KEYS]
        if len(candidates) > MAX_CANDIDATES:
            candidates = sorted(candidates, key=shared.__getitem__, reverse=True)[:MAX_CANDIDATES]
        found: list[Original] = []
        for item in candidates:
            other = self._originals[item]
            if other.when >= oldest and is_duplicate(sketch, other.sketch, self.rules):
                found.append(other)
        return min(found, key=lambda o: (o.when, o.item)) if found else None

    def add(self, item: int, sketch: Fingerprint, when: datetime, story: int) -> None:
        if not sketch or item in self._originals:
            return
        self._originals[item] = Original(item, story, when, sketch)
        heapq.heappush(self._by_date, (when, item))
        for key in hashes(sketch, INDEX_KEYS):
            found = self._postings.get(key)
            if found is None:
                self._postings[key] = item
            elif isinstance(found, int):
                self._postings[key] = [found, item]
            elif len(found) < MAX_POSTINGS:  # a hash this common is boilerplate
                found.append(item)

    def prune(self, now: datetime) -> None:
        """Forget originals dated before the window (by date, not arrival: an item dated
        in the future must not keep every later one in memory)."""
        oldest = window_start(now, self.rules.window)
        while self._by_date and self._by_date[0][0] < oldest:
            _, item = heapq.heappop(self._by_date)
            for key in hashes(self._originals.pop(item).sketch, INDEX_KEYS):
                found = self._postings.get(key)
                if found == item:
                    del self._postings[key]
                elif isinstance(found, list) and item in found:
                    found.remove(item)
                    if len(found) == 1:
                        self._postings[key] = found[0]

    def state(self) -> tuple[Any, ...]:
        """Everything this index holds but its rules, as plain values (the heap by date
        is made again from the originals)."""
        originals = [(o.item, o.story, micros(o.when), o.sketch) for o in self._originals.values()]
        return originals, self._postings

    @classmethod
    def from_state(cls, rules: DuplicateRules, state: tuple[Any, ...]) -> DuplicateIndex:
        """The index ``state`` was taken from, under these rules."""
        originals, postings = state
        index = cls(rules)
        index._originals = {
            item: Original(item, story, at_micros(when), sketch)
            for item, story, when, sketch in originals
        }
        if not {type(original.sketch) for original in index._originals.values()} <= {bytes}:
            raise TypeError("a sketch is bytes")
        # Its pops come in the same order as the saved heap's: (date, item) pairs differ.
        index._by_date = [(o.when, o.item) for o in index._originals.values()]
        heapq.heapify(index._by_date)
        index._postings = _checked_postings(postings)
        return index

    def __len__(self) -> int:
        return len(self._originals)


def _checked_postings(postings: Any) -> dict[int, int | list[int]]:
    """Saved postings as the index holds them, taken over (they are the unpickler's
    fresh objects): a hash to an id, or to a list of ids (a saving process may have
    held one original as a list of one). TypeError or ValueError for anything else."""
    if type(postings) is not dict or not set(map(type, postings)) <= {int}:
        raise TypeError("postings map hashes to originals")
    for key, found in [(k, f) for k, f in postings.items() if type(f) is not int]:
        if type(found) is not list or any(type(item) is not int for item in found):
            raise TypeError(f"a posting is an id or a list of ids, not {found!r:.40}")
        if not found:
            raise ValueError("an empty posting")
        if len(found) == 1:
            postings[key] = found[0]
    return postings
