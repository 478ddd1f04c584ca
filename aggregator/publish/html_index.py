"""The HTML pages: the home page (every merged feed and series with subscribe links,
recent stories across outlets, the sources' health) and a story's page.

Jinja2 templates (``publish/templates``) with autoescaping: every value is escaped;
plain HTML5 with a little inline CSS so it reads on a phone; no JavaScript. Every feed
is also announced in <head> for readers' autodiscovery.
"""

from __future__ import annotations

import functools

import jinja2

from aggregator.publish import FEED_FORMATS, feed_url
from aggregator.publish.credits import first_credit_link, is_web_url
from aggregator.types import Listing, SourceState, StoryView

PAGE_TITLE = "Merged feeds"


@functools.cache
def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("aggregator.publish", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals.update(
        feed_url=feed_url,
        formats=list(FEED_FORMATS.values()),
        first_credit_link=first_credit_link,
        is_web_url=is_web_url,
        health=source_health,
        status=source_status_text,
    )
    return environment


def render_index(listing: Listing, *, base_url: str) -> bytes:
    """The home page as UTF-8 HTML."""
    page = (
        _templates()
        .get_template("index.html")
        .render(
            title=PAGE_TITLE,
            base=base_url.rstrip("/"),
            listing=listing,
            declared=[s for s in listing.series if not s.auto],
            made=[s for s in listing.series if s.auto],
        )
    )
    return page.encode("utf-8")


def render_story_page(story: StoryView, *, base_url: str) -> bytes:
    """A story's page as UTF-8 HTML; the earliest report gives it its title."""
    page = (
        _templates()
        .get_template("story.html")
        .render(
            title=story.entries[-1].title if story.entries else f"Story {story.id}",
            base=base_url.rstrip("/"),
            story=story,
            outlets=len({c.source for entry in story.entries for c in entry.credits}),
        )
    )
    return page.encode("utf-8")


def source_health(source: SourceState) -> str:
    """ok, error (failing now) or gone: the row's class on the home page."""
    if source.gone:
        return "gone"
    return "error" if source.consecutive_errors else "ok"


def source_status_text(source: SourceState) -> str:
    if source.gone:
        return f"gone ({source.last_http_status or 410}): not polled"
    if source.consecutive_errors:
        return f"failing, {source.consecutive_errors} in a row: {source.last_error or 'error'}"
    if source.last_polled_at is None:
        return "not polled yet"
    return "ok"
