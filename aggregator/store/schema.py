"""The database schema: identity lives here, in unique constraints.

- ``sources.name`` is the outlet's identity (from the config).
- ``items.identity`` is an article's identity across outlets (canonical link, or a
  source-scoped key when there is no link): the same link from two outlets is one row.
- ``stories`` groups items that report the same event (``items.story_id``).
- ``item_sources`` credits each outlet that carried an item; ``(source_id, entry_key)``
  is the item's identity within that outlet (guid, else link, else content hash), so
  re-polling a feed can never insert a second row for the same entry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Set on the dialect of an engine whose PostgreSQL sessions are put in UTC as they
# connect (store/database.py): its datetimes come back as UTCDateTime gives them.
UTC_SESSIONS = "aggregator_utc_sessions"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if getattr(dialect, UTC_SESSIONS, False):
            # psycopg hands back aware UTC datetimes already. A feed page reads some
            # 3,000 of them. Another engine's sessions may be in the server's zone.
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"unexpected datetime value from the database: {value!r}")
        if value.tzinfo is UTC:  # PostgreSQL's, its session being in UTC
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_polled_at", UTCDateTime),
    Column("next_poll_at", UTCDateTime, index=True),
    Column("last_status", String(16)),
    Column("last_http_status", Integer),
    Column("last_error", Text),
    Column("consecutive_errors", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    # Where a permanent redirect (301/308) moved the feed; the config's url stays the user's.
    Column("fetch_url", Text),
    # Set when the source answered 410 Gone: it is not polled again until its url changes.
    Column("gone_at", UTCDateTime),
    # The source's rate of new items, for automatic intervals.
    Column("new_item_gap", Float),  # seconds, smoothed
    Column("last_new_at", UTCDateTime),
    # A process polling the source (claim_due_sources), and until when others leave it:
    # a process that dies mid-poll gives its sources back when the lease runs out.
    Column("lease_owner", String(128)),
    Column("lease_until", UTCDateTime),
    # The last poll that got the feed's content (not a 304): what it lists is known as of
    # then (retention forgets a pruned entry only once such a poll no longer lists it).
    Column("last_content_at", UTCDateTime),
    # The 16-byte digests (normalize.entry_digest) of the entries that document listed,
    # concatenated: sent again, they are stored as they are. NULL: none are known so.
    Column("listed_entries", LargeBinary),
    # The digest (process/unreadable.py) of the last document that could not be read;
    # the same bytes again fail the same way, unread. NULL once a document was read.
    Column("unreadable_digest", LargeBinary),
)

stories = Table(
    "stories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # chosen by the index
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False, index=True),
    # A story found to be the same event as another: its items moved there, kept as a
    # pointer so that links to it still lead somewhere.
    Column("merged_into", Integer, ForeignKey("stories.id")),
)

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("identity", String(1024), nullable=False, unique=True),
    Column("origin_source_id", Integer, ForeignKey("sources.id"), nullable=False),
    Column("guid", Text),
    Column("link", Text),
    Column("title", Text, nullable=False),
    Column("content_html", Text),
    Column("summary_html", Text),
    Column("published", UTCDateTime),
    Column("updated", UTCDateTime),
    Column("authors", JSON, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("enclosures", JSON, nullable=False),
    Column("language", String(35)),
    Column("content_hash", String(64), nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    # Never later than first_seen: an item dated in the future cannot pin itself on top.
    Column("sort_at", UTCDateTime, nullable=False),
    # Last time the item or its credits changed: what feeds' ETag/Last-Modified follow.
    Column("changed_at", UTCDateTime, nullable=False),
    # The story the item reports (process/stories.py); None until assigned.
    Column("story_id", Integer, ForeignKey("stories.id"), index=True),
    # A sketch of the text (process/duplicates.py); None when too short to have one.
    Column("fingerprint", LargeBinary),
    # The earlier item whose text this one repeats under another link (wire copy).
    Column("duplicate_of", Integer, ForeignKey("items.id", ondelete="SET NULL"), index=True),
    # The start of its summary (else content) as text: what story assignment reads.
    Column("lead", Text),
    Index("ix_items_sort_at_id", "sort_at", "id"),
)

item_sources = Table(
    "item_sources",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id"), primary_key=True),
    Column("entry_key", String(600), primary_key=True),
    Column("item_id", Integer, ForeignKey("items.id"), nullable=False),
    Column("guid", Text),
    Column("link", Text),
    Column("first_seen", UTCDateTime, nullable=False),
    # An item's credits, and whether a source credits it (read from the index alone).
    Index("ix_item_sources_item_id_source_id", "item_id", "source_id"),
)

# What retention pruned: an outlet's entry by its key, so that a feed still listing it
# adds nothing. Dropped once the feed has not listed it for the source's retention.
pruned_entries = Table(
    "pruned_entries",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id"), primary_key=True),
    Column("entry_key", String(600), primary_key=True),
    Column("pruned_at", UTCDateTime, nullable=False),
    Column("last_listed_at", UTCDateTime, nullable=False),
)

item_series = Table(
    "item_series",
    metadata,
    Column("series_slug", String(64), primary_key=True),
    Column("item_id", Integer, ForeignKey("items.id"), primary_key=True),
    # The signals the item showed ("category 'Davos 2026', keyword 'Davos'").
    Column("reason", Text, nullable=False, server_default=""),
    # The outlet tagged it for the series: its story belongs to the series, however
    # few of the story's other reports match.
    Column("tagged", Boolean, nullable=False, server_default=false()),
    Index("ix_item_series_item_id", "item_id"),
)

# Small facts the store keeps about itself, by key: which series rules its memberships
# were computed with ("series_rules": a digest), so that changed rules regroup.
state = Table(
    "state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# How many times what the feeds show has changed. Every write that changes items, their
# credits, stories, series or sources counts one more, so that a process serving feeds
# learns that its rendered copies are stale by reading one row (whoever wrote).
publication = Table(
    "publication",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# The story assigner's indexes, saved when a process gives them up, so that the next one
# starts from them rather than from the window's items. ``version`` counts the writes
# of story assignments; the snapshot is good only while it still equals the
# ``snapshot_version`` it was saved at (nothing assigned since) and the settings'
# ``fingerprint`` matches.
story_index = Table(
    "story_index",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("snapshot_version", BigInteger),
    Column("fingerprint", String(64)),
    Column("snapshot", LargeBinary),
    Column("saved_at", UTCDateTime),
)

__all__ = [
    "UTCDateTime",
    "item_series",
    "item_sources",
    "items",
    "metadata",
    "pruned_entries",
    "publication",
    "sources",
    "state",
    "stories",
    "story_index",
]
