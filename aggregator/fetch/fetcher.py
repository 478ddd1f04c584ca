"""Conditional GET over httpx, and ``file:`` sources read from disk.

Third-party errors (httpx, OS) are translated into ``FetchError`` here, and only here.
"""

from __future__ import annotations

import ipaddress
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx

from aggregator import __version__
from aggregator.exceptions import (
    FetchError,
    FetchRefused,
    FetchTimeout,
    FetchTooLarge,
    HTTPStatusError,
    SourceGone,
)
from aggregator.fetch.guard import AddressGuard, BlockedAddressError
from aggregator.fetch.headers import hints_from_headers
from aggregator.fetch.transport import GuardedTransport
from aggregator.types import Fetched, FetchResult, NotModified, SourceForPoll

MAX_REDIRECTS = 5
PERMANENT_REDIRECTS = frozenset({301, 308})
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, "
    "application/json;q=0.7, */*;q=0.5"
)
# A dripping server is cut off at the deadline, checked between reads; one read may
# take this long at most, so no fetch outlives its deadline by more than this.
MAX_READ_WAIT = 10.0


DRAIN_BYTES = 64 * 1024


def _drain(response: httpx.Response) -> None:
    """Read a body we do not use (none for a 304, a short error page), so the connection
    goes back to the pool: one closed unread is closed for good, and the next poll of the
    host pays a new connection. A longer body is left, and its connection closed."""
    read = 0
    try:
        for chunk in response.iter_raw(DRAIN_BYTES):
            read += len(chunk)
            if read >= DRAIN_BYTES:
                return
    except httpx.TransportError:
        return  # the server went: the answer stands


def user_agent(contact: str | None = None) -> str:
    """A polite User-Agent: who we are, and how the publisher can reach the operator."""
    reach = f"; +{contact}" if contact else ""
    return f"aggregator/{__version__} (feed aggregator{reach})"


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchLimits:
    timeout: float = 30.0  # seconds, for connecting and for the whole response
    max_bytes: int = 10 * 1000**2
    user_agent: str = user_agent()
    allow_networks: tuple[str, ...] = ()  # ranges the SSRF guard lets through
    max_hosts: int = 100  # hosts whose idle connections are kept between polls


class Fetcher:
    """Fetches sources; one instance is shared by every poll (it pools connections)."""

    def __init__(self, limits: FetchLimits, *, transport: httpx.BaseTransport | None = None):
        self.limits = limits
        if transport is None:
            transport = GuardedTransport(
                AddressGuard(_networks(limits.allow_networks)), max_hosts=limits.max_hosts
            )
        self._client = httpx.Client(
            timeout=httpx.Timeout(limits.timeout, read=min(limits.timeout, MAX_READ_WAIT)),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            headers={
                "User-Agent": limits.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": "gzip, deflate",
            },
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def fetch(self, source: SourceForPoll) -> FetchResult:
        scheme = urlsplit(source.url).scheme
        if scheme == "file":
            return self._read_file(source)
        if scheme in ("http", "https"):
            return self._get(source)
        raise FetchError(source.url, f"unsupported URL scheme {scheme!r}")

    def _get(self, source: SourceForPoll) -> FetchResult:
        headers = {}
        if source.etag:
            headers["If-None-Match"] = source.etag
        if source.last_modified:
            headers["If-Modified-Since"] = source.last_modified
        deadline = time.monotonic() + self.limits.timeout
        try:
            with self._client.stream("GET", source.url, headers=headers) as response:
                final_url = str(response.url)
                moved_to = permanent_target(response)
                hints = hints_from_headers(response.headers)
                if response.status_code == 304:
                    _drain(response)
                    return NotModified(
                        url=final_url,
                        etag=response.headers.get("ETag") or source.etag,
                        last_modified=response.headers.get("Last-Modified") or source.last_modified,
                        hints=hints,
                        moved_to=moved_to,
                    )
                if response.status_code >= 400 or response.status_code < 200:
                    _drain(response)
                    status = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                    error = SourceGone if response.status_code == 410 else HTTPStatusError
                    raise error(source.url, response.status_code, status, hints)
                content = self._read_capped(source.url, response, deadline)
                return Fetched(
                    url=final_url,
                    status_code=response.status_code,
                    content=content,
                    content_type=response.headers.get("Content-Type"),
                    headers=dict(response.headers),
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    hints=hints,
                    moved_to=moved_to,
                )
        except httpx.TimeoutException as exc:
            raise FetchTimeout(source.url, f"timed out after {self.limits.timeout:g}s") from exc
        except httpx.TooManyRedirects as exc:
            raise FetchError(source.url, f"more than {MAX_REDIRECTS} redirects") from exc
        except httpx.ConnectError as exc:
            if isinstance(exc.__cause__, BlockedAddressError):
                raise FetchRefused(source.url, str(exc)) from exc
            raise FetchError(source.url, f"cannot connect: {exc}") from exc
        except httpx.HTTPError as exc:
            raise FetchError(source.url, f"{type(exc).__name__}: {exc}") from exc
        except httpx.InvalidURL as exc:
            raise FetchError(source.url, f"invalid URL: {exc}") from exc

    def _read_capped(self, url: str, response: httpx.Response, deadline: float) -> bytes:
        """The body, decompressed here with a bound on the output of every step.

        httpx would inflate a whole compressed chunk at once (64 KB of gzip can hold
        64 MB); decompressing ourselves keeps memory within ``max_bytes``.
        """
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        raws = response.iter_raw()
        inflate = _Inflater.for_encoding(url, encoding, self.limits.max_bytes)
        chunks: list[bytes] = []
        size = 0
        for raw in raws:
            for chunk in inflate.feed(raw):
                size += len(chunk)
                if size > self.limits.max_bytes:
                    raise FetchTooLarge(
                        url, f"response is larger than {self.limits.max_bytes} bytes"
                    )
                chunks.append(chunk)
            if time.monotonic() > deadline:
                raise FetchTimeout(url, f"response took longer than {self.limits.timeout:g}s")
        return b"".join(chunks)

    def _read_file(self, source: SourceForPoll) -> FetchResult:
        """A file's modification time plays the part of Last-Modified."""
        url = source.url
        path = Path(url2pathname(unquote(urlsplit(url).path)))
        try:
            with path.open("rb") as handle:
                modified = formatdate(path.stat().st_mtime, usegmt=True)
                if modified == source.last_modified:
                    return NotModified(url=url, last_modified=modified)
                content = handle.read(self.limits.max_bytes + 1)
        except OSError as exc:
            raise FetchError(url, f"cannot read {path}: {exc.strerror or exc}") from exc
        if len(content) > self.limits.max_bytes:
            raise FetchTooLarge(url, f"file is larger than {self.limits.max_bytes} bytes")
        return Fetched(
            url=url, status_code=200, content=content, content_type=None, last_modified=modified
        )


class _Inflater:
    """Content-Encoding undone in steps of bounded size: identity, gzip or deflate."""

    def __init__(self, url: str, decompressor: Any | None, step: int) -> None:
        self.url = url
        self.decompressor = decompressor
        self.step = step

    @classmethod
    def for_encoding(cls, url: str, encoding: str, limit: int) -> _Inflater:
        step = min(limit + 1, 1 << 20)
        if encoding in ("", "identity"):
            return cls(url, None, step)
        if encoding in ("gzip", "x-gzip", "deflate"):
            # 32 + 15: a gzip or zlib header, detected; bare deflate is handled in feed().
            return cls(url, zlib.decompressobj(32 + zlib.MAX_WBITS), step)
        raise FetchError(url, f"unsupported Content-Encoding {encoding!r}")

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self.decompressor is None:
            yield data
            return
        pending = data
        while pending:
            try:
                out = self.decompressor.decompress(pending, self.step)
            except zlib.error:
                if self.decompressor.unused_data or self.decompressor.eof:
                    raise FetchError(self.url, "corrupt compressed response") from None
                # Some servers send bare deflate for "deflate": start over without header.
                self.decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
                try:
                    out = self.decompressor.decompress(pending, self.step)
                except zlib.error as exc:
                    raise FetchError(self.url, f"corrupt compressed response: {exc}") from exc
            if out:
                yield out
            pending = self.decompressor.unconsumed_tail


def permanent_target(response: httpx.Response) -> str | None:
    """Where the redirects that were permanent (301/308), from the start, lead.

    A temporary redirect (302/303/307) ends the permanent part of the chain: the
    publisher may point elsewhere tomorrow, so we keep asking the URL before it.
    """
    moved_to = None
    hops = [*response.history, response]
    for hop, following in pairwise(hops):
        if hop.status_code not in PERMANENT_REDIRECTS:
            break
        moved_to = str(following.request.url)
    return moved_to


def _networks(
    ranges: Sequence[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(r, strict=False) for r in ranges)
