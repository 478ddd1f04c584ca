"""Fetcher unit tests through httpx.MockTransport (end-to-end tests use a real server)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import httpx
import pytest

from aggregator.exceptions import FetchError, FetchTooLarge, HTTPStatusError
from aggregator.fetch import Fetcher, FetchLimits
from aggregator.types import Fetched, NotModified, SourceForPoll

FEED = b"<rss version='2.0'><channel><title>t</title></channel></rss>"


def _fetcher(handler, **limits) -> Fetcher:
    """A fetcher whose transport answers with ``handler``'s responses, streamed as a real
    server's are (httpx reads a mock's bytes body at once, which no network does)."""

    def streamed(request: httpx.Request) -> httpx.Response:
        response = handler(request)
        raw = b"".join(response.stream)  # the body as sent, still compressed
        return httpx.Response(response.status_code, headers=response.headers, content=iter([raw]))

    return Fetcher(FetchLimits(**limits), transport=httpx.MockTransport(streamed))


def test_conditional_get_sends_validators_and_keeps_them_on_304() -> None:
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.headers)
        return httpx.Response(304)

    source = SourceForPoll(name="a", url="https://a.example/feed", etag='"e1"', last_modified="X")
    result = _fetcher(handler).fetch(source)
    assert result == NotModified(url="https://a.example/feed", etag='"e1"', last_modified="X")
    assert seen["if-none-match"] == '"e1"'
    assert seen["if-modified-since"] == "X"
    assert seen["user-agent"].startswith("aggregator/")


def test_200_returns_bytes_and_new_validators() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=FEED,
            headers={
                "ETag": '"e2"',
                "Last-Modified": "Wed, 18 Feb 2026 02:00:00 GMT",
                "Content-Type": "application/rss+xml",
            },
        )

    result = _fetcher(handler).fetch(SourceForPoll(name="a", url="https://a.example/feed"))
    assert isinstance(result, Fetched)
    assert (result.content, result.etag, result.content_type) == (
        FEED,
        '"e2"',
        "application/rss+xml",
    )


def test_redirects_are_followed_and_reported() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(301, headers={"Location": "https://a.example/new"})
        return httpx.Response(200, content=FEED)

    result = _fetcher(handler).fetch(SourceForPoll(name="a", url="https://a.example/old"))
    assert isinstance(result, Fetched)
    assert result.url == "https://a.example/new"


def test_redirect_loops_stop() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://a.example/loop"})

    with pytest.raises(FetchError, match="redirects"):
        _fetcher(handler).fetch(SourceForPoll(name="a", url="https://a.example/loop"))


def test_error_status_is_a_fetch_error_with_its_code() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    with pytest.raises(HTTPStatusError) as caught:
        _fetcher(handler).fetch(SourceForPoll(name="a", url="https://a.example/feed"))
    assert caught.value.status_code == 404
    assert "HTTP 404 Not Found" in str(caught.value)


def test_size_cap_counts_decompressed_bytes() -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"})

    assert len(bomb) < 100_000
    with pytest.raises(FetchTooLarge):
        _fetcher(handler, max_bytes=1_000_000).fetch(
            SourceForPoll(name="a", url="https://a.example/feed")
        )


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_body_under_the_cap_comes_back_decompressed(encoding: str) -> None:
    body = FEED * 1000
    sent = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=sent, headers={"Content-Encoding": encoding})

    result = _fetcher(handler, max_bytes=len(body)).fetch(
        SourceForPoll(name="a", url="https://a.example/feed")
    )
    assert isinstance(result, Fetched) and result.content == body


def test_file_sources_use_modification_time_as_validator(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    fetcher = _fetcher(lambda request: httpx.Response(500))
    first = fetcher.fetch(SourceForPoll(name="f", url=path.as_uri()))
    assert isinstance(first, Fetched)
    assert first.content == FEED
    again = fetcher.fetch(
        SourceForPoll(name="f", url=path.as_uri(), last_modified=first.last_modified)
    )
    assert isinstance(again, NotModified)


def test_missing_file_is_a_readable_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="cannot read"):
        _fetcher(lambda r: httpx.Response(500)).fetch(
            SourceForPoll(name="f", url=(tmp_path / "nope.xml").as_uri())
        )


def test_connection_refused_is_a_fetch_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(FetchError, match="cannot connect"):
        _fetcher(handler).fetch(SourceForPoll(name="a", url="https://a.example/feed"))


def test_a_refused_or_unresolvable_host_reads_plainly() -> None:
    """What a source's status says: the reason, not urllib3's connection repr."""
    import socket

    with socket.socket() as probe:  # a port nobody listens on (bound, then let go)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fetcher = Fetcher(FetchLimits(allow_networks=("127.0.0.1/32",)))
    try:
        with pytest.raises(FetchError) as refused:
            fetcher.fetch(SourceForPoll(name="a", url=f"http://127.0.0.1:{port}/feed"))
        assert refused.value.message == "cannot connect: Connection refused"
        with pytest.raises(FetchError) as unresolvable:
            fetcher.fetch(SourceForPoll(name="b", url="http://no-such-host.invalid/feed"))
        assert unresolvable.value.message.startswith(
            "cannot connect: cannot resolve no-such-host.invalid: "
        )
        assert "Connection(" not in unresolvable.value.message
    finally:
        fetcher.close()


def test_304s_and_error_pages_leave_the_connection_open_for_the_next_poll() -> None:
    """A response closed unread takes its connection with it; a poller that drains the
    empty 304 (or a short error page) polls a host's feeds over one connection."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    connections = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            connections.append(self.client_address)
            super().setup()

        def do_GET(self) -> None:
            if self.path == "/missing":
                body = b"not here\n"
                self.send_response(404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(304)
            self.send_header("ETag", '"e1"')
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        fetcher = Fetcher(FetchLimits(allow_networks=("127.0.0.1/32",)))
        for _ in range(3):
            result = fetcher.fetch(SourceForPoll(name="a", url=f"{base}/feed", etag='"e1"'))
            assert isinstance(result, NotModified)
        with pytest.raises(HTTPStatusError):
            fetcher.fetch(SourceForPoll(name="b", url=f"{base}/missing"))
        fetcher.fetch(SourceForPoll(name="a", url=f"{base}/feed", etag='"e1"'))
        fetcher.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert len(connections) == 1
