"""Process-wide memory settings."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

_M_ARENA_MAX = -8  # glibc's mallopt parameter number
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas; True when the cap was set.

    glibc gives each thread that allocates concurrently an arena of its own, up to
    eight per core, and freed memory stays in them: a poll's fetch threads grew the
    process by 15 MB that two arenas do without. Must run before threads start.
    Elsewhere (musl, macOS) this does nothing.
    """
    mallopt = getattr(_LIBC, "mallopt", None)
    return bool(mallopt(_M_ARENA_MAX, arenas)) if mallopt is not None else False


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


_LIBC = _libc()


def release_free_memory() -> bool:
    """Give freed heap back to the system (glibc's malloc_trim); True when some was.

    A parse worker that read one large document otherwise keeps that peak, though the
    next document needs a fraction of it.
    """
    trim = getattr(_LIBC, "malloc_trim", None)
    return bool(trim(0)) if trim is not None else False


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile (in any thread of the process).

    For building a large structure without reference cycles (the story index): each
    collection would walk every object built so far, which cost a fifth of rebuilding
    the index at a million items and three quarters of loading it. And for making many
    short-lived objects (a feed page), which then go before any collection walks them.

    When pauses overlap in several threads, the first one that began turns collection
    back on as it ends: a pause may end early, collection never stays off.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def spare_from_collection() -> None:
    """Leave every object alive now out of later cyclic collections (``gc.freeze``),
    until ``return_to_collection``.

    For a large structure without reference cycles that lives long (the story index):
    a collection of the oldest generation would walk its hundreds of thousands of
    objects each time (a fifth of a second each at a million items), and the young
    generations walk them once more first when they were made with the collector
    paused. Reference counting still frees them. What it costs: cyclic garbage among
    the objects alive now is not collected before ``return_to_collection`` (collect
    first), nor is what other threads made meanwhile while the collector was paused.
    """
    gc.freeze()


def return_to_collection() -> None:
    """Undo ``spare_from_collection``: the spared objects are walked again."""
    gc.unfreeze()


def without_collection(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` with the collector paused until it has returned (and its
    frame's objects are gone)."""
    with collector_paused():
        return function(*args)
