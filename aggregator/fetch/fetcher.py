"""Conditional GET over httpx, and ``file:`` sources read from disk.

Third-party errors (httpx, OS) are translated into ``FetchError`` here, and only here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx

from aggregator import __version__
from aggregator.exceptions import FetchError, FetchTimeout, FetchTooLarge, HTTPStatusError
from aggregator.types import Fetched, FetchResult, NotModified, SourceForPoll

MAX_REDIRECTS = 5
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, "
    "application/json;q=0.7, */*;q=0.5"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchLimits:
    timeout: float = 30.0  # seconds, for connecting and for the whole response
    max_bytes: int = 10 * 1000**2
    user_agent: str = f"aggregator/{__version__} (feed aggregator)"


class Fetcher:
    """Fetches sources; one instance is shared by every poll (it pools connections)."""

    def __init__(self, limits: FetchLimits, *, transport: httpx.BaseTransport | None = None):
        self.limits = limits
        self._client = httpx.Client(
            timeout=httpx.Timeout(limits.timeout),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            headers={"User-Agent": limits.user_agent, "Accept": ACCEPT},
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
                if response.status_code == 304:
                    return NotModified(
                        url=final_url,
                        etag=response.headers.get("ETag") or source.etag,
                        last_modified=response.headers.get("Last-Modified") or source.last_modified,
                    )
                if response.status_code >= 400 or response.status_code < 200:
                    raise HTTPStatusError(
                        source.url,
                        response.status_code,
                        f"HTTP {response.status_code} {response.reason_phrase}".strip(),
                    )
                content = self._read_capped(source.url, response, deadline)
                return Fetched(
                    url=final_url,
                    status_code=response.status_code,
                    content=content,
                    content_type=response.headers.get("Content-Type"),
                    headers=dict(response.headers),
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                )
        except httpx.TimeoutException as exc:
            raise FetchTimeout(source.url, f"timed out after {self.limits.timeout:g}s") from exc
        except httpx.TooManyRedirects as exc:
            raise FetchError(source.url, f"more than {MAX_REDIRECTS} redirects") from exc
        except httpx.ConnectError as exc:
            raise FetchError(source.url, f"cannot connect: {exc}") from exc
        except httpx.HTTPError as exc:
            raise FetchError(source.url, f"{type(exc).__name__}: {exc}") from exc

    def _read_capped(self, url: str, response: httpx.Response, deadline: float) -> bytes:
        # iter_bytes() yields decoded bytes, so the cap counts what gzip expands to.
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.limits.max_bytes:
                raise FetchTooLarge(url, f"response is larger than {self.limits.max_bytes} bytes")
            if time.monotonic() > deadline:
                raise FetchTimeout(url, f"response took longer than {self.limits.timeout:g}s")
            chunks.append(chunk)
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
