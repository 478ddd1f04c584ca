"""The HTTP app that serves merged feeds, the home page, OPML and a health check.

    GET|HEAD /feeds/{slug}.{rss|atom|json}     a merged feed
    GET|HEAD /series/{slug}.{rss|atom|json}    one running story
    GET /        HTML index        GET /opml   OPML of the merged feeds
    GET /healthz 200 "ok" while the process answers at all
    GET /readyz  200 "ready", or 503 with what is wrong: the store cannot be reached, the
                 scheduler is not running, a poll is stuck past its deadline
    GET /metrics Prometheus text: polls, items, stories, fetch and parse times, scheduling
                 lag, feed requests by status
    GET /sources.json   every source's polling state
    GET /series/        every series: its feeds, reports, stories, outlets, first and last seen
    GET /stories/{id}.json   a story: every report of one event, with its outlets
    GET /stories/{id}        the same as a page

Feeds are served by ``feed_endpoint`` from rendered copies (``feed_cache``), with a
strong ETag and Last-Modified computed from the data; the other routes go through
Starlette. The catalog is synchronous (SQLAlchemy), so it and the renderers run in the
thread pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aggregator.exceptions import StoreError
from aggregator.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from aggregator.metrics import Metrics
from aggregator.publish.feed_cache import RECHECK_SECONDS, FeedCache
from aggregator.publish.feed_endpoint import STALE_WHILE_LOADING, FeedEndpoint, is_feed_path
from aggregator.publish.html_index import render_index, render_story_page
from aggregator.publish.opml import render_opml
from aggregator.publish.status import series_status, source_status
from aggregator.publish.story_json import render_story_json
from aggregator.types import FeedKind, FeedPage, Listing, SourceState, StoryView

logger = logging.getLogger(__name__)

CACHE_CONTROL = "public, max-age=60"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
OPML_CONTENT_TYPE = "text/x-opml; charset=utf-8"

_KIND_NOUN: dict[FeedKind, str] = {"feeds": "merged feed", "series": "series"}


class Catalog(Protocol):
    """What the app reads from the store."""

    def listing(self, *, counts: bool = True) -> Listing:
        """Every feed and series; ``counts``: with what each series holds (a query or two
        per series, which the OPML does without)."""
        ...

    def feed_page(self, kind: FeedKind, slug: str, page: int = 1) -> FeedPage | None:
        """Page ``page`` of the feed (the newest entries are on page 1), or None when no
        feed of that kind has this slug."""
        ...

    def sources(self) -> tuple[SourceState, ...]:
        """Every configured source's polling state."""
        ...

    def ping(self) -> None:
        """Raise if the store cannot be reached."""
        ...

    def story(self, story_id: int) -> StoryView | None:
        """The story (followed to the one it was merged into), or None."""
        ...

    def version(self) -> int:
        """A number that changes whenever what the feeds show changes."""
        ...


def create_app(
    catalog: Catalog,
    *,
    base_url: str,
    recheck: float = RECHECK_SECONDS,
    stale_while_loading: float = STALE_WHILE_LOADING,
    readiness: Callable[[], list[str]] | None = None,
    metrics: Metrics | None = None,
) -> ASGIApp:
    """The app, reading from ``catalog``; ``base_url`` is where it is reachable.
    Rendered feeds are kept until ``catalog.version()`` changes, which is read at most
    every ``recheck`` seconds; then, for at most ``stale_while_loading`` seconds, the
    copy from before is served while the feed is loaded again. ``readiness`` says what
    keeps the process from its work besides the store (a poller's problems);
    ``metrics``: served at /metrics, and counting feed requests."""
    base = base_url.rstrip("/")
    cache = FeedCache(catalog.version, recheck=recheck)

    async def index(request: Request) -> Response:
        body = await run_in_threadpool(lambda: render_index(catalog.listing(), base_url=base))
        return Response(
            body, media_type=HTML_CONTENT_TYPE, headers={"Cache-Control": CACHE_CONTROL}
        )

    async def opml(request: Request) -> Response:
        listing = await run_in_threadpool(lambda: catalog.listing(counts=False))
        body = render_opml(listing, base_url=base)
        return Response(
            body, media_type=OPML_CONTENT_TYPE, headers={"Cache-Control": CACHE_CONTROL}
        )

    async def sources(request: Request) -> Response:
        states = await run_in_threadpool(catalog.sources)
        return JSONResponse(
            {"sources": [source_status(state) for state in states]},
            headers={"Cache-Control": "no-cache"},
        )

    async def series_list(request: Request) -> Response:
        listing = await run_in_threadpool(catalog.listing)
        return JSONResponse(
            {"series": [series_status(info, base) for info in listing.series]},
            headers={"Cache-Control": CACHE_CONTROL},
        )

    async def story(request: Request) -> Response:
        story_id: int = request.path_params["story_id"]
        as_json = request.url.path.endswith(".json")
        view = await run_in_threadpool(catalog.story, story_id)
        if view is None:
            if as_json:
                return JSONResponse({"error": f"no story {story_id}"}, status_code=404)
            return PlainTextResponse(f"no story {story_id}\n", status_code=404)
        suffix = ".json" if as_json else ""
        if view.id != story_id:  # merged into another: that one is its address now
            return RedirectResponse(f"{base}/stories/{view.id}{suffix}", status_code=301)
        render = render_story_json if as_json else render_story_page
        body = await run_in_threadpool(lambda: render(view, base_url=base))
        media_type = "application/json; charset=utf-8" if as_json else HTML_CONTENT_TYPE
        return Response(body, media_type=media_type, headers={"Cache-Control": CACHE_CONTROL})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok", headers={"Cache-Control": "no-store"})

    async def readyz(request: Request) -> Response:
        problems = readiness() if readiness is not None else []
        try:
            await run_in_threadpool(catalog.ping)
        except Exception:  # whatever the driver raises, the answer is "not ready"
            logger.warning("readiness check: store unreachable", exc_info=True)
            problems.insert(0, "the store cannot be reached")
        headers = {"Cache-Control": "no-store"}
        if problems:
            return PlainTextResponse("\n".join(problems) + "\n", status_code=503, headers=headers)
        return PlainTextResponse("ready", headers=headers)

    async def metrics_text(request: Request) -> Response:
        if metrics is None:
            return PlainTextResponse("metrics are off in this process\n", status_code=404)
        body = await run_in_threadpool(metrics.render)  # the lag gauge reads the store
        return Response(body, media_type=METRICS_CONTENT_TYPE)

    pages = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"]),
            Route("/opml", opml, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/sources.json", sources, methods=["GET"]),
            Route("/stories/{story_id:int}.json", story, methods=["GET"]),
            Route("/stories/{story_id:int}", story, methods=["GET"]),
            Route("/series/", series_list, methods=["GET"]),
        ],
        exception_handlers={StoreError: _store_unavailable},
    )
    feeds = FeedEndpoint(cache, catalog.feed_page, stale_while_loading=stale_while_loading)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_feed_path(scope["path"]):
            if metrics is None:
                await feeds(scope, receive, send)
                return
            counted = metrics

            async def counting(message: Message) -> None:
                if message["type"] == "http.response.start":
                    counted.feed_response(message["status"])
                await send(message)

            await feeds(scope, receive, counting)
        else:
            await pages(scope, receive, send)

    return app


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    logger.warning("store error while serving %s", request.url.path, exc_info=exc)
    return PlainTextResponse("the feed store is unavailable; try again shortly", status_code=503)
