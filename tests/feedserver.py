"""A loopback HTTP server on port 0 that serves feed files like a polite publisher.

It answers conditional GETs (ETag from the file's bytes, Last-Modified from its
mtime) with 304, and logs every request so tests can see what the poller did.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".json": "application/feed+json",
    ".html": "text/html; charset=utf-8",
}


@dataclass
class RequestLog:
    entries: list[tuple[str, int]] = field(default_factory=list)  # (path, status)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, status: int) -> None:
        with self.lock:
            self.entries.append((path, status))

    def statuses(self) -> list[int]:
        with self.lock:
            return [status for _, status in self.entries]

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


@dataclass
class FeedServer:
    root: Path
    port: int
    log: RequestLog
    etags: bool = True  # False: validate with Last-Modified alone, as some servers do
    # Paths whose response stops half-way until the test releases them.
    stalled: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    stall_seen: threading.Event = field(default_factory=threading.Event)
    # Scripted answers: path -> (status, headers, body), instead of a file.
    scripted: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    # Paths answered one byte at a time, this many seconds apart (a dripping server).
    drip: dict[str, float] = field(default_factory=dict)
    # Hold every request this long (seconds) so concurrent ones overlap and are counted.
    hold: float = 0.0
    user_agents: list[str] = field(default_factory=list)
    # When each request for a path arrived (time.time()), whatever it was answered.
    arrivals: dict[str, list[float]] = field(default_factory=dict)
    _in_flight: dict[str, int] = field(default_factory=dict)
    peak_in_flight: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{name}"

    @contextmanager
    def counting(self, host: str) -> Iterator[None]:
        with self._lock:
            self._in_flight[host] = self._in_flight.get(host, 0) + 1
            self.peak_in_flight[host] = max(self.peak_in_flight.get(host, 0), self._in_flight[host])
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[host] -= 1


def _handler(
    root: Path, log: RequestLog, state: dict[str, FeedServer]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server = state["server"]
            with server._lock:
                server.arrivals.setdefault(self.path, []).append(time.time())
            server.user_agents.append(self.headers.get("User-Agent", ""))
            host = self.headers.get("Host", "").rsplit(":", 1)[0]
            # Counted while held, and no longer once answering starts: the client cannot
            # have moved on to its next request before that.
            with server.counting(host):
                if server.hold:
                    server.release.wait(server.hold)
            self._answer()

        def _answer(self) -> None:
            server = state["server"]
            if self.path in server.stalled:
                self._stall()
                return
            if self.path in server.drip:
                self._drip(server.drip[self.path])
                return
            if self.path in server.scripted:
                status, headers, body = server.scripted[self.path]
                self._reply(status, body, headers)
                return
            path = (root / self.path.lstrip("/").split("?")[0]).resolve()
            if root.resolve() not in path.parents or not path.is_file():
                self._reply(404, b"not found", {})
                return
            body = path.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            modified = formatdate(path.stat().st_mtime, usegmt=True)
            suffix = path.suffix
            headers = {"ETag": etag, "Last-Modified": modified}
            if suffix == ".gz":
                # A compressed capture is served the way its publisher did: gzip on the wire.
                headers["Content-Encoding"] = "gzip"
                suffix = Path(path.stem).suffix
            headers["Content-Type"] = CONTENT_TYPES.get(suffix, "application/octet-stream")
            if not state["server"].etags:
                del headers["ETag"]
            if _not_modified(self.headers, etag if state["server"].etags else None, path):
                self._reply(304, b"", headers)
                return
            self._reply(200, body, headers)

        def _stall(self) -> None:
            server = state["server"]
            log.add(self.path, 200)
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"<rss version='2.0'><channel><title>slow</title>")
            self.wfile.flush()
            server.stall_seen.set()
            server.release.wait(timeout=60)

        def _drip(self, every: float) -> None:
            log.add(self.path, 200)
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.end_headers()
            try:
                for byte in b"<rss version='2.0'><channel>" + b" " * 10_000:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    if state["server"].release.wait(every):
                        return
            except OSError:  # the client gave up, as it should
                return

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            log.add(self.path, status)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _not_modified(request_headers: Any, etag: str | None, path: Path) -> bool:
    """RFC 9110: If-None-Match decides when given; else If-Modified-Since."""
    if_none_match = request_headers.get("If-None-Match")
    if if_none_match is not None:
        return etag is not None and if_none_match == etag
    since = request_headers.get("If-Modified-Since")
    if since is None:
        return False
    try:
        return int(path.stat().st_mtime) <= parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError):
        return False


@contextmanager
def serve_directory(root: Path) -> Iterator[FeedServer]:
    log = RequestLog()
    state: dict[str, FeedServer] = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, log, state))
    server.daemon_threads = True
    state["server"] = FeedServer(root=root, port=server.server_address[1], log=log)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["server"]
    finally:
        state["server"].release.set()
        server.shutdown()
        server.server_close()
        thread.join()
