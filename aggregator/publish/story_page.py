"""``GET /stories/{id}``: a story as a page, every report with its outlets and a link."""

from __future__ import annotations

from html import escape

from aggregator.publish.credits import first_credit_link, is_web_url
from aggregator.publish.html_index import html_page
from aggregator.types import StoryView


def render_story_page(story: StoryView, *, base_url: str) -> bytes:
    """The page as UTF-8 HTML; the earliest report gives it its title."""
    base = base_url.rstrip("/")
    lead = story.entries[-1].title if story.entries else f"Story {story.id}"
    outlets = {c.source for entry in story.entries for c in entry.credits}
    items = []
    for entry in story.entries:
        link = entry.link or first_credit_link(entry.credits)
        title = escape(entry.title)
        heading = f'<a href="{escape(link)}">{title}</a>' if is_web_url(link) else title
        credited = ", ".join(
            f'<a href="{escape(c.link)}">{escape(c.source_title)}</a>'
            if is_web_url(c.link)
            else escape(c.source_title)
            for c in entry.credits
        )
        when = entry.published.strftime("%Y-%m-%d %H:%M UTC")
        items.append(f"<li><h3>{heading}</h3><p>{credited} &middot; {when}</p></li>")
    return html_page(
        lead,
        head=[
            f'<link rel="alternate" type="application/json" '
            f'href="{escape(base)}/stories/{story.id}.json">'
        ],
        body=[
            f'<p><a href="{escape(base)}/">All feeds</a></p>',
            f"<h1>{escape(lead)}</h1>",
            f"<p>{len(story.entries)} reports from {len(outlets)} outlets.</p>",
            f"<ul>{''.join(items)}</ul>",
        ],
    )
