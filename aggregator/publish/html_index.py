"""The HTML home page: every merged feed and series, with subscribe links.

Plain HTML5 with a little inline CSS so it reads on a phone; no JavaScript. Every
value is escaped with ``html.escape``; every feed is also announced in <head> for
readers' autodiscovery.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from aggregator.publish import FEED_FORMATS, feed_url
from aggregator.types import FeedInfo, Listing, StorySummary

PAGE_TITLE = "Merged feeds"

PAGE_STYLE = """\
body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:42rem;padding:1rem;color:#222}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}
ul{list-style:none;padding:0}li{margin:0 0 1.25rem}h3{font-size:1.05rem;margin:0}
p{margin:.25rem 0}.subscribe a{display:inline-block;margin-right:.75rem;padding:.2rem 0}
a{color:#0645ad}"""


def render_index(listing: Listing, *, base_url: str) -> bytes:
    """The home page as UTF-8 HTML."""
    base = base_url.rstrip("/")
    return html_page(
        PAGE_TITLE,
        head=_autodiscovery_links((*listing.feeds, *listing.series), base),
        body=[
            f"<h1>{escape(PAGE_TITLE)}</h1>",
            "<p>Each feed merges what several outlets report, crediting every outlet.",
            f'All feeds at once: <a href="{escape(base)}/opml">OPML</a>.</p>',
            *_section("feeds", "Feeds", listing.feeds, base, empty="No merged feeds yet."),
            *_section(
                "series",
                "Series",
                tuple(s for s in listing.series if not s.auto),
                base,
                empty="No series yet.",
            ),
            *_section(
                "auto-series",
                "Series from outlets' tags",
                tuple(s for s in listing.series if s.auto),
                base,
                empty=None,
            ),
            *_stories(listing.stories, base),
        ],
    )


def html_page(title: str, *, head: Sequence[str], body: Sequence[str]) -> bytes:
    """A page of this site: ``head`` and ``body`` are lines of (escaped) HTML."""
    lines = [
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        *head,
        f"<style>\n{PAGE_STYLE}\n</style>",
        "</head>",
        "<body>",
        "<main>",
        *body,
        "</main>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


def _autodiscovery_links(infos: Iterable[FeedInfo], base: str) -> list[str]:
    return [
        f'<link rel="alternate" type="{escape(fmt.media_type)}"'
        f' title="{escape(f"{info.title} ({fmt.label})")}"'
        f' href="{escape(feed_url(base, info.kind, info.slug, fmt.name))}">'
        for info in infos
        for fmt in FEED_FORMATS.values()
    ]


def _section(
    section_id: str, heading: str, infos: tuple[FeedInfo, ...], base: str, *, empty: str | None
) -> list[str]:
    """A list of feeds; with nothing to list, ``empty`` says so (None: no section)."""
    if not infos and empty is None:
        return []
    lines = [f'<section id="{section_id}">', f"<h2>{escape(heading)}</h2>"]
    if not infos:
        lines.append(f"<p>{escape(empty or '')}</p>")
    else:
        lines.append("<ul>")
        lines.extend(_feed_item(info, base) for info in infos)
        lines.append("</ul>")
    lines.append("</section>")
    return lines


def _stories(stories: tuple[StorySummary, ...], base: str) -> list[str]:
    if not stories:
        return []
    lines = ['<section id="stories">', "<h2>Stories across outlets</h2>", "<ul>"]
    for story in stories:
        when = story.latest.strftime("%Y-%m-%d %H:%M UTC")
        lines.append(
            f'<li><h3><a href="{escape(base)}/stories/{story.id}">{escape(story.title)}</a></h3>'
            f"<p>{story.outlets} outlets, {story.reports} reports, latest {when}</p></li>"
        )
    lines += ["</ul>", "</section>"]
    return lines


def _feed_item(info: FeedInfo, base: str) -> str:
    subscribe = " ".join(
        f'<a href="{escape(feed_url(base, info.kind, info.slug, fmt.name))}"'
        f' type="{escape(fmt.media_type)}">{escape(fmt.label)}</a>'
        for fmt in FEED_FORMATS.values()
    )
    description = f"<p>{escape(info.description)}</p>" if info.description else ""
    return (
        f'<li id="{escape(f"{info.kind}-{info.slug}")}">'
        f"<h3>{escape(info.title)}</h3>{description}{_counts(info)}"
        f'<p class="subscribe">{subscribe}</p></li>'
    )


def _counts(info: FeedInfo) -> str:
    """A series' reports, stories and outlets, and when it was first and last seen."""
    counts = info.counts
    if counts is None:
        return ""
    if not counts.items:
        return "<p>No reports yet.</p>"
    outlets = ", ".join(f"{name} ({n})" for name, n in counts.outlets)
    span = ""
    if counts.first_seen and counts.last_seen:
        span = (
            f"; {counts.first_seen.strftime('%Y-%m-%d')} to {counts.last_seen.strftime('%Y-%m-%d')}"
        )
    return (
        f"<p>{counts.items} reports in {counts.stories} stories{escape(span)}</p>"
        f"<p>{len(counts.outlets)} outlets: {escape(outlets)}</p>"
    )
