"""ParsedItem (as the outlet sent it) -> Item (safe, canonical, with identity).

Nothing is dropped and nothing raises: a field that cannot be made safe becomes
None or empty, and every item of a document gets an ``entry_key`` of its own.
"""

from __future__ import annotations

import functools
import hashlib
import pickle
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from aggregator.process.duplicates import fingerprint
from aggregator.process.identity import content_hash, entry_key, identity, sha256_hex
from aggregator.process.sanitize import (
    plain_text,
    sanitize_html,
    strip_control_chars,
    text_of_sanitized,
)
from aggregator.process.urls import absolute_http_url, canonical_url
from aggregator.types import DIGEST_SIZE, Category, Enclosure, Item, ParsedItem, UnchangedEntry

UNTITLED = "(untitled)"
TITLE_FROM_TEXT_CHARS = 100
MAX_LANGUAGE_TAG = 35  # BCP 47 tags in practice; the store's column is this wide
_URI_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_CATEGORY_SCHEMES = frozenset({"http", "https", "tag", "urn"})
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")


@dataclass(frozen=True, slots=True)
class NormalizedEntries:
    items: tuple[Item, ...]  # to store, in document order
    unchanged: tuple[UnchangedEntry, ...]  # the entries left out: stored as they are


def normalize_entries(
    entries: Sequence[ParsedItem],
    *,
    source_name: str,
    now: datetime,
    code_key: bytes,
    split_categories: str | None = None,
    listed: frozenset[bytes] = frozenset(),
) -> NormalizedEntries:
    """``normalize_items``, leaving out the entries ``listed`` holds (the digests of the
    source's last stored document): normalizing them again would give what the store
    holds. Most of a changed feed's entries are the ones it sent last time.

    An entry is left out only when its key is its own guid or link, and no other entry
    of the document has that key or the same identity: then nothing else bears on its
    key or on what the store writes for it (``store.items.plan_writes``). Items carry
    their digest on the same terms, for the next poll to find them listed."""
    context = digest_context(code_key, source_name, split_categories)
    digests = [entry_digest(entry, context) for entry in entries]
    own = {
        position: found
        for position, (entry, digest) in enumerate(zip(entries, digests, strict=True))
        if digest in listed and (found := _own_keys(entry, source_name)) is not None
    }

    make = functools.partial(
        normalize_item, source_name=source_name, now=now, split_categories=split_categories
    )
    normalized = {p: make(entry) for p, entry in enumerate(entries) if p not in own}
    every = range(len(entries))
    keys = Counter(own[p][0] if p in own else normalized[p].entry_key for p in every)
    identities = Counter(own[p][1] if p in own else normalized[p].identity for p in every)
    left_out = {p for p, (key, ident) in own.items() if keys[key] == identities[ident] == 1}
    normalized |= {p: make(entries[p]) for p in own if p not in left_out}
    positions = sorted(normalized)
    unique = _unique_keys([normalized[p] for p in positions], source_name)
    left_keys = {own[p][0] for p in left_out}
    if any(item.entry_key in left_keys for item in unique):  # a qualified key met one
        return normalize_entries(
            entries,
            source_name=source_name,
            now=now,
            code_key=code_key,
            split_categories=split_categories,
        )
    final = Counter(item.identity for item in unique)
    final.update(own[p][1] for p in left_out)
    return NormalizedEntries(
        items=tuple(
            _with_digest(item, digests[p])
            if item.entry_key == normalized[p].entry_key and final[item.identity] == 1
            else item
            for p, item in zip(positions, unique, strict=True)
        ),
        unchanged=tuple(UnchangedEntry(digests[p], *own[p]) for p in sorted(left_out)),
    )


def entry_digest(entry: ParsedItem, context: bytes) -> bytes:
    """The entry as sent, in the context it is normalized in (``digest_context``), in 16
    bytes: equal digests, equal items. Pickled, every field is in, nested ones too;
    equal entries pickle the same but for shared objects, which only costs a miss."""
    return hashlib.blake2b(
        pickle.dumps(entry, protocol=5), digest_size=DIGEST_SIZE, key=context
    ).digest()


def digest_context(code_key: bytes, source_name: str, split_categories: str | None) -> bytes:
    """What else an item depends on: the code that makes it (``code_key``, see
    ``reading_code``: an entry stored by other code is normalized again, so an upgrade
    applies to what feeds send next), its source, its settings."""
    digest = hashlib.blake2b(digest_size=32, key=code_key)
    digest.update(f"{source_name}|{split_categories!r}".encode())
    return digest.digest()


def _own_keys(entry: ParsedItem, source_name: str) -> tuple[str, str] | None:
    """The entry's key and identity when its key is its guid or link (cheap to find,
    unlike a content hash), else None."""
    _, link = _links(entry.link)
    key = entry_key(_clean_guid(entry.guid), link, "")
    return None if key.startswith("hash:") else (key, identity(source_name, key, link))


def _with_digest(item: Item, digest: bytes) -> Item:
    return item if item.entry_key.startswith("hash:") else replace(item, digest=digest)


def normalize_items(
    items: Iterable[ParsedItem],
    *,
    source_name: str,
    now: datetime,
    split_categories: str | None = None,
) -> tuple[Item, ...]:
    """Normalize every item of one document; entry keys come out unique within it.

    A key that several items share (one guid on two articles, say) tells nothing
    apart, so every bearer of it, the first one included, is qualified by its link
    (else its content): keys then stay with their articles when the feed reorders.
    Items with the same content hash are identical, and are told apart by position.
    """
    normalized = [
        normalize_item(parsed, source_name=source_name, now=now, split_categories=split_categories)
        for parsed in items
    ]
    return _unique_keys(normalized, source_name)


def _unique_keys(normalized: Sequence[Item], source_name: str) -> tuple[Item, ...]:
    shared = {key for key, count in Counter(i.entry_key for i in normalized).items() if count > 1}
    seen_keys: set[str] = set()
    unique: list[Item] = []
    for item in normalized:
        key = item.entry_key
        if key in shared and not key.startswith("hash:"):
            qualifier = (
                sha256_hex(item.link)[:16]
                if item.link and key.startswith("guid")
                else item.content_hash[:16]
            )
            key = f"{key}#{qualifier}"
        key = _unique_key(key, item.content_hash, seen_keys)
        seen_keys.add(key)
        if key != item.entry_key:
            item = replace(item, entry_key=key, identity=identity(source_name, key, item.link))
        unique.append(item)
    return tuple(unique)


def normalize_item(
    parsed: ParsedItem, *, source_name: str, now: datetime, split_categories: str | None = None
) -> Item:
    """One item made safe to store and republish. ``split_categories``: the separator of
    a source that packs several tags into one category ("Politics, Latin America").

    ``now`` is part of the stage's contract; dates are deliberately not judged
    against it here (a future date is kept, the store clamps the sort order).
    """
    del now
    source_link, link = _links(parsed.link)
    base = parsed.base or source_link
    content_html = sanitize_html(parsed.content_html, base)
    summary_html = sanitize_html(parsed.summary_html, base)
    title = _title(parsed, content_html, summary_html)
    guid = _clean_guid(parsed.guid)
    digest = content_hash(title, content_html, summary_html)
    body, lead = _texts(content_html, summary_html)
    key = entry_key(guid, link, digest)
    return Item(
        entry_key=key,
        identity=identity(source_name, key, link),
        guid=guid,
        link=link,
        source_link=source_link,
        title=title,
        content_html=content_html,
        summary_html=summary_html,
        published=_utc(parsed.published),
        updated=_utc(parsed.updated),
        authors=_authors(parsed.authors),
        categories=_categories(parsed.categories, split_categories),
        enclosures=_enclosures(parsed.enclosures),
        language=_language(parsed.language),
        content_hash=digest,
        fingerprint=fingerprint(title, body),
        lead=lead,
    )


def _links(link: str | None) -> tuple[str | None, str | None]:
    """The entry's link as sent (made absolute, scheme-checked), and canonical."""
    source_link = absolute_http_url(link) if link else None
    return source_link, canonical_url(source_link) if source_link else None


_BODY_MARKUP_CHARS = 8000  # more than a fingerprint's words, in any real article
LEAD_CHARS = 400  # of a summary's text: more words than story assignment reads
# WordPress ends excerpts with "The post <title> appeared first on <site>.": no lead.
_WORDPRESS_FOOTER = re.compile(r"\s*\bThe post .*? appeared first on .*", re.DOTALL)


def _texts(content_html: str | None, summary_html: str | None) -> tuple[str, str]:
    """The words of the start of the longer body (for the fingerprint), and the start
    of the summary, else of the content, as one line cut between words (for stories)."""
    longer = max(content_html or "", summary_html or "", key=len)
    body = text_of_sanitized(longer[:_BODY_MARKUP_CHARS])
    summary = summary_html or content_html or ""
    text = body if summary is longer else text_of_sanitized(summary[: 5 * LEAD_CHARS])
    lead = " ".join(_WORDPRESS_FOOTER.sub("", text[: 5 * LEAD_CHARS]).split())
    if len(lead) > LEAD_CHARS:
        lead = lead[: LEAD_CHARS + 1].rsplit(" ", 1)[0]
    return body, lead


def _unique_key(key: str, digest: str, seen: set[str]) -> str:
    """Exact repeats (same key, same link, same text) are told apart by position."""
    if key not in seen:
        return key
    qualified = f"{key}#{digest[:16]}"
    counter = 2
    while qualified in seen:
        qualified = f"{key}#{digest[:16]}#{counter}"
        counter += 1
    return qualified


def _title(parsed: ParsedItem, content_html: str | None, summary_html: str | None) -> str:
    title = plain_text(parsed.title, is_html=parsed.title_is_html)
    if title:
        return title
    for fallback in (summary_html, content_html):
        text = plain_text(fallback, is_html=True)
        if text:
            return text[:TITLE_FROM_TEXT_CHARS].rstrip()
    return UNTITLED


def _clean_guid(guid: str | None) -> str | None:
    if guid is None:
        return None
    return strip_control_chars(guid).strip() or None


def _utc(moment: datetime | None) -> datetime | None:
    """Aware UTC, or None for a value that cannot be one (naive input is taken as UTC)."""
    if moment is None:
        return None
    try:
        if moment.tzinfo is None or moment.utcoffset() is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):  # e.g. 0001-01-01 with a positive offset
        return None


def _authors(authors: tuple[str, ...]) -> tuple[str, ...]:
    names = (plain_text(author, is_html=False) for author in authors)
    return tuple(dict.fromkeys(name for name in names if name))


def _categories(
    categories: tuple[Category, ...], separator: str | None = None
) -> tuple[Category, ...]:
    kept: dict[tuple[str, str | None], Category] = {}
    for category in categories:
        term = plain_text(category.term, is_html=False)
        if not term:
            continue
        domain = _category_domain(category.domain)
        label = plain_text(category.label, is_html=False) or None
        if separator and separator in term:
            for part in (p.strip() for p in term.split(separator)):
                if part:
                    kept.setdefault((part, domain), Category(term=part, domain=domain))
            continue
        kept.setdefault((term, domain), Category(term=term, domain=domain, label=label))
    return tuple(kept.values())


def _category_domain(domain: str | None) -> str | None:
    """Outlets' taxonomy URIs are kept; a domain with a scheme that runs code is not."""
    text = plain_text(domain, is_html=False)
    scheme = _URI_SCHEME.match(text)
    if scheme and scheme.group(1).lower() not in _CATEGORY_SCHEMES:
        return None
    return text or None


def _enclosures(enclosures: tuple[Enclosure, ...]) -> tuple[Enclosure, ...]:
    kept: dict[str, Enclosure] = {}
    for enclosure in enclosures:
        url = canonical_url(enclosure.url, keep_query=True)
        if url is None:
            continue
        media_type = plain_text(enclosure.type, is_html=False) or None
        length = (
            enclosure.length if enclosure.length is not None and enclosure.length >= 0 else None
        )
        kept.setdefault(url, Enclosure(url=url, type=media_type, length=length))
    return tuple(kept.values())


def _language(language: str | None) -> str | None:
    if not language:
        return None
    tag = language.strip().replace("_", "-")
    return tag if len(tag) <= MAX_LANGUAGE_TAG and _LANGUAGE_TAG.fullmatch(tag) else None
