"""The story and duplicate indexes as bytes, so that the next process starts from them
instead of rebuilding them from the window's items (seconds of tokenizing at a
million items).

Each index gives its state as plain values (``state``); they are pickled, and read
back by an unpickler that resolves no name at all. The bytes live in the database,
which several machines share, and a plain ``pickle.loads`` of what a database holds
would run whatever code it names. Plain values also load about ten times faster than
pickled objects (37 MB: 0.2 s against 2 s).
"""

from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import fields
from typing import Any, NoReturn

from aggregator.process.duplicates import DuplicateIndex, DuplicateRules, Original
from aggregator.process.stories import GroupingRules, StoryIndex, _Story

FORMAT = 4  # counted up when ``state`` changes in a way the classes' fields do not show


class SnapshotError(ValueError):
    """Bytes that are not indexes this code wrote: start from the store instead."""


def fingerprint(*settings: object) -> str:
    """What a snapshot must have been made under to be used: this format, the shape of
    the index classes, and the settings that decide groupings (``repr`` of frozen
    dataclasses and sorted names)."""
    shapes = [
        (cls.__name__, [f.name for f in fields(cls)])
        for cls in (StoryIndex, _Story, DuplicateIndex, Original, GroupingRules, DuplicateRules)
    ]
    text = repr((FORMAT, shapes, settings))
    return hashlib.sha256(text.encode()).hexdigest()


def dump(stories: StoryIndex, duplicates: DuplicateIndex) -> bytes:
    state = (FORMAT, stories.state(), duplicates.state())
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def load(
    data: bytes, stories: GroupingRules, duplicates: DuplicateRules
) -> tuple[StoryIndex, DuplicateIndex]:
    """The indexes ``dump`` wrote, under these rules; SnapshotError for anything else."""
    try:
        found = _Unpickler(io.BytesIO(data)).load()
    except SnapshotError:
        raise
    except Exception as exc:  # truncated or foreign bytes fail in many ways
        raise SnapshotError(f"unreadable index snapshot: {type(exc).__name__}: {exc}") from exc
    match found:
        case (int() as version, tuple() as story_state, tuple() as duplicate_state):
            if version != FORMAT:
                raise SnapshotError(f"index snapshot of format {version}, not {FORMAT}")
            try:
                return (
                    StoryIndex.from_state(stories, story_state),
                    DuplicateIndex.from_state(duplicates, duplicate_state),
                )
            except (TypeError, ValueError, AttributeError, OverflowError) as exc:
                raise SnapshotError(f"index snapshot of another shape: {exc}") from exc
    raise SnapshotError("the snapshot does not hold a story index and a duplicate index")


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> NoReturn:
        raise SnapshotError(f"index snapshot names {module}.{name}; an index holds plain values")

    def persistent_load(self, pid: Any) -> NoReturn:
        raise SnapshotError("index snapshot refers to outside objects")
