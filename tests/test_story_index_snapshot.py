"""The story assigner's saved indexes: the next process takes them up instead of
rebuilding them, decides exactly as the process that saved them would have, and
falls back to the store whenever they may be stale or are not ours."""

from __future__ import annotations

import gc
import logging
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from aggregator.exceptions import StoreError
from aggregator.grouping import StoryAssigner
from aggregator.grouping_eval import read_labelled
from aggregator.process import index_snapshot
from aggregator.process.duplicates import DuplicateIndex, DuplicateRules, fingerprint
from aggregator.process.index_snapshot import SnapshotError
from aggregator.process.stories import GroupingRules, StoryIndex, terms
from aggregator.store import Store
from tests.builders import JACKSON, define_outlets, save_titled, story_ids_by_title

DATA = Path(__file__).parent / "data" / "stories" / "uci-dev-stories.csv"
T0 = datetime(2026, 2, 18, 8, 0, tzinfo=UTC)
RULES = GroupingRules()
OTHER = "Lufthansa pilots and cabin crew to strike on Thursday"
PERU = ("npr", "Peru's Congress removes interim President Jeri over corruption probe")


def test_an_index_taken_up_from_its_bytes_decides_as_the_one_that_never_stopped() -> None:
    """2,622 labelled headlines in time order: one index assigns them all; another
    is dumped and loaded again every 150 headlines. Every decision is the same."""
    headlines = sorted(read_labelled(DATA), key=lambda h: h.published)
    whole = StoryIndex(RULES)
    chained = StoryIndex(RULES)
    duplicates = DuplicateIndex()
    expected, got = [], []
    for n, headline in enumerate(headlines):
        counts = terms(headline.title, outlet=headline.publisher)
        expected.append(whole.assign(counts, headline.published))
        got.append(chained.assign(counts, headline.published))
        if n % 150 == 149:
            snapshot = index_snapshot.dump(chained, duplicates)
            chained, duplicates = index_snapshot.load(snapshot, RULES, DuplicateRules())
    assert got == expected
    assert [chained.story_of(s) for s in got] == [whole.story_of(s) for s in expected]
    assert len(set(expected)) > 100  # many stories, and merges among them


def test_the_duplicate_index_travels_with_it() -> None:
    duplicates = DuplicateIndex()
    text = "The central bank raised its main rate by half a point on Thursday. " * 8
    duplicates.add(7, fingerprint("Rates", text), T0, story=3)
    snapshot = index_snapshot.dump(StoryIndex(RULES), duplicates)
    _, loaded = index_snapshot.load(snapshot, RULES, DuplicateRules())
    original = loaded.original_of(fingerprint("Rates", text), T0 + timedelta(hours=1))
    assert original is not None and (original.item, original.story) == (7, 3)


class _Trap:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("this must never run",))


def _with_a_listed_vector() -> bytes:
    """A snapshot whose one story's vector is a list of pairs, not a dict."""
    index = StoryIndex(RULES)
    index.assign(terms("Fed official says weak data caused by weather"), T0)
    stories, *rest = index.state()
    (story_id, total, *story_rest), *_ = stories
    stories = [(story_id, list(total.items()), *story_rest)]
    return pickle.dumps((index_snapshot.FORMAT, (stories, *rest), DuplicateIndex().state()))


@pytest.mark.parametrize(
    "data",
    [
        pickle.dumps(_Trap()),  # names a function: refused before anything runs
        pickle.dumps((2, ({"not": "an index"},), ())),
        pickle.dumps((1, StoryIndex(RULES).state(), DuplicateIndex().state())),
        index_snapshot.dump(StoryIndex(RULES), DuplicateIndex())[:-40],  # cut short
        b"",
        b"not a pickle at all",
        _with_a_listed_vector(),
    ],
    ids=[
        "foreign-global",
        "wrong-shape",
        "old-format",
        "truncated",
        "empty",
        "garbage",
        "vector-not-a-dict",
    ],
)
def test_bytes_that_are_not_our_indexes_are_refused(
    data: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SnapshotError):
        index_snapshot.load(data, RULES, DuplicateRules())
    assert "must never run" not in capsys.readouterr().out


def test_the_fingerprint_follows_the_settings_that_decide_groupings() -> None:
    base = index_snapshot.fingerprint(RULES, ["bbc"])
    assert base == index_snapshot.fingerprint(GroupingRules(), ["bbc"])
    assert base != index_snapshot.fingerprint(GroupingRules(threshold=0.5), ["bbc"])
    assert base != index_snapshot.fingerprint(RULES, ["bbc", "npr"])


# --- in the store, on every backend ---------------------------------------------------


def _start_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("story index:")]


def _sql(url: str, statement: str, **parameters: object) -> object:
    """Run one statement on the database at ``url`` (committed); its first value."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement), parameters)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def _saved_by_a_first_process(store: Store) -> None:
    """Two reports of Jackson's death and one of Peru's, assigned by a process that
    then stops and saves its index (at a count of one assignment write)."""
    define_outlets(store, "bbc", "npr", "abc")
    for n, (source, title) in enumerate(JACKSON[:2]):
        save_titled(store, source, f"j{n}", title, T0 + timedelta(minutes=n))
    save_titled(store, PERU[0], "peru", PERU[1], T0 + timedelta(minutes=5))
    first = StoryAssigner(store, RULES)
    assert first.assign_pending(T0 + timedelta(hours=1)) == 3
    first.close()


def _third_report(store: Store) -> str:
    source, title = JACKSON[2]
    save_titled(store, source, "j2", title, T0 + timedelta(hours=2))
    return title


def test_the_next_process_takes_up_the_saved_index(
    store: Store, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aggregator.grouping")
    _saved_by_a_first_process(store)
    saved = store.saved_story_index()
    assert saved.current and saved.version == 1
    caplog.clear()
    title = _third_report(store)
    second = StoryAssigner(store, RULES)
    assert second.assign_pending(T0 + timedelta(hours=2)) == 1
    assert _start_log(caplog) == ["story index: taken up as the last process left it (2 stories)"]
    ids = story_ids_by_title(database_url)
    assert ids[title] == ids[JACKSON[0][1]] != ids[PERU[1]]
    second.close()  # it assigned: its own index is saved in place of the first's
    assert store.saved_story_index().version == 2 == store.saved_story_index().snapshot_version


def test_an_index_saved_before_later_assignments_is_not_taken_up(
    store: Store, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aggregator.grouping")
    _saved_by_a_first_process(store)
    title = _third_report(store)
    # A process that is killed after assigning: it saves nothing.
    StoryAssigner(store, RULES).assign_pending(T0 + timedelta(hours=2))
    assert not store.saved_story_index().current
    caplog.clear()
    late = "Jesse Jackson, civil rights leader, dies aged 84, family says"
    save_titled(store, "bbc", "j3", late, T0 + timedelta(hours=3))
    StoryAssigner(store, RULES).assign_pending(T0 + timedelta(hours=3))
    assert _start_log(caplog) == ["story index: 4 recent items put back"]
    ids = story_ids_by_title(database_url)
    assert ids[late] == ids[title] == ids[JACKSON[0][1]]


def test_an_index_made_under_other_rules_is_not_taken_up(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aggregator.grouping")
    _saved_by_a_first_process(store)
    caplog.clear()
    _third_report(store)
    other = StoryAssigner(store, RULES, standalone=frozenset({"abc"}))
    other.assign_pending(T0 + timedelta(hours=2))
    assert _start_log(caplog) == ["story index: 3 recent items put back"]


def test_unreadable_saved_bytes_are_rebuilt_from_the_store(
    store: Store, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aggregator.grouping")
    _saved_by_a_first_process(store)
    _sql(database_url, "UPDATE story_index SET snapshot = :bad", bad=pickle.dumps(_Trap()))
    caplog.clear()
    title = _third_report(store)
    StoryAssigner(store, RULES).assign_pending(T0 + timedelta(hours=2))
    started = _start_log(caplog)
    assert started[0].startswith("story index: index snapshot names builtins.print;")
    assert started[1:] == ["story index: 3 recent items put back"]
    ids = story_ids_by_title(database_url)
    assert ids[title] == ids[JACKSON[0][1]]


def test_a_process_that_took_up_the_index_and_assigned_nothing_saves_nothing(
    store: Store, database_url: str
) -> None:
    _saved_by_a_first_process(store)
    _sql(database_url, "UPDATE story_index SET saved_at = NULL")
    idle = StoryAssigner(store, RULES)
    assert idle.assign_pending(T0 + timedelta(hours=1)) == 0
    idle.close()
    assert _sql(database_url, "SELECT saved_at FROM story_index") is None


def test_postgresql_keeps_the_saved_index_uncompressed(postgres_url: str) -> None:
    """TOAST's compression took a second of every poll process's exit at a million
    items, for bytes that compress little."""
    Store.open(postgres_url).close()  # migrated
    storage = _sql(
        postgres_url,
        "SELECT attstorage FROM pg_attribute WHERE attrelid = 'story_index'::regclass"
        " AND attname = 'snapshot'",
    )
    assert storage == "e"  # EXTERNAL: out of line, not compressed


def test_postgresql_keeps_the_saved_index_out_of_its_write_ahead_log(postgres_url: str) -> None:
    """An unlogged table: each poll process's 50-70 MB snapshot at a million items is
    not written twice, nor shipped to replicas; after a crash it is empty, and the
    next process rebuilds the index from the store."""
    Store.open(postgres_url).close()  # migrated
    persistence = _sql(
        postgres_url, "SELECT relpersistence FROM pg_class WHERE oid = 'story_index'::regclass"
    )
    assert persistence == "u"


def test_a_missing_index_row_is_rebuilt_and_counted_again(store: Store) -> None:
    """What PostgreSQL leaves of an unlogged table after a crash: nothing. The next
    process rebuilds the index from the store, counts its writes from there, and saves
    an index the one after takes up."""
    from sqlalchemy import delete

    from aggregator.store.schema import story_index

    define_outlets(store, "bbc", "npr", "abc")
    save_titled(store, JACKSON[0][0], "j0", JACKSON[0][1], T0)
    first = StoryAssigner(store, RULES)
    assert first.assign_pending(T0 + timedelta(hours=1)) == 1
    first.close()
    with store.engine.begin() as connection:
        connection.execute(delete(story_index))
    save_titled(store, JACKSON[1][0], "j1", JACKSON[1][1], T0)
    second = StoryAssigner(store, RULES)
    assert second.assign_pending(T0 + timedelta(hours=2)) == 1
    second.close()
    saved = store.saved_story_index()
    assert saved.current and saved.version >= 1
    _third_report(store)
    third = StoryAssigner(store, RULES)
    assert third.assign_pending(T0 + timedelta(hours=3)) == 1
    assert third._taken_up == saved.version


def test_postgresql_sends_the_saved_index_in_binary(postgres_url: str) -> None:
    """In text, its bytes would come as hex, twice their size (dialect.BINARY_RESULTS);
    other statements stay in text."""
    from psycopg import pq
    from sqlalchemy import event

    store = Store.open(postgres_url)
    snapshot = bytes(range(256)) * 4096  # every byte value, 1 MB
    formats: dict[str, pq.Format] = {}

    def seen(_c: object, cursor: Any, statement: str, *_rest: object) -> None:
        key = "index" if "story_index.snapshot" in statement else "other"
        formats.setdefault(key, cursor.format)

    try:
        assert store.save_story_index(
            version=0, fingerprint="f", snapshot=snapshot, now=datetime.now(UTC)
        )
        event.listen(store.engine, "after_cursor_execute", seen)
        saved = store.saved_story_index()
        store.next_story_id()
    finally:
        store.close()
    assert saved.snapshot == snapshot and (saved.version, saved.fingerprint) == (0, "f")
    assert formats == {"index": pq.Format.BINARY, "other": pq.Format.TEXT}


def test_postgresql_reading_the_saved_index_fails_as_a_store_error(postgres_url: str) -> None:
    """Read in binary (see the test above), a failure is still a StoreError, which the
    assigner retries, and leaves the store usable."""
    Store.open(postgres_url).close()  # migrated
    url = make_url(postgres_url)
    options = f"{url.query['options']} -cstatement_timeout=300"
    store = Store.open(url.update_query_dict({"options": options}).render_as_string(False))
    locker = create_engine(postgres_url)
    try:
        with locker.begin() as connection:
            connection.execute(text("LOCK TABLE story_index IN ACCESS EXCLUSIVE MODE"))
            with pytest.raises(StoreError, match="statement timeout"):
                store.saved_story_index()
        assert store.saved_story_index().version == 0  # the lock gone, read again
    finally:
        store.close()
        locker.dispose()


def test_a_prune_that_removes_stories_makes_the_saved_index_stale(
    store: Store, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The saved index may hold a story retention removed: taken up, it would put a
    later archive report into a story that no longer exists (a foreign key failure on
    every attempt, and every later item left without a story)."""
    caplog.set_level(logging.INFO, logger="aggregator.grouping")
    define_outlets(store, "bbc", "npr", "abc", now=T0 - timedelta(days=200))
    old = T0 - timedelta(days=100)
    save_titled(store, "bbc", "j0", JACKSON[0][1], old)
    first = StoryAssigner(store, RULES)
    first.assign_pending(T0)
    first.close()
    report = store.prune({}, timedelta(days=90), T0)
    assert (report.items, report.stories) == (1, 1)
    assert not store.saved_story_index().current
    caplog.clear()
    save_titled(store, "npr", "j1", JACKSON[1][1], old + timedelta(hours=1))
    save_titled(store, "abc", "x", OTHER, T0)
    assert StoryAssigner(store, RULES).assign_pending(T0) == 2
    assert _start_log(caplog) == ["story index: 0 recent items put back"]
    assert None not in story_ids_by_title(database_url).values()


def test_after_a_failed_write_the_index_is_rebuilt_not_taken_up_again(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aggregator.grouping")
    _saved_by_a_first_process(store)
    second = StoryAssigner(store, RULES)
    second.assign_pending(T0 + timedelta(hours=1))
    second.forget()  # what the pipeline does when a write of assignments failed
    caplog.clear()
    _third_report(store)
    second.assign_pending(T0 + timedelta(hours=2))
    assert _start_log(caplog) == ["story index: 3 recent items put back"]


def test_an_index_older_than_the_last_assignments_is_not_saved_over_them(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Two processes took the index up in turn (the role changed hands): the one that
    stops last, with the older index, keeps the newer one saved."""
    caplog.set_level(logging.INFO, logger="aggregator.grouping")
    _saved_by_a_first_process(store)
    older = StoryAssigner(store, RULES)
    _third_report(store)
    older.assign_pending(T0 + timedelta(hours=2))  # count 2, not saved yet
    late = "Jesse Jackson, civil rights leader, dies aged 84, family says"
    save_titled(store, "bbc", "j3", late, T0 + timedelta(hours=3))
    newer = StoryAssigner(store, RULES)
    newer.assign_pending(T0 + timedelta(hours=3))  # count 3
    newer.close()
    older.close()
    saved = store.saved_story_index()
    assert saved.current and saved.version == 3
    assert "story index: not saved, stories were assigned elsewhere meanwhile" in _start_log(caplog)


def test_a_closed_assigner_lets_go_of_its_index_and_takes_up_what_it_saved(
    store: Store, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Saving lets go of the index before the write (its memory need not add to the
    bytes'); a later use of the same assigner takes the saved one up."""
    caplog.set_level(logging.INFO, logger="aggregator.grouping")
    define_outlets(store, "bbc", "npr", "abc")
    save_titled(store, JACKSON[0][0], "j0", JACKSON[0][1], T0)
    assigner = StoryAssigner(store, RULES)
    assert assigner.assign_pending(T0 + timedelta(hours=1)) == 1
    assigner.close()
    assert not assigner.ready and store.saved_story_index().current
    caplog.clear()
    title = _third_report(store)
    assert assigner.assign_pending(T0 + timedelta(hours=2)) == 1
    assert _start_log(caplog) == ["story index: taken up as the last process left it (1 stories)"]
    ids = story_ids_by_title(database_url)
    assert ids[title] == ids[JACKSON[0][1]]
    assigner.close()


def test_the_collector_leaves_a_held_index_alone_until_it_is_let_go(store: Store) -> None:
    """A taken-up index is hundreds of thousands of objects without cycles: collections
    pass them over while the assigner holds them (gc.freeze), and walk them again once
    it lets go, so that cycles made meanwhile are not kept for good."""
    define_outlets(store, "bbc", "npr", "abc")
    save_titled(store, JACKSON[0][0], "j0", JACKSON[0][1], T0)
    assigner = StoryAssigner(store, RULES)
    assert gc.get_freeze_count() == 0
    assert assigner.assign_pending(T0 + timedelta(hours=1)) == 1
    assert gc.get_freeze_count() > 0
    assigner.close()
    assert gc.get_freeze_count() == 0
    assigner.prepare(T0 + timedelta(hours=1))
    assert assigner.ready and gc.get_freeze_count() > 0
    assigner.forget()
    assert gc.get_freeze_count() == 0


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_garbage_older_than_the_index_is_not_spared_with_it(store: Store) -> None:
    """The collector is told to spare every object alive when the index is ready; a
    cycle dropped before is collected first, not kept for as long as a daemon runs."""
    import weakref

    define_outlets(store, "bbc", "npr", "abc")
    save_titled(store, JACKSON[0][0], "j0", JACKSON[0][1], T0)
    cycle = _Cycle()
    dropped = weakref.ref(cycle)
    gc.collect()  # into the oldest generation, which collections seldom reach
    del cycle
    assigner = StoryAssigner(store, RULES)
    assert assigner.assign_pending(T0 + timedelta(hours=1)) == 1
    assert dropped() is None
    assigner.close()
