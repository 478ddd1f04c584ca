"""`aggregator add URL` and `aggregator remove NAME`: edit the YAML as a person would.

The file is edited round-trip (ruamel.yaml): comments, order and layout stay as the
user wrote them; only the one source entry is added or taken out. The edited text
must pass the same checks as `aggregator check` before it replaces the file, and it
replaces it whole (written beside it, then renamed), so a failure leaves it as it was.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from lxml import html as lxml_html
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from aggregator.exceptions import AggregatorError, FetchError, ParseError
from aggregator.fetch import Fetcher, FetchLimits
from aggregator.parse import parse_feed
from aggregator.settings import load_settings
from aggregator.types import Fetched, SourceForPoll

FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
    "application/rdf+xml",
)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


class ConfigEditError(AggregatorError):
    """The config cannot be edited as asked."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FoundFeed:
    url: str  # the feed's own URL (after redirects, or found on the page)
    title: str | None
    via_page: str | None = None  # the page it was found on, if the URL was not a feed


def discover(url: str, limits: FetchLimits) -> FoundFeed:
    """The feed at ``url``, or the first feed a page at ``url`` links to with
    ``<link rel="alternate">`` (HTML autodiscovery) that is itself a feed."""
    fetcher = Fetcher(limits)
    try:
        page = _get(fetcher, url)
        feed = _as_feed(page)
        if feed is not None:
            return feed
        candidates = alternate_links(page.content, page.url)
        if not candidates:
            raise ConfigEditError(
                f"{url} is neither a feed nor a page that links to one "
                '(no <link rel="alternate" type="application/rss+xml"> or Atom/JSON Feed); '
                "give the feed's own URL"
            )
        for candidate in candidates:
            try:
                found = _as_feed(_get(fetcher, candidate))
            except ConfigEditError:
                continue
            if found is not None:
                return FoundFeed(url=found.url, title=found.title, via_page=page.url)
        raise ConfigEditError(f"the feeds {url} links to cannot be read: {', '.join(candidates)}")
    finally:
        fetcher.close()


def _get(fetcher: Fetcher, url: str) -> Fetched:
    try:
        result = fetcher.fetch(SourceForPoll(name="add", url=url))
    except FetchError as exc:
        raise ConfigEditError(f"cannot fetch {url}: {exc.message}") from exc
    if not isinstance(result, Fetched):
        raise ConfigEditError(f"cannot fetch {url}: the server sent no content")
    return result


def _as_feed(response: Fetched) -> FoundFeed | None:
    try:
        parsed = parse_feed(response.content, content_type=response.content_type, url=response.url)
    except ParseError:
        return None
    return FoundFeed(url=response.url, title=parsed.title)


def alternate_links(content: bytes, base: str) -> list[str]:
    """Feed URLs an HTML page announces, in page order, absolute."""
    try:
        document = lxml_html.fromstring(content)
    except (ValueError, lxml_html.etree.ParserError):
        return []
    found: list[str] = []
    for link in document.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").split(";")[0].strip().lower()
        href = (link.get("href") or "").strip()
        if "alternate" in rel and kind in FEED_TYPES and href:
            absolute = urljoin(base, href)
            if urlsplit(absolute).scheme in ("http", "https") and absolute not in found:
                found.append(absolute)
    return found


def source_name(title: str | None, url: str, taken: Sequence[str]) -> str:
    """A name for the config: from the feed's title, else its host; unique."""
    host = (urlsplit(url).hostname or "feed").removeprefix("www.")
    base = _NOT_SLUG.sub("-", (title or host).lower()).strip("-")[:56] or "feed"
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}-{number}"
    return name


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments and layout kept
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _sources(document: CommentedMap) -> CommentedSeq:
    sources = document.get("sources")
    if sources is None:
        sources = CommentedSeq()
        document["sources"] = sources
    if not isinstance(sources, CommentedSeq):
        raise ConfigEditError("sources: in the config is not a list; fix it by hand first")
    return sources


def _load(path: Path) -> CommentedMap:
    try:
        document = _yaml().load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigEditError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if document is None:
        document = CommentedMap()
    if not isinstance(document, CommentedMap):
        raise ConfigEditError(f"{path} is not a mapping of settings; fix it by hand first")
    return document


def _save(path: Path, document: CommentedMap) -> None:
    """Write the edited config only if it passes ``check``; atomically."""
    buffer = io.StringIO()
    _yaml().dump(document, buffer)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".yaml")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(buffer.getvalue())
        load_settings(temporary)  # the same checks as `aggregator check`
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:  # a config that fails check among them: nothing is replaced
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def add_source(
    path: Path, *, url: str, name: str | None, title: str | None, tags: Sequence[str]
) -> dict[str, object]:
    """Append a source entry; return it."""
    document = _load(path)
    sources = _sources(document)
    taken = [str(entry.get("name")) for entry in sources if isinstance(entry, dict)]
    known = [str(entry.get("url")) for entry in sources if isinstance(entry, dict)]
    if url in known:
        raise ConfigEditError(f"{url} is in the config already")
    chosen = name or source_name(title, url, taken)
    if chosen in taken:
        raise ConfigEditError(f"a source named {chosen!r} exists already; pass --name")
    entry = CommentedMap()
    entry["name"] = chosen
    if title:
        entry["title"] = title
    entry["url"] = url
    if tags:
        entry["tags"] = list(tags)
    sources.append(entry)
    _save(path, document)
    return dict(entry)


def remove_source(path: Path, name: str) -> str:
    """Take the named source's entry out; return its URL."""
    document = _load(path)
    sources = _sources(document)
    for index, entry in enumerate(sources):
        if isinstance(entry, dict) and entry.get("name") == name:
            del sources[index]
            _save(path, document)
            return str(entry.get("url"))
    names = ", ".join(str(e.get("name")) for e in sources if isinstance(e, dict)) or "none"
    raise ConfigEditError(f"no source named {name!r} in {path} (sources: {names})")
