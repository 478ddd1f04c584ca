"""HTTP validators for a merged feed: its ETag from the bytes our deterministic renderers
make of its data, its Last-Modified from the data.

feedgen stamps the render time into its output unless told otherwise; our renderers
always tell it (a test renders one page under two clocks), so equal data gives equal
bytes, and hashing the bytes (about 0.3 ms for 120 KB) is far cheaper than hashing the
page's data (12 ms for 100 entries).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from aggregator.types import FeedPage


def body_etag(body: bytes) -> str:
    """A strong, quoted ETag: the same for the same bytes, different for any other."""
    return f'"{hashlib.sha256(body).hexdigest()[:40]}"'


def page_last_modified(page: FeedPage) -> datetime:
    """The latest change to the page, in UTC, to the second (HTTP dates have no fractions)."""
    latest = max((page.updated, *(entry.updated for entry in page.entries)))
    return latest.astimezone(UTC).replace(microsecond=0)
