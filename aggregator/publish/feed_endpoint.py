"""``GET|HEAD /feeds/{slug}.{fmt}`` and ``/series/{slug}.{fmt}``, in plain ASGI.

The requests subscribers' readers make most, and most often answered 304: served from
rendered copies (``feed_cache``) with their headers made once per copy, without the
router, request object and response object the other routes go through (they cost
more than the rest of a 304).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from aggregator.exceptions import StoreError
from aggregator.memory import without_collection
from aggregator.publish import FEED_FORMATS, FeedFormat
from aggregator.publish.etag import body_etag, page_last_modified
from aggregator.publish.feed_cache import CacheKey, FeedCache, Headers, RenderedFeed, rendered
from aggregator.publish.paging import MAX_PAGE, parse_page_number
from aggregator.types import FeedKind, FeedPage

log = logging.getLogger(__name__)

# For this long (seconds) after the counter was seen to move, readers of a feed being
# loaded again get the copy from before: a change is served within the counter's
# recheck time plus this; later, readers wait for the load.
STALE_WHILE_LOADING = 0.5
PREFIXES: dict[str, FeedKind] = {"/feeds/": "feeds", "/series/": "series"}
_KIND_NOUN: dict[FeedKind, str] = {"feeds": "merged feed", "series": "series"}
_TEXT: Headers = [(b"content-type", b"text/plain; charset=utf-8")]

Load = Callable[[FeedKind, str, int], FeedPage | None]
# What a page past the last one is, in the cache (until the store changes), and told
# apart from a feed by identity.
_NO_SUCH_PAGE = rendered(
    etag='"no-such-page"',
    last_modified=datetime(2000, 1, 1, tzinfo=UTC),
    body=b"",
    media_type="text/plain",
    max_age=0,
)


def is_feed_path(path: str) -> bool:
    """A feed's address (``/series/`` alone is the list of series, not a feed)."""
    return any(path.startswith(prefix) and len(path) > len(prefix) for prefix in PREFIXES)


class FeedEndpoint:
    """The ASGI app serving feeds from ``cache``, loading their pages with ``load``.

    A feed is loaded once per change of the store, however many requests ask for it
    meanwhile (they get the copy from before the change, or wait for that one load when
    there is none), and rendered again only when its bytes changed."""

    def __init__(
        self, cache: FeedCache, load: Load, *, stale_while_loading: float = STALE_WHILE_LOADING
    ) -> None:
        self._cache = cache
        self._load = load
        self._stale_while_loading = stale_while_loading
        self._loading: dict[tuple[CacheKey, int | None], asyncio.Future[RenderedFeed | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, [(b"allow", b"GET, HEAD"), *_TEXT], b"use GET or HEAD\n")
            return
        path: str = scope["path"]
        prefix = path[: path.index("/", 1) + 1]
        kind = PREFIXES[prefix]
        filename = path[len(prefix) :]
        slug, _, extension = filename.rpartition(".")
        fmt = FEED_FORMATS.get(extension)
        if not slug or fmt is None:
            message = f"unknown feed format in {filename!r}; use .rss, .atom or .json"
            await _respond(send, 404, _TEXT, message.encode())
            return
        if "/" in slug:
            await _respond(send, 404, _TEXT, f"no such page: {path}".encode())
            return
        number = parse_page_number(_query_value(scope["query_string"], "page"))
        if number is None:
            message = f"page must be a number from 1 to {MAX_PAGE}"
            await _respond(send, 400, _TEXT, message.encode())
            return
        try:
            feed = await self._feed(kind, slug, fmt, number)
        except StoreError:
            log.warning("store error while serving %s", path, exc_info=True)
            await _respond(send, 503, _TEXT, b"the feed store is unavailable; try again shortly")
            return
        if feed is None:
            message = f"no {_KIND_NOUN[kind]} named {slug!r}; see / for the list"
            await _respond(send, 404, _TEXT, message.encode())
            return
        if feed is _NO_SUCH_PAGE:
            message = f"the {_KIND_NOUN[kind]} {slug!r} has no page {number}; start at page 1"
            await _respond(send, 404, _TEXT, message.encode())
            return
        headers = _request_headers(scope["headers"])
        chosen = feed.plain
        if feed.gzipped is not None and accepts_gzip(headers.get(b"accept-encoding")):
            chosen = feed.gzipped
        if is_fresh(headers, chosen.etag, feed.last_modified):
            await _respond(send, 304, chosen.not_modified_headers, b"")
            return
        await _respond(send, 200, chosen.ok_headers, b"" if method == "HEAD" else chosen.body)

    async def _feed(
        self, kind: FeedKind, slug: str, fmt: FeedFormat, number: int
    ) -> RenderedFeed | None:
        version = await self._cache.version()
        key = (kind, slug, fmt.name, str(number))
        feed = self._cache.get(key)
        if feed is not None:
            return feed
        loading = self._loading.get((key, version))
        if loading is None:
            loading = asyncio.ensure_future(self._refresh(key, version, kind, slug, fmt, number))
            self._loading[(key, version)] = loading
            loading.add_done_callback(lambda _: self._done_loading((key, version)))
        previous = self._cache.previous(key)
        if previous is not None and self._cache.changed_within(self._stale_while_loading):
            # Most changes are to other feeds: rather than hold every reader up for the
            # load, the copy from before the change, for a moment after it was seen.
            return previous
        return await asyncio.shield(loading)

    def _done_loading(self, loading: tuple[CacheKey, int | None]) -> None:
        future = self._loading.pop(loading, None)
        if future is not None and not future.cancelled() and future.exception() is not None:
            # Readers may all have had the copy from before: the failure is said here.
            log.warning(
                "feeds: loading %s failed", "/".join(loading[0]), exc_info=future.exception()
            )

    async def _refresh(
        self,
        key: CacheKey,
        version: int | None,
        kind: FeedKind,
        slug: str,
        fmt: FeedFormat,
        number: int,
    ) -> RenderedFeed | None:
        previous = self._cache.previous(key)
        # A page makes some 100,000 short-lived objects (rows, entries, markup). A
        # collection in the middle would walk them all and move the living ones up a
        # generation, to be walked again: a full collection took 20-25 ms of a 35 ms
        # page (bench/scale.py at a million items). With the collector paused until
        # _rendered has returned, they are gone before any collection sees them.
        feed = await run_in_threadpool(
            without_collection, self._rendered, kind, slug, fmt, number, previous
        )
        if feed is not None:
            self._cache.put(key, feed, version)
        return feed

    def _rendered(
        self,
        kind: FeedKind,
        slug: str,
        fmt: FeedFormat,
        number: int,
        previous: RenderedFeed | None,
    ) -> RenderedFeed | None:
        page = self._load(kind, slug, number)
        if page is None:
            return None
        if number > 1 and not page.entries:
            return _NO_SUCH_PAGE
        body = fmt.render(page)
        etag = body_etag(body)
        if (
            previous is not None
            and previous.plain.etag == etag
            and previous.max_age == page.max_age
        ):
            return previous  # the same bytes: compressed already
        return rendered(
            etag=etag,
            last_modified=page_last_modified(page),
            body=body,
            media_type=f"{fmt.media_type}; charset=utf-8",
            max_age=page.max_age,
        )


def _query_value(query: bytes, name: str) -> str | None:
    """The first value of ``name`` in a query string, if any."""
    values = parse_qs(query.decode("latin-1"), keep_blank_values=True).get(name)
    return values[0] if values else None


async def _respond(send: Send, status: int, headers: Headers, body: bytes) -> None:
    if status >= 400:  # ours: a 200 and a 304 come with theirs (a 304 with none)
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _request_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[bytes, str]:
    """The request headers conditional requests and content negotiation read (ASGI
    gives names in lower case), repeated ones joined as one list."""
    wanted: dict[bytes, str] = {}
    for name, value in raw:
        if name in (b"if-none-match", b"if-modified-since", b"accept-encoding"):
            text = value.decode("latin-1")
            wanted[name] = f"{wanted[name]}, {text}" if name in wanted else text
    return wanted


def accepts_gzip(accepted: str | None) -> bool:
    """Whether Accept-Encoding allows gzip (RFC 9110 section 12.5.3): named, or ``*``,
    with a quality above zero."""
    if not accepted:
        return False
    qualities: dict[str, float] = {}
    for part in accepted.split(","):
        coding, *parameters = part.split(";")
        quality = 1.0
        for parameter in parameters:  # q may follow other parameters
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        qualities[coding.strip().lower()] = quality
    return qualities.get("gzip", qualities.get("x-gzip", qualities.get("*", 0.0))) > 0


def is_fresh(headers: dict[bytes, Any], etag: str, last_modified: datetime) -> bool:
    """Whether the client's cached copy is current (RFC 9110 section 13.2.2).

    If-None-Match wins when present; If-Modified-Since is only consulted without it.
    """
    if_none_match = headers.get(b"if-none-match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, etag)
    if_modified_since = headers.get(b"if-modified-since")
    if if_modified_since is None:
        return False
    since = _parse_http_date(if_modified_since)
    return since is not None and since >= last_modified


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison, as If-None-Match requires: ``W/"x"`` matches ``"x"``."""
    wanted = etag.removeprefix("W/")
    candidates = (candidate.strip() for candidate in if_none_match.split(","))
    return any(c == "*" or c.removeprefix("W/") == wanted for c in candidates)


def _parse_http_date(value: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # "-0000" means UTC with no claim about local time
        return moment.replace(tzinfo=UTC)
    return moment
