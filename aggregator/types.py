"""Values that cross stages, named after where they are in the flow.

    SourceForPoll --fetch--> Fetched | NotModified --parse--> ParsedFeed(ParsedItem...)
      --process--> Item (normalized, with identity) --store--> PollOutcome
    store --> PublishedEntry --publish--> RSS / Atom / JSON Feed bytes

Every value is a frozen, slotted, keyword-only dataclass; collections are tuples.
Datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

# --- config -> store ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceDefinition:
    """A source as the config declares it."""

    name: str
    title: str
    url: str


# --- fetch -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceForPoll:
    """What the fetcher needs to know about a source, read from settings and store."""

    name: str
    url: str  # where to fetch: the config's URL, or where it permanently moved
    etag: str | None = None
    last_modified: str | None = None
    new_item_gap: timedelta | None = None  # smoothed time between new items
    last_new_at: datetime | None = None
    lease_owner: str | None = None  # the process that leased it to poll, if any
    # Digests (normalize.entry_digest) of the entries its last stored document listed
    # as the store holds them: the same entries sent again need no normalizing.
    listed: frozenset[bytes] = frozenset()
    # The digest of the last document it sent that could not be read, and why not.
    unreadable: bytes | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PollHints:
    """What a response said about when to come back; absent hints are None.

    Times are absolute (an HTTP date) or relative to when the response arrived.
    """

    retry_after: datetime | timedelta | None = None
    max_age: timedelta | None = None
    expires: datetime | timedelta | None = None
    ttl: timedelta | None = None


NO_HINTS = PollHints()


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetched:
    """A response that carries a body to parse."""

    url: str  # the final URL, after redirects
    status_code: int
    content: bytes
    content_type: str | None
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    hints: PollHints = NO_HINTS
    moved_to: str | None = None  # where permanent redirects (301/308) lead


@dataclass(frozen=True, slots=True, kw_only=True)
class NotModified:
    """The source answered 304: nothing to parse, validators may be refreshed."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    hints: PollHints = NO_HINTS
    moved_to: str | None = None


FetchResult = Fetched | NotModified


# --- parse -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Category:
    term: str
    domain: str | None = None  # RSS category@domain, Atom category@scheme
    label: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Enclosure:
    url: str
    type: str | None = None
    length: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedItem:
    """One entry as the source sent it (strings may still hold markup)."""

    guid: str | None
    link: str | None
    title: str | None
    title_is_html: bool
    content_html: str | None
    summary_html: str | None
    published: datetime | None  # aware UTC when known
    updated: datetime | None
    authors: tuple[str, ...] = ()
    categories: tuple[Category, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    language: str | None = None
    base: str | None = None  # what relative URLs in its markup are relative to


DIGEST_SIZE = 16  # bytes of an entry digest (normalize.entry_digest)


@dataclass(frozen=True, slots=True)
class UnchangedEntry:
    """An entry a poll left out of its items: sent again as the source's last stored
    document listed it (``normalize.normalize_entries``)."""

    digest: bytes  # normalize.entry_digest
    entry_key: str
    identity: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedFeed:
    version: str  # e.g. "rss20", "atom10", "json11"
    title: str | None
    link: str | None
    language: str | None
    items: tuple[ParsedItem, ...]
    warning: str | None = None  # the document had errors but yielded items
    ttl: timedelta | None = None  # RSS <ttl>: how long the publisher says to cache it


# --- process ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """A normalized item with its identity, ready to be stored.

    ``entry_key`` identifies the item within its source (guid, else canonical link,
    else a content hash); ``identity`` identifies it across sources (the canonical
    link when there is one, else the source-scoped entry key).
    """

    entry_key: str
    identity: str
    guid: str | None
    link: str | None  # canonical
    source_link: str | None  # as the outlet sent it (made absolute, scheme-checked)
    title: str
    content_html: str | None
    summary_html: str | None
    published: datetime | None
    updated: datetime | None
    authors: tuple[str, ...]
    categories: tuple[Category, ...]
    enclosures: tuple[Enclosure, ...]
    language: str | None
    content_hash: str
    fingerprint: bytes = b""  # sketch of the text, for near-duplicates (process/duplicates.py)
    lead: str = ""  # the start of its summary (else of its content), plain: for stories
    # normalize.entry_digest of the entry it was made from, when an entry sent again with
    # the same digest may be taken as stored (its key is its own guid or link); else b"".
    digest: bytes = b""


# The share of a story's reports whose text must match a series for the whole story to
# belong to it (a report an outlet tagged for the series always takes its story): a
# story that mentions a subject in passing (two reports in thirty) is not about it.
SERIES_STORY_SHARE = 0.15


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesMembership:
    """An item's place in a series, and why: the signals it showed (process/series.py)."""

    slug: str
    reason: str
    # The outlet tagged it so (a category signal): the outlet says what the article is
    # about, and the story it is in is about that too, however few others tag.
    tagged: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AutoSeries:
    """A series made from an outlet's tag that looks like a running story."""

    slug: str
    title: str
    categories: tuple[tuple[str, str | None], ...]  # (term, domain) as outlets sent them
    created: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredItemText:
    """A stored item as series matching reads it, with the sources that carry it."""

    item_id: int
    title: str
    summary_html: str | None
    content_html: str | None
    categories: tuple[Category, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TagUse:
    """One item's tag as its outlet sent it, and the day of the item."""

    item: int  # the item's id: an item tagged twice (two casings, two domains) counts once
    source: str
    term: str
    domain: str | None
    day: date


@dataclass(frozen=True, slots=True, kw_only=True)
class StorySeries:
    """A story's place in a series: which of its items brought it there, and why."""

    slug: str
    reason: str
    item_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessedDocument:
    """One fetched document, parsed and normalized: what a parse worker hands back."""

    items: tuple[Item, ...]
    series: dict[str, tuple[SeriesMembership, ...]]  # entry key -> its series, members only
    ttl: timedelta | None
    warning: str | None
    # The entries left out of ``items``: the source's last stored document listed them
    # as they are, so the store holds them as they are.
    unchanged: tuple[UnchangedEntry, ...] = ()


# --- store -----------------------------------------------------------------

PollStatus = Literal["ok", "not_modified", "error", "gone"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceNotModified:
    """A 304 to record: fresh validators, when to come back, where the feed moved."""

    name: str
    etag: str | None
    last_modified: str | None
    polled_at: datetime
    next_poll_at: datetime
    moved_to: str | None = None
    lease_owner: str | None = None  # whose lease recording it ends


@dataclass(frozen=True, slots=True, kw_only=True)
class PollSchedule:
    """What a successful poll decides about the source's future polls."""

    next_poll_at: datetime
    new_item_gap: timedelta | None = None
    last_new_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PollOutcome:
    """What one poll of one source did: a value, never an exception."""

    source: str
    status: PollStatus
    http_status: int | None = None
    items_seen: int = 0
    items_new: int = 0
    items_updated: int = 0  # stored items whose text or link changed
    bytes: int = 0  # of the document received (0 for a 304)
    fetch_seconds: float | None = None
    parse_seconds: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneReport:
    """What retention removed (or, in a dry run, would remove)."""

    items: int
    credits: Mapping[str, int]  # per source name: its credits removed
    stories: int  # stories left without items, removed
    forgotten: int  # pruned entry keys dropped: their feeds stopped listing them


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceState:
    """A source's polling state as the store keeps it."""

    name: str
    url: str  # as configured
    fetch_url: str | None  # where a permanent redirect moved it, if it did
    gone: bool  # answered 410 Gone: not polled until its URL changes
    etag: str | None
    last_modified: str | None
    last_polled_at: datetime | None
    next_poll_at: datetime | None
    last_status: str | None
    last_http_status: int | None
    last_error: str | None
    consecutive_errors: int
    item_count: int


# --- publish ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Credit:
    """One outlet that carried an item."""

    source: str  # our source name
    source_title: str
    link: str | None
    guid: str | None
    first_seen: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """One outlet's report of a story, as a story entry lists it."""

    title: str
    link: str | None
    source: str
    source_title: str
    published: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedEntry:
    """An item as a merged feed shows it, with every outlet that carried it."""

    id: int  # stable: our identity row, never derived from the render
    identity: str
    link: str | None
    title: str
    content_html: str | None
    summary_html: str | None
    published: datetime  # the date feeds sort by (never later than first seen)
    updated: datetime
    authors: tuple[str, ...]
    categories: tuple[Category, ...]
    enclosures: tuple[Enclosure, ...]
    language: str | None
    credits: tuple[Credit, ...]
    series: tuple[str, ...] = ()
    # For each of its series, why: the rule that matched and the item it matched (the
    # item's own, or the report that brought its story in).
    why: tuple[StorySeries, ...] = ()
    story: int | None = None  # the story it reports, once assigned
    reports: tuple[Report, ...] = ()  # for a story entry: every report, oldest first
    outlet: str | None = None  # for one outlet's copy of an article (merge: none)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoryMember:
    """A stored item as story assignment sees it."""

    item_id: int
    title: str
    source: str  # the name of the source that first brought it
    outlet: str  # that source's title
    when: datetime  # the item's date (sort_at)
    story: int | None
    fingerprint: bytes = b""  # sketch of the text (process/duplicates.py)
    duplicate_of: int | None = None  # the item whose text this one repeats
    summary: str = ""  # the start of its summary (else of its content), plain text


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedStoryIndex:
    """The story assigner's indexes as the last process to hold them left them."""

    version: int  # story assignment writes so far
    snapshot_version: int | None  # the count the snapshot was saved at; None: none saved
    fingerprint: str | None  # of the settings it was made under
    snapshot: bytes | None  # only while current: nothing was assigned since it was saved

    @property
    def current(self) -> bool:
        return self.snapshot is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class StoryAssignment:
    """What the assignment decided for one item, to be stored."""

    item_id: int
    story: int
    created: bool  # a new story, to be inserted
    merged: tuple[int, ...]  # stories found to be this one: their items move here
    when: datetime
    last_seen: datetime  # of the story, after this item
    duplicate_of: int | None = None  # the earlier item whose text this one repeats


@dataclass(frozen=True, slots=True, kw_only=True)
class StoryView:
    """A story as published: its members, newest first."""

    id: int
    first_seen: datetime
    last_seen: datetime
    entries: tuple[PublishedEntry, ...]
    series: tuple[StorySeries, ...] = ()


FeedKind = Literal["feeds", "series"]
# How a merged feed groups what it shows: per story, per article, or per outlet's copy.
FeedMerge = Literal["story", "duplicates", "none"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedInfo:
    """A merged feed or series as the index and OPML list it."""

    kind: FeedKind
    slug: str
    title: str
    description: str
    counts: SeriesCounts | None = None  # for a series: what it holds
    auto: bool = False  # a series made from outlets' tags (series.auto), not declared


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesCounts:
    """What a series holds: its reports (the outlets' "(1881)"), stories and outlets."""

    items: int
    stories: int
    outlets: tuple[tuple[str, int], ...]  # (source, items), most first
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Listing:
    feeds: tuple[FeedInfo, ...]
    series: tuple[FeedInfo, ...]
    stories: tuple[StorySummary, ...] = ()  # recent stories carried by several outlets
    sources: tuple[SourceState, ...] = ()  # every source's polling state (its health)


@dataclass(frozen=True, slots=True, kw_only=True)
class StorySummary:
    id: int
    title: str  # its earliest report's
    outlets: int
    reports: int
    latest: datetime
    outlet_titles: tuple[str, ...] = ()  # the outlets that carried it, first to report first


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedPage:
    """Everything a renderer needs to produce one merged feed document."""

    slug: str
    kind: FeedKind
    title: str
    description: str
    self_url: str  # without the extension's format: renderers append .rss/.atom/.json
    home_url: str
    entries: tuple[PublishedEntry, ...]
    updated: datetime
    # How long a reader may keep it without asking again: the interval of the fastest
    # source it draws from (it cannot change sooner).
    max_age: int = 60
    page: int = 1  # of the feed's pages (RFC 5005), newest entries first
    hub: str | None = None  # the WebSub hub readers may subscribe at
    static: bool = False  # rendered for a static copy: pages are files, not ?page=N
    has_next: bool = False  # older entries follow on the next page
