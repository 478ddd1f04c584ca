"""Keys that say when two items are the same: pure functions, no I/O.

    entry_key  within one source:   guid:<guid> | link:<canonical link> | hash:<content hash>
    identity   across sources:      link:<canonical link> | src:<source>:<entry_key>

Keys stay bounded: a guid or link longer than ``MAX_KEY_PART`` characters is
replaced by its sha256 (``guid-sha256:`` / ``link-sha256:``).
"""

from __future__ import annotations

import hashlib
import json

from aggregator.process.urls import canonical_url

MAX_KEY_PART = 512


def content_hash(title: str | None, content: str | None, summary: str | None) -> str:
    """sha256 hex of the item's text; equal text gives an equal hash on any machine."""
    # JSON keeps None apart from "" and the fields apart from each other;
    # ensure_ascii makes any code point (even a lone surrogate) encodable.
    serialized = json.dumps([title, content, summary], ensure_ascii=True, separators=(",", ":"))
    return sha256_hex(serialized)


def entry_key(guid: str | None, link: str | None, content_hash: str) -> str:
    """The item's key within its source: its guid, else its canonical link, else its hash."""
    stripped_guid = guid.strip() if guid else ""
    if stripped_guid:
        return _bounded("guid", stripped_guid)
    link_key = _link_key(link)
    if link_key is not None:
        return link_key
    return f"hash:{content_hash}"


def identity(source_name: str, entry_key: str, link: str | None) -> str:
    """The item's key across sources: its canonical link, else the source-scoped entry key."""
    link_key = _link_key(link)
    if link_key is not None:
        return link_key
    return f"src:{source_name}:{entry_key}"


def _link_key(link: str | None) -> str | None:
    canonical = canonical_url(link) if link else None
    return _bounded("link", canonical) if canonical else None


def _bounded(kind: str, value: str) -> str:
    if len(value) > MAX_KEY_PART:
        return f"{kind}-sha256:{sha256_hex(value)}"
    return f"{kind}:{value}"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
