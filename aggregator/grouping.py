"""Stored items to stories: the store's side of ``process/stories.py``.

One ``StoryAssigner`` per polling process keeps the index of recent stories in memory.
It starts from the store (the assigned items of the last ``grouping.window``, put back
without deciding anything again), then assigns whatever items have no story yet, oldest
first: after each poll that stored new items, and at start for items a killed run
stored but did not assign. Decisions and their writes happen under one lock, so the
polling threads take turns; the index and the store never disagree about what was
decided, because the store is written before the next decision.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime

from aggregator.process.stories import GroupingRules, StoryIndex, terms, window_start
from aggregator.store import Store
from aggregator.types import StoryAssignment, StoryMember

log = logging.getLogger(__name__)

BATCH = 1000  # unassigned items read and written per transaction


class StoryAssigner:
    def __init__(
        self, store: Store, rules: GroupingRules, *, standalone: frozenset[str] = frozenset()
    ) -> None:
        self.store = store
        self.rules = rules
        self.standalone = standalone  # sources whose items are never grouped (dedupe: false)
        self._index: StoryIndex | None = None
        self._lock = threading.Lock()

    def assign_pending(self, now: datetime) -> int:
        """Assign every item that has no story yet; return how many were assigned."""
        with self._lock:
            index = self._index if self._index is not None else self._warm_start(now)
            assigned = 0
            while True:
                pending = self.store.unassigned_items(BATCH)
                if not pending:
                    return assigned
                self.store.save_story_assignments([self._place(index, m) for m in pending])
                assigned += len(pending)

    def forget(self) -> None:
        """Drop the index: the next assignment starts again from the store (after a
        failed write, say, or another process assigning in the same store)."""
        with self._lock:
            self._index = None

    def _warm_start(self, now: datetime) -> StoryIndex:
        index = StoryIndex(self.rules)
        recent = self.store.assigned_items_since(window_start(now, self.rules.window))
        for member in recent:
            assert member.story is not None
            if member.source not in self.standalone:
                index.restore(_terms(member), member.when, member.story)
        index.reserve_ids_below(self.store.next_story_id())
        self._index = index
        log.info("story index: %d recent items put back", len(recent))
        return index

    def _place(self, index: StoryIndex, member: StoryMember) -> StoryAssignment:
        try:
            if member.source in self.standalone:
                placement = index.alone(member.when)
            else:
                placement = index.place(_terms(member), member.when)
        except Exception:  # a bug must not hold up every later item behind this one
            log.exception("stories: item %d could not be placed; it stands alone", member.item_id)
            placement = index.alone(member.when)
        return StoryAssignment(
            item_id=member.item_id,
            story=placement.story,
            created=placement.created,
            merged=placement.merged,
            when=member.when,
            last_seen=placement.last_seen,
        )


def _terms(member: StoryMember) -> Counter[str]:
    return terms(member.title, outlet=member.outlet)
