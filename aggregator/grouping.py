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

import gc
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from aggregator.exceptions import StoreError
from aggregator.memory import collector_paused, return_to_collection, spare_from_collection
from aggregator.process import index_snapshot
from aggregator.process.duplicates import DuplicateIndex, DuplicateRules
from aggregator.process.moments import window_start
from aggregator.process.stories import GroupingRules, StoryIndex, terms
from aggregator.store import Store
from aggregator.store.roles import Role, Tenure
from aggregator.types import StoryAssignment, StoryMember

log = logging.getLogger(__name__)

BATCH = 2000  # unassigned items read and written per transaction


class StoryAssigner:
    def __init__(
        self,
        store: Store,
        rules: GroupingRules,
        *,
        standalone: frozenset[str] = frozenset(),
        duplicates: DuplicateRules | None = None,
        role: Role | None = None,
    ) -> None:
        self.store = store
        # Processes sharing the store take turns through the role; None: this is the only one.
        self.role = role
        self.on_assigned: Callable[[Sequence[StoryAssignment]], None] | None = None
        self.rules = rules
        self.duplicate_rules = duplicates or DuplicateRules(window=rules.window)
        self.standalone = standalone  # sources whose items are never grouped (dedupe: false)
        self._index: StoryIndex | None = None
        self._duplicates = DuplicateIndex(self.duplicate_rules)
        # The count of assignment writes the index has seen (all of them, while it is set),
        # and the one of the saved indexes it was taken up from (nothing to save again).
        self._version = 0
        self._taken_up: int | None = None
        self._rebuild_next = False  # after a failure: not from the saved index
        self._spared = False  # whether the collector was told to spare the index
        self._lock = threading.Lock()

    def assign_pending(self, now: datetime) -> int:
        """Assign every item that has no story yet; return how many were assigned."""
        with self._lock:
            tenure = self.role.claim() if self.role is not None else Tenure.KEPT
            if tenure is not Tenure.KEPT:
                self._let_go()  # another process assigned meanwhile, or does now
            if tenure is Tenure.ELSEWHERE:
                return 0
            index = self._index if self._index is not None else self._warm_start(now)
            with _Writer(self._write) as writer:
                while ids := self.store.unassigned_ids():  # again: polls go on meanwhile
                    for start in range(0, len(ids), BATCH):
                        pending = self.store.unassigned_members(ids[start : start + BATCH])
                        decided = [self._place(index, m) for m in pending]
                        if self.role is not None and self.role.claim() is not Tenure.KEPT:
                            # The role went with its session: another process may assign
                            # now, and this index may miss its stories.
                            self._let_go()
                            return writer.finish()
                        writer.write(decided)
                    writer.finish()  # the next read of unassigned items must see these
            self._duplicates.prune(now)
            return writer.assigned

    def _write(self, decided: Sequence[StoryAssignment]) -> None:
        self._version = self.store.save_story_assignments(decided) or self._version
        if self.on_assigned is not None:
            self.on_assigned(decided)

    def prepare(self, now: datetime) -> None:
        """Take the role and have the index ready for the next ``assign_pending``: what a
        poll calls in another thread while it fetches, so that loading the saved index
        (a second at a million items) overlaps the network's waits."""
        with self._lock:
            if self._index is not None:
                return
            tenure = self.role.claim() if self.role is not None else Tenure.KEPT
            if tenure is not Tenure.ELSEWHERE:
                self._warm_start(now)

    @property
    def ready(self) -> bool:
        """Whether the index is in memory (``prepare`` would do nothing)."""
        return self._index is not None

    def reconfigure(
        self, rules: GroupingRules, *, standalone: frozenset[str], duplicates: DuplicateRules
    ) -> None:
        """New rules from a reloaded config; the index starts again from the store if
        they changed how items are grouped."""
        with self._lock:
            if (rules, standalone, duplicates) == (
                self.rules,
                self.standalone,
                self.duplicate_rules,
            ):
                return
            self.rules, self.standalone, self.duplicate_rules = rules, standalone, duplicates
            self._let_go()

    def close(self) -> None:
        """Save the indexes for the next process, and give the role up for it to take."""
        with self._lock:
            try:
                self._save_index()
            finally:
                if self.role is not None:
                    self.role.release()

    def _save_index(self) -> None:
        if self._index is None or self._version == self._taken_up:
            return
        if self.role is not None and self.role.claim() is not Tenure.KEPT:
            return  # another process may have assigned since this index was current
        with collector_paused():
            snapshot = index_snapshot.dump(self._index, self._duplicates)
        # Let go before the write, so that the memory of the indexes does not add to
        # the bytes' and the database's; a later use takes up what is saved.
        self._let_go()
        try:
            kept = self.store.save_story_index(
                version=self._version,
                fingerprint=self._fingerprint(),
                snapshot=snapshot,
                now=datetime.now(UTC),
            )
        except StoreError as exc:
            log.warning("story index: not saved, the next start rebuilds it: %s", exc)
            return
        if not kept:
            log.info("story index: not saved, stories were assigned elsewhere meanwhile")

    def _fingerprint(self) -> str:
        return index_snapshot.fingerprint(self.rules, self.duplicate_rules, sorted(self.standalone))

    def forget(self) -> None:
        """Drop the index: the next assignment starts again from the store (after a
        failed write, say, or another process assigning in the same store), rebuilt
        from its items: a saved index may be what led to the failure."""
        with self._lock:
            self._let_go()
            self._rebuild_next = True

    def _warm_start(self, now: datetime) -> StoryIndex:
        # Garbage older than the index would be spared with it, for as long as a daemon
        # holds it: collected now, while there is no index to walk.
        gc.collect()
        with collector_paused():
            index = self._take_up(now)
            spare_from_collection()  # until the index is let go
            self._spared = True
            return index

    def _let_go(self) -> None:
        """Drop the indexes (the next use takes them up or rebuilds them)."""
        self._index = None
        self._duplicates = DuplicateIndex(self.duplicate_rules)
        if self._spared:
            self._spared = False
            return_to_collection()

    def _take_up(self, now: datetime) -> StoryIndex:
        saved = self.store.saved_story_index()
        self._version, self._taken_up = saved.version, None
        trusted, self._rebuild_next = not self._rebuild_next, False
        if trusted and saved.current and saved.fingerprint == self._fingerprint():
            assert saved.snapshot is not None
            try:
                index, self._duplicates = index_snapshot.load(
                    saved.snapshot, self.rules, self.duplicate_rules
                )
            except index_snapshot.SnapshotError as exc:
                log.warning("story index: %s; rebuilding it from the store", exc)
            else:  # not pruned here: it goes on exactly as its process would have
                index.reserve_ids_below(self.store.next_story_id())
                self._index, self._taken_up = index, saved.version
                log.info(
                    "story index: taken up as the last process left it (%d stories)", index.size[0]
                )
                return index
        return self._rebuild(now)

    def _rebuild(self, now: datetime) -> StoryIndex:
        index = StoryIndex(self.rules)
        self._duplicates = DuplicateIndex(self.duplicate_rules)
        recent = self.store.assigned_items_since(window_start(now, self.rules.window))
        for member in recent:
            assert member.story is not None
            if member.source not in self.standalone:
                index.restore(_terms(member, self.rules), member.when, member.story)
                if member.duplicate_of is None:
                    self._duplicates.add(
                        member.item_id, member.fingerprint, member.when, member.story
                    )
        index.reserve_ids_below(self.store.next_story_id())
        self._index = index
        log.info("story index: %d recent items put back", len(recent))
        return index

    def _place(self, index: StoryIndex, member: StoryMember) -> StoryAssignment:
        """A near-duplicate joins the story of the text it repeats; any other item is
        placed by its terms, and its text becomes an original later items may repeat."""
        duplicate_of = None
        try:
            if member.source in self.standalone:
                placement = index.alone(member.when)
            else:
                original = self._duplicates.original_of(member.fingerprint, member.when)
                if original is not None and original.item != member.item_id:
                    duplicate_of = original.item
                    placement = index.join(_terms(member, self.rules), member.when, original.story)
                else:
                    placement = index.place(_terms(member, self.rules), member.when)
                    self._duplicates.add(
                        member.item_id, member.fingerprint, member.when, placement.story
                    )
        except Exception:  # a bug must not hold up every later item behind this one
            log.exception("stories: item %d could not be placed; it stands alone", member.item_id)
            placement = index.alone(member.when)
            duplicate_of = None
        return StoryAssignment(
            duplicate_of=duplicate_of,
            item_id=member.item_id,
            story=placement.story,
            created=placement.created,
            merged=placement.merged,
            when=member.when,
            last_seen=placement.last_seen,
        )


class _Writer:
    """Writes each batch of decisions in another thread while the next one is decided:
    writing (SQLite rewrites each item's row whole) costs about half as much as
    deciding, and runs outside the GIL. One batch is in flight at most; ``write`` and
    ``finish`` raise what the write before them raised. A failed write leaves the index
    ahead of the store, so the caller forgets the index on a StoreError
    (``Pipeline.assign_stories``), as it did when it wrote in turn."""

    def __init__(self, write: Callable[[Sequence[StoryAssignment]], None]) -> None:
        self._write = write
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="stories-write")
        self._pending: Future[None] | None = None
        self._pending_count = 0
        self.assigned = 0  # items whose decisions are written

    def write(self, decided: Sequence[StoryAssignment]) -> None:
        self.finish()
        self._pending = self._thread.submit(self._write, decided)
        self._pending_count = len(decided)

    def finish(self) -> int:
        """Wait for the write in flight; the items written so far."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()
            self.assigned += self._pending_count
        return self.assigned

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._thread.shutdown(wait=True)  # never still writing once the caller is back


def _terms(member: StoryMember, rules: GroupingRules) -> Counter[str]:
    summary = member.summary if rules.summary_weight > 0 else None  # 0: summaries off
    return terms(member.title, summary, outlet=member.outlet)
