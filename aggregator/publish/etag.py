"""HTTP validators for a merged feed, computed from its data, never from rendered bytes.

feedgen stamps the render time into its output unless told otherwise, and hashing the
data lets the app answer 304 without rendering at all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime

from aggregator import __version__
from aggregator.types import FeedPage


def page_etag(page: FeedPage, fmt: str) -> str:
    """A strong, quoted ETag that changes whenever anything the renderer shows changes.

    The package version is part of the digest so that a new renderer invalidates
    what clients cached from the old one.
    """
    fingerprint = {
        "renderer": __version__,
        "format": fmt,
        "page": dataclasses.asdict(page),
    }
    encoded = json.dumps(
        fingerprint, sort_keys=True, ensure_ascii=False, default=_json_value
    ).encode("utf-8")
    return f'"{hashlib.sha256(encoded).hexdigest()[:40]}"'


def page_last_modified(page: FeedPage) -> datetime:
    """The latest change to the page, in UTC, to the second (HTTP dates have no fractions)."""
    latest = max((page.updated, *(entry.updated for entry in page.entries)))
    return latest.astimezone(UTC).replace(microsecond=0)


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"cannot fingerprint {type(value).__name__}")
