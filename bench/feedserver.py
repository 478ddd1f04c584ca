"""The benchmark's feed server, run as its own process: ``python feedserver.py ROOT [--hosts K]``.

Serves every file in ROOT from memory at ``/<filename>`` on K loopback addresses
(127.0.0.1 .. 127.0.0.K, each on its own free port), so a per-host concurrency limit in a
client sees K hosts as it would on the real web. Responses carry a strong ETag (a hash of
the bytes) and Last-Modified (the file's mtime); conditional GETs are answered 304
(If-None-Match wins over If-Modified-Since, RFC 9110). ``*.gz`` files are sent with
``Content-Encoding: gzip``.

Control routes (any address): ``POST /_reload`` re-reads ROOT; ``GET /_stats`` returns
request counts and this process's CPU seconds as JSON, ``GET /_stats?reset=1`` also zeroes
the counts. When ready it prints one JSON line ``{"hosts": [[ip, port], ...]}`` on stdout.
It exits when its stdin closes (so it never outlives the harness) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import signal
import sys
import threading
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

CONTENT_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".rdf": "application/rdf+xml",
    ".xml": "application/xml",
    ".json": "application/json",
    ".opml": "text/x-opml",
}


@dataclass(frozen=True, slots=True)
class Entry:
    body: bytes
    etag: str
    last_modified: str
    mtime: int
    content_type: str
    gzip: bool


class Catalog:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries: dict[str, Entry] = {}
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.reload()

    def reload(self) -> int:
        entries: dict[str, Entry] = {}
        for path in sorted(self.root.iterdir()):
            if not path.is_file():
                continue
            body = path.read_bytes()
            mtime = int(path.stat().st_mtime)
            gz = path.suffix == ".gz"
            suffix = Path(path.stem).suffix if gz else path.suffix
            entries["/" + path.name] = Entry(
                body=body,
                etag='"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"',
                last_modified=formatdate(mtime, usegmt=True),
                mtime=mtime,
                content_type=CONTENT_TYPES.get(suffix.lower(), "application/octet-stream"),
                gzip=gz,
            )
        self.entries = entries  # one assignment: readers see the old or the new catalog
        return len(entries)

    def count(self, key: str) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def stats(self, reset: bool) -> dict[str, object]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with self.lock:
            counts = dict(self.counts)
            if reset:
                self.counts.clear()
        return {
            "counts": counts,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "maxrss_mb": round(usage.ru_maxrss / 1024, 1),
            "files": len(self.entries),
        }


def _not_modified(entry: Entry, headers: object) -> bool:
    get = headers.get  # type: ignore[attr-defined]
    inm = get("If-None-Match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or entry.etag in tags
    ims = get("If-Modified-Since")
    if ims:
        try:
            return int(parsedate_to_datetime(ims).timestamp()) >= entry.mtime
        except (TypeError, ValueError):
            return False
    return False


def make_handler(catalog: Catalog) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "bench-feedserver/1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if status != HTTPStatus.NOT_MODIFIED:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/_stats":
                reset = parse_qs(url.query).get("reset") == ["1"]
                body = json.dumps(catalog.stats(reset)).encode()
                self._send(200, body, {"Content-Type": "application/json"})
                return
            entry = catalog.entries.get(url.path)
            if entry is None:
                catalog.count("404")
                self._send(404, b"not found\n", {"Content-Type": "text/plain"})
                return
            validators = {
                "ETag": entry.etag,
                "Last-Modified": entry.last_modified,
                "Cache-Control": "no-cache",
            }
            if _not_modified(entry, self.headers):
                catalog.count("304")
                self._send(304, headers=validators)
                return
            catalog.count("200")
            headers = {"Content-Type": entry.content_type, **validators}
            if entry.gzip:
                headers["Content-Encoding"] = "gzip"
            self._send(200, entry.body, headers)

        do_HEAD = do_GET

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if urlsplit(self.path).path == "/_reload":
                files = catalog.reload()
                self._send(200, json.dumps({"files": files}).encode())
            else:
                self._send(404, b"not found\n")

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--hosts", type=int, default=1, help="listen on 127.0.0.1..127.0.0.K")
    args = parser.parse_args()
    catalog = Catalog(args.root)
    handler = make_handler(catalog)
    servers = [Server((f"127.0.0.{i}", 0), handler) for i in range(1, args.hosts + 1)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    hosts = [list(s.server_address[:2]) for s in servers]
    print(json.dumps({"hosts": hosts, "files": len(catalog.entries)}), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    # Block until the harness closes our stdin (it exited, or is done with us), then leave
    # at once: nothing here needs a graceful shutdown.
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
