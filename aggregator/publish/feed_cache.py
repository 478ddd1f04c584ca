"""Rendered feeds, kept until what they show changes.

A feed is rendered once for each value of the store's publication counter
(``Store.published_version``, counted by every write that changes what feeds show,
whichever process made it). Requests look at the counter at most every ``recheck``
seconds: a subscriber's revalidation then costs neither a query nor a render, and a
change is served within that time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from isal import igzip
from starlette.concurrency import run_in_threadpool

log = logging.getLogger(__name__)

RECHECK_SECONDS = 0.25
GZIP_AT_LEAST = 1024  # bytes: smaller bodies are sent as they are
# ISA-L's level 2 (of 0-3): a 509 KB page of 100 stories (bench/scale.py) in 1.1 ms and
# 122 KB, where zlib took 6.5 ms for 113 KB at its level 4 and 13 ms at 6, its default;
# that had been a sixth of serving the page.
GZIP_LEVEL = 2
# Feeds, formats and pages held, and their bytes (both encodings): past either, the
# oldest go (they are rendered again when asked for). The copies of the previous
# version count too, until the next change.
MAX_ENTRIES = 2048
MAX_BYTES = 256 * 1024 * 1024


Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Representation:
    """One encoding of a rendered feed, with the headers of a 200 and of a 304 made
    once (an ASGI response takes them as they are)."""

    etag: str
    body: bytes
    ok_headers: Headers
    not_modified_headers: Headers


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderedFeed:
    """One feed in one format, as served until the store changes."""

    last_modified: datetime
    plain: Representation
    gzipped: Representation | None  # when the body is worth compressing
    max_age: int  # seconds, in its Cache-Control


def rendered(
    *, etag: str, last_modified: datetime, body: bytes, media_type: str, max_age: int
) -> RenderedFeed:
    """``etag``: strong, from the bytes (``body_etag``); ``max_age``: seconds, for
    Cache-Control."""
    common = [
        (b"last-modified", format_datetime(last_modified, usegmt=True).encode()),
        (b"cache-control", f"public, max-age={max_age}".encode()),
        (b"vary", b"Accept-Encoding"),
    ]

    def representation(etag: str, body: bytes, encoding: bytes | None) -> Representation:
        validators = [(b"etag", etag.encode()), *common]
        ok = [
            *validators,
            (b"content-type", media_type.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        if encoding is not None:
            ok.append((b"content-encoding", encoding))
        return Representation(etag=etag, body=body, ok_headers=ok, not_modified_headers=validators)

    gzipped = None
    if len(body) >= GZIP_AT_LEAST:
        # Another representation, another strong tag (RFC 9110 section 8.8.3).
        gzip_etag = etag[:-1] + '-gzip"'
        compressed = igzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        gzipped = representation(gzip_etag, compressed, b"gzip")
    return RenderedFeed(
        last_modified=last_modified,
        plain=representation(etag, body, None),
        gzipped=gzipped,
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
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._read_version = read_version
        self._recheck = recheck
        self._clock = clock or time.monotonic
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0  # of the copies held, this version's and the previous one's
        self._entries: dict[CacheKey, RenderedFeed] = {}
        # Those of the previous version: a feed whose data did not change keeps its bytes.
        self._previous: dict[CacheKey, RenderedFeed] = {}
        self._version: int | None = None
        self._checked_at: float | None = None
        self._changed_after = float("-inf")  # the last change came after this moment
        self._check: asyncio.Future[int | None] | None = None

    async def version(self) -> int | None:
        """The publication counter, read again when ``recheck`` has passed (one read for
        all the requests that come meanwhile); what was rendered at another value is no
        longer served. None until it could be read."""
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self._recheck:
            return self._version
        if self._check is None:
            self._check = asyncio.ensure_future(self._read())
        return await asyncio.shield(self._check)

    async def _read(self) -> int | None:
        before = self._checked_at
        try:
            version = await run_in_threadpool(self._read_version)
        except Exception:  # the store is unreachable: what was rendered still stands
            log.warning("feeds: cannot read the publication counter", exc_info=True)
            return self._version
        finally:
            self._checked_at = self._clock()
            self._check = None
        if version != self._version:
            self._bytes -= sum(_size(feed) for feed in self._previous.values())
            self._previous, self._entries = self._entries, {}
            self._version = version
            # It moved after the read before this one: that is how old the change may be.
            self._changed_after = before if before is not None else float("-inf")
        return version

    def changed_within(self, seconds: float) -> bool:
        """Whether the last change of the counter is certainly less than ``seconds`` old
        (it moved between two reads that close to now). After a quiet spell, a change
        the first read finds may be of any age."""
        return self._clock() - self._changed_after < seconds

    def get(self, key: CacheKey) -> RenderedFeed | None:
        return self._entries.get(key)

    def previous(self, key: CacheKey) -> RenderedFeed | None:
        """What was rendered before the counter last moved (to reuse, not to serve)."""
        return self._previous.get(key) or self._entries.get(key)

    def put(self, key: CacheKey, feed: RenderedFeed, version: int | None) -> None:
        """Keep ``feed``, rendered from what the store held at ``version``, unless the
        counter has moved since (it may show what has changed)."""
        if version is None or version != self._version:
            return
        size = _size(feed)
        while self._previous and self._bytes + size > self._max_bytes:
            self._bytes -= _size(self._previous.pop(next(iter(self._previous))))
        while self._entries and (
            len(self._entries) >= self._max_entries or self._bytes + size > self._max_bytes
        ):
            self._bytes -= _size(self._entries.pop(next(iter(self._entries))))  # the oldest
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= _size(old)
        self._entries[key] = feed
        self._bytes += size


def _size(feed: RenderedFeed) -> int:
    return len(feed.plain.body) + (len(feed.gzipped.body) if feed.gzipped else 0)
