"""`aggregator feeds | series | stories`: what the store holds, as tables or JSON.

The tables are for reading in a terminal; ``--json`` gives the same as the HTTP
routes do (``GET /series/``), or plain objects where there is no route.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aggregator.publish.catalog import StoreCatalog
from aggregator.publish.status import iso, series_status
from aggregator.types import FeedInfo, StorySummary


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def feed_rows(catalog: StoreCatalog) -> list[dict[str, Any]]:
    """Every merged feed: its first page's entries, whether more follow, its newest."""
    rows = []
    for feed in catalog.settings.feeds:
        page = catalog.feed_page("feeds", feed.slug)
        entries = page.entries if page else ()
        rows.append(
            {
                "slug": feed.slug,
                "title": feed.title,
                "merge": feed.merge,
                "entries": len(entries),
                "more": bool(page and page.has_next),
                "updated": iso(page.updated) if page and entries else None,
                "url": f"{catalog.base_url.rstrip('/')}/feeds/{feed.slug}.atom",
            }
        )
    return rows


def format_feeds(rows: Sequence[dict[str, Any]]) -> str:
    return table(
        ("FEED", "MERGE", "ENTRIES", "UPDATED", "TITLE"),
        [
            (
                row["slug"],
                str(row["merge"]),
                f"{row['entries']}{'+' if row['more'] else ''}",
                row["updated"] or "-",
                row["title"],
            )
            for row in rows
        ],
    )


def series_rows(infos: Sequence[FeedInfo], base_url: str) -> list[dict[str, Any]]:
    """The series as ``GET /series/`` lists them."""
    return [series_status(info, base_url) for info in infos]


def format_series(infos: Sequence[FeedInfo]) -> str:
    rows = []
    for info in infos:
        counts = info.counts
        outlets = ", ".join(f"{name} {n}" for name, n in counts.outlets[:4]) if counts else ""
        if counts and len(counts.outlets) > 4:
            outlets += f", +{len(counts.outlets) - 4}"
        rows.append(
            (
                info.slug + (" (auto)" if info.auto else ""),
                str(counts.items if counts else 0),
                str(counts.stories if counts else 0),
                when(counts.last_seen if counts else None),
                outlets or "-",
            )
        )
    return table(("SERIES", "REPORTS", "STORIES", "LAST SEEN", "OUTLETS"), rows)


def story_rows(stories: Sequence[StorySummary]) -> list[dict[str, Any]]:
    return [
        {
            "id": story.id,
            "title": story.title,
            "outlets": story.outlets,
            "reports": story.reports,
            "latest": iso(story.latest),
            "outlet_titles": list(story.outlet_titles),
        }
        for story in stories
    ]


def format_stories(stories: Sequence[StorySummary]) -> str:
    return table(
        ("STORY", "OUTLETS", "REPORTS", "LATEST", "TITLE"),
        [
            (str(s.id), str(s.outlets), str(s.reports), when(s.latest), s.title[:90])
            for s in stories
        ],
    )
