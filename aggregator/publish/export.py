"""Every published document as static files, for any web server to host ("planet" style).

The files sit at the paths the app serves them from, so that the links between them
(written with ``server.base_url``) hold when the directory is hosted at that address:

    index.html                       the HTML index (``GET /``)
    opml                             every feed and series as OPML (``GET /opml``)
    feeds/{slug}.{rss,atom,json}     each merged feed (its first page)
    feeds/{slug}.page{N}.{format}    its older pages, which its pages link (no query
                                     string reaches a static file); at most 100
    series/{slug}.{rss,atom,json}    each series, and its pages likewise
    series/_index.json               every series with its counts (``GET /series/``; no
                                     slug begins with "_", so no series is named so)
    stories/{id}, stories/{id}.json  the stories the index lists

Each file is written whole to a temporary name and renamed, so a web server serving the
directory while it is exported never sends half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from aggregator.publish import FEED_FORMATS
from aggregator.publish.app import Catalog
from aggregator.publish.html_index import render_index, render_story_page
from aggregator.publish.opml import render_opml
from aggregator.publish.status import series_status
from aggregator.publish.story_json import render_story_json

MAX_STATIC_PAGES = 100  # of each feed: the last one written links no further


def export_site(
    catalog: Catalog, out: Path, *, base_url: str, only_changed: bool = False
) -> list[Path]:
    """Write every document under ``out``; the files written, in order. With
    ``only_changed``, a file that already holds the same bytes is left alone (a copy
    kept in sync after each batch of polls rewrites only what changed)."""
    base = base_url.rstrip("/")
    written: list[Path] = []
    kept: set[Path] = set()  # every file the site has now, rewritten or not

    def write(relative: str, body: bytes) -> None:
        path = out / relative
        kept.add(path)
        if only_changed and _holds(path, body):
            return
        written.append(write_atomically(path, body))

    listing = catalog.listing()
    write("index.html", render_index(listing, base_url=base))
    write("opml", render_opml(listing, base_url=base))
    series = {"series": [series_status(info, base) for info in listing.series]}
    write("series/_index.json", json.dumps(series, ensure_ascii=False, indent=1).encode())
    for info in (*listing.feeds, *listing.series):
        number = 0
        while number < MAX_STATIC_PAGES:
            number += 1
            page = catalog.feed_page(info.kind, info.slug, number)
            if page is None or (number > 1 and not page.entries):
                break
            # A static host cannot answer ?page=N: pages are files of their own.
            page = replace(page, static=True, has_next=page.has_next and number < MAX_STATIC_PAGES)
            for fmt in FEED_FORMATS.values():
                write(_page_file(info.kind, info.slug, fmt.name, number), fmt.render(page))
            if not page.has_next:
                break
    for summary in listing.stories:
        story = catalog.story(summary.id)
        if story is not None:
            write(f"stories/{story.id}", render_story_page(story, base_url=base))
            write(f"stories/{story.id}.json", render_story_json(story, base_url=base))
    _drop_the_rest([out / "feeds", out / "series"], kept)
    return written


def _page_file(kind: str, slug: str, fmt: str, number: int) -> str:
    return f"{kind}/{slug}.{fmt}" if number == 1 else f"{kind}/{slug}.page{number}.{fmt}"


def _drop_the_rest(folders: list[Path], kept: set[Path]) -> None:
    """Remove from the feeds' folders what the site no longer has: pages a feed lost,
    feeds and series no longer configured, and what an export killed mid-write left
    (its temporary files)."""
    for folder in folders:
        if folder.is_dir():
            for path in folder.iterdir():
                if path.is_file() and path not in kept:
                    path.unlink(missing_ok=True)


def _holds(path: Path, body: bytes) -> bool:
    try:
        return path.stat().st_size == len(body) and path.read_bytes() == body
    except OSError:
        return False


def write_atomically(path: Path, body: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(body)
        os.chmod(temporary, 0o644)  # for the web server's user; mkstemp makes it 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
