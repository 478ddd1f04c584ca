"""``GET /stories/{id}.json``: a story and every report of it, with their outlets."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aggregator.publish import feed_url
from aggregator.publish.credits import first_credit_link
from aggregator.types import StoryView


def render_story_json(story: StoryView, *, base_url: str) -> bytes:
    outlets: dict[str, str] = {}
    for entry in reversed(story.entries):  # oldest first: the outlet that broke it leads
        for credit in entry.credits:
            outlets.setdefault(credit.source, credit.source_title)
    document: dict[str, Any] = {
        "id": story.id,
        "url": f"{base_url}/stories/{story.id}.json",
        "page": f"{base_url}/stories/{story.id}",
        "first_seen": _iso(story.first_seen),
        "last_seen": _iso(story.last_seen),
        "outlets": [{"source": name, "title": title} for name, title in outlets.items()],
        "series": [
            {
                "slug": found.slug,
                "feed_url": feed_url(base_url, "series", found.slug, "json"),
                "reason": found.reason,
                "item": found.item_id,
            }
            for found in story.series
        ],
        "items": [
            {
                "id": entry.id,
                "title": entry.title,
                "url": entry.link or first_credit_link(entry.credits),
                "published": _iso(entry.published),
                "outlets": [
                    {"source": c.source, "title": c.source_title, "url": c.link}
                    for c in entry.credits
                ],
            }
            for entry in story.entries
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
