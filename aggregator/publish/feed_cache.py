"""Rendered feeds, kept until what they show changes.

A feed is rendered once for each value of the store's publication counter
(``Store.published_version``, counted by every write that changes what feeds show,
whichever process made it). Requests look at the counter at most every ``recheck``
seconds: a subscriber's revalidation then costs neither a query nor a render, and a
change is served within that time.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from starlette.concurrency import run_in_threadpool

log = logging.getLogger(__name__)

RECHECK_SECONDS = 0.25
GZIP_AT_LEAST = 1024  # bytes: smaller bodies are sent as they are
# Feeds, formats and pages held: a store with more is served, rendered more often.
MAX_ENTRIES = 2048


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderedFeed:
    """One feed in one format, as served until the store changes."""

    etag: str  # strong, from the data (``page_etag``)
    last_modified: datetime
    body: bytes
    gzipped: bytes | None  # the same body gzip-encoded, when worth it
    media_type: str
    max_age: int  # seconds, for Cache-Control

    @property
    def gzip_etag(self) -> str:
        """The ETag of the gzip-encoded body: another representation, another tag."""
        return self.etag[:-1] + '-gzip"'


def rendered(
    *, etag: str, last_modified: datetime, body: bytes, media_type: str, max_age: int
) -> RenderedFeed:
    gzipped = gzip.compress(body, compresslevel=6, mtime=0) if len(body) >= GZIP_AT_LEAST else None
    return RenderedFeed(
        etag=etag,
        last_modified=last_modified,
        body=body,
        gzipped=gzipped,
        media_type=media_type,
        max_age=max_age,
    )


CacheKey = tuple[str, ...]


class FeedCache:
    def __init__(
        self,
        read_version: Callable[[], int],
        *,
        recheck: float = RECHECK_SECONDS,
        clock: Callable[[], float] | None = None,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._read_version = read_version
        self._recheck = recheck
        self._clock = clock or time.monotonic
        self._max_entries = max_entries
        self._entries: dict[CacheKey, RenderedFeed] = {}
        self._version: int | None = None
        self._checked_at: float | None = None
        self._checking = False

    async def version(self) -> int | None:
        """The publication counter, read again when ``recheck`` has passed; what was
        rendered at another value is dropped. None until it could be read once."""
        now = self._clock()
        due = self._checked_at is None or now - self._checked_at >= self._recheck
        if not due or self._checking:  # another request is reading it: use what we have
            return self._version
        self._checking = True
        try:
            version = await run_in_threadpool(self._read_version)
        except Exception:  # the store is unreachable: what was rendered still stands
            log.warning("feeds: cannot read the publication counter", exc_info=True)
            return self._version
        finally:
            self._checking = False
            self._checked_at = self._clock()
        if version != self._version:
            self._entries.clear()
            self._version = version
        return version

    def get(self, key: CacheKey) -> RenderedFeed | None:
        return self._entries.get(key)

    def put(self, key: CacheKey, feed: RenderedFeed, version: int | None) -> None:
        """Keep ``feed``, rendered from what the store held at ``version``, unless the
        counter has moved since (it may show what has changed)."""
        if version is None or version != self._version:
            return
        if len(self._entries) >= self._max_entries:
            self._entries.pop(next(iter(self._entries)))  # the oldest
        self._entries[key] = feed
