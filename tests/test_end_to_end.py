"""The whole product through its real CLI: poll real feeds from a loopback server,
serve the merged feeds, read them back as a subscriber's reader would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.atom_schema import atom_errors
from tests.conftest import DATA, item_and_credit_counts
from tests.feedserver import FeedServer, serve_directory

OUTLETS = {
    "bbc": "bbc-news-world.xml",
    "npr": "npr-world.xml",
    "aljazeera": "aljazeera-all.xml",
    "wapo": "washingtonpost-world.xml",
    "al-monitor": "al-monitor.xml",
    # A syndication mirror: every BBC article again, under another outlet's name.
    "bbc-mirror": "bbc-news-world.xml",
    "hostile-1": "hostile-item_content_encoded_script.xml",
    "hostile-2": "hostile-entry_content_onerror.xml",
    "hostile-3": "hostile-item_description_iframe.xml",
}
MIDDLE_EAST = ["aljazeera", "al-monitor"]


def _config(server: FeedServer, database_url: str) -> str:
    sources = "\n".join(
        f"  - name: {name}\n    title: {name.upper()} News\n    url: {server.url(file)}\n"
        f"    tags: [{'middle-east' if name in MIDDLE_EAST else 'world'}]"
        for name, file in OUTLETS.items()
    )
    return f"""\
database: {database_url}
server:
  listen: 127.0.0.1:0
  base_url: http://feeds.example.org
polling:
  allow_networks: [127.0.0.1/32]    # the loopback feed server; refused by default
sources:
{sources}
series:
  - slug: geneva
    title: Talks in Geneva
    match:
      keywords: [Geneva]
feeds:
  - slug: everything
    title: Every outlet
    limit: 1000
    merge: duplicates
  - slug: middle-east
    title: Middle East
    tags: [middle-east]
    limit: 1000
    merge: duplicates
  - slug: bbc-only
    title: BBC and its mirror
    sources: [bbc, bbc-mirror]
    limit: 1000
    merge: duplicates
  - slug: stories
    title: Every outlet, one entry per story
    limit: 1000
  - slug: bbc-copies
    title: BBC and its mirror, each copy
    sources: [bbc, bbc-mirror]
    limit: 1000
    merge: none
"""


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture
def feeds_dir(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    for file in set(OUTLETS.values()):
        shutil.copy(DATA / "e2e" / file, root / file)
    return root


class Served:
    def __init__(self, config: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aggregator.cli", "--config", str(config), "serve"],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stderr is not None
        self.lines: list[str] = []
        for line in self.process.stderr:
            self.lines.append(line)
            found = re.search(r"serving merged feeds on (http://\S+?)/?$", line.strip())
            if found:
                self.base = found.group(1)
                break
        else:
            raise AssertionError("server did not start:\n" + "".join(self.lines))
        # Keep draining stderr so the server never blocks on a full pipe.
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)
        self._drainer.join(timeout=5)
        assert self.process.stderr is not None
        self.process.stderr.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[type[Served]]:
    started: list[Served] = []

    class Tracked(Served):
        def __init__(self, config: Path) -> None:
            super().__init__(config)
            started.append(self)

    yield Tracked
    for server in started:
        server.stop()


def _expected_links(file: Path) -> set[str]:
    parsed = feedparser.parse(file.read_bytes())
    return {e.link for e in parsed.entries if e.get("link")}


def test_poll_serve_and_read_every_format(
    tmp_path: Path, feeds_dir: Path, database_url: str, served: type[Served]
) -> None:
    with serve_directory(feeds_dir) as server:
        config = tmp_path / "aggregator.yaml"
        config.write_text(_config(server, database_url))

        first = _cli(config, "poll")
        assert first.returncode == 0, first.stdout + first.stderr
        assert (
            f"{len(OUTLETS)} sources: {len(OUTLETS)} ok, 0 not modified, 0 failed" in first.stdout
        )
        item_count, credit_count = item_and_credit_counts(database_url)
        assert 0 < item_count < credit_count  # the mirror's items are credits, not new items
        stories = _stories(database_url)
        assert None not in stories, "poll stored items it did not assign to a story"
        # BBC, NPR, Al Jazeera and others of 2026-02-18 all reported Jesse Jackson's death.
        assert max(len(outlets) for outlets in stories.values()) >= 3

        app = served(config)
        with httpx.Client(base_url=app.base, timeout=30) as client:
            everything = _read_all_formats(client, "everything")
            assert len(everything["rss"].entries) == item_count
            links = [e.get("link") for e in everything["rss"].entries if e.get("link")]
            assert len(links) == len(set(links)), "an article appears twice"

            # merge: story (the default): one entry per story, each report listed in it.
            by_story = _read_all_formats(client, "stories")
            assert len(by_story["rss"].entries) == len(stories)
            widest = max(by_story["json"]["items"], key=lambda item: len(item["authors"]))
            assert len(widest["authors"]) >= 3
            assert widest["content_html"].count("<li>") >= 3

            bbc_links = _expected_links(feeds_dir / OUTLETS["bbc"])
            bbc_feed = _read_all_formats(client, "bbc-only")
            copies = _read_all_formats(client, "bbc-copies")  # merge: none
            assert len(copies["rss"].entries) == 2 * len(bbc_feed["rss"].entries)
            assert len({e.id for e in copies["atom"].entries}) == len(copies["atom"].entries)
            assert {e.link for e in bbc_feed["atom"].entries} == bbc_links
            for entry in bbc_feed["json"]["items"]:
                outlets = [o["source"] for o in entry["_aggregator"]["outlets"]]
                assert sorted(outlets) == ["bbc", "bbc-mirror"]
            for entry in bbc_feed["rss"].entries:
                assert "BBC News" in entry.description and "BBC-MIRROR News" in entry.description

            middle_east = _read_all_formats(client, "middle-east")
            me_links = _expected_links(feeds_dir / OUTLETS["aljazeera"]) | _expected_links(
                feeds_dir / OUTLETS["al-monitor"]
            )
            assert {e.link for e in middle_east["rss"].entries} == me_links

            raw = b"".join(
                client.get(f"/feeds/everything.{fmt}").content for fmt in ("rss", "atom", "json")
            ).lower()
            for hostile in (
                b"<script",
                b"&lt;script",
                b"onerror",
                b"<iframe",
                b"&lt;iframe",
                b"javascript:",
            ):
                assert hostile not in raw, hostile
            assert b"safe" in raw  # the hostile items themselves were kept, cleaned

            geneva = client.get("/series/geneva.json").json()
            assert geneva["items"]
            assert all("geneva" in json.dumps(i).lower() for i in geneva["items"])
            (listed,) = client.get("/series/").json()["series"]
            assert listed["slug"] == "geneva" and listed["auto"] is False
            # One feed entry per story; the counts are of what those stories hold.
            assert listed["stories"] == len(geneva["items"]) <= listed["items"]
            assert sum(o["items"] for o in listed["outlets"]) >= listed["items"]
            assert listed["feeds"]["json"].endswith("/series/geneva.json")

            index = client.get("/")
            assert index.status_code == 200
            assert index.text.count('rel="alternate"') >= 3 * 3
            assert client.get("/opml").status_code == 200
            assert client.get("/healthz").status_code == 200
            missing = client.get("/feeds/nope.rss")
            assert missing.status_code == 404

            etag = client.get("/feeds/everything.rss").headers["etag"]
            assert (
                client.get("/feeds/everything.rss", headers={"If-None-Match": etag}).status_code
                == 304
            )

            # Nothing changed upstream: every source answers 304 and nothing is written.
            server.log.clear()
            second = _cli(config, "poll")
            assert second.returncode == 0, second.stdout + second.stderr
            assert set(server.log.statuses()) == {304}
            assert f"0 ok, {len(OUTLETS)} not modified" in second.stdout
            assert item_and_credit_counts(database_url) == (item_count, credit_count)
            assert client.get("/feeds/everything.rss").headers["etag"] == etag

            # One outlet publishes two more items: exactly those are added.
            _add_items(feeds_dir / OUTLETS["npr"], 2)
            third = _cli(config, "poll")
            assert third.returncode == 0, third.stdout + third.stderr
            assert re.search(r"^npr\s+ok\s+\d+ items, 2 new$", third.stdout, re.M), third.stdout
            assert item_and_credit_counts(database_url) == (item_count + 2, credit_count + 2)
            # The server (another process) learns of it from the store's publication counter.
            after = _wait_for_change(client, "/feeds/everything.rss", etag)
            links_after = {e.get("link") for e in feedparser.parse(after.content).entries}
            assert {
                "https://example.org/npr-extra-0",
                "https://example.org/npr-extra-1",
            } <= links_after


def _stories(database_url: str) -> dict[int | None, set[str]]:
    """Story id -> the outlets that first brought its items."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT items.story_id, sources.name FROM items "
                    "JOIN sources ON sources.id = items.origin_source_id"
                )
            )
            found: dict[int | None, set[str]] = {}
            for story_id, name in rows:
                found.setdefault(story_id, set()).add(name)
            return found
    finally:
        engine.dispose()


def _read_all_formats(client: httpx.Client, slug: str) -> dict:
    out: dict = {}
    for fmt in ("rss", "atom"):
        response = client.get(f"/feeds/{slug}.{fmt}")
        assert response.status_code == 200, response.text
        parsed = feedparser.parse(response.content)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        if fmt == "atom":  # real outlets' items, as the store holds them
            assert atom_errors(response.content) == []
        out[fmt] = parsed
    response = client.get(f"/feeds/{slug}.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/feed+json")
    out["json"] = response.json()
    assert out["json"]["version"] == "https://jsonfeed.org/version/1.1"
    assert len(out["json"]["items"]) == len(out["rss"].entries) == len(out["atom"].entries)
    return out


def _add_items(path: Path, count: int) -> None:
    text = path.read_text(encoding="utf-8")
    extra = "".join(
        f"<item><title>Extra story {n}</title><link>https://example.org/npr-extra-{n}</link>"
        f"<guid>npr-extra-{n}</guid><pubDate>Wed, 18 Feb 2026 03:0{n}:00 GMT</pubDate>"
        f"<description>Extra {n}</description></item>"
        for n in range(count)
    )
    head, sep, tail = text.partition("<item>")
    assert sep, "feed has no <item>"
    path.write_text(head + extra + sep + tail, encoding="utf-8")


def _polled(tmp_path: Path, server: FeedServer, name: str, server_keys: str = "") -> Path:
    """A config of every outlet on its own SQLite store (``server_keys``: more lines of
    its ``server:`` section), polled once."""
    config = tmp_path / "aggregator.yaml"
    text = _config(server, f"sqlite:///{tmp_path / name}")
    config.write_text(text.replace("server:\n", f"server:\n{server_keys}"))
    polled = _cli(config, "poll")
    assert polled.returncode == 0, polled.stdout + polled.stderr
    return config


def _wait_for_change(client: httpx.Client, path: str, etag: str) -> httpx.Response:
    """The feed once the server (another process) serves it anew: within a second (250 ms
    between counter reads, then at most 0.5 s of the copy from before)."""
    deadline = time.monotonic() + 10
    while (response := client.get(path)).headers["etag"] == etag:
        assert time.monotonic() < deadline, f"the server kept {path} from before"
    return response


# --- a real feed reader -----------------------------------------------------------------


def _newsboat(home: Path, urls: list[str]) -> dict[str, set[tuple[str, str]]]:
    """``newsboat -x reload`` with its own url, cache and config files; the (title,
    link) of every article its cache then holds, by feed URL."""
    newsboat = shutil.which("newsboat")
    assert newsboat, "newsboat is missing: run bash .ci/test-tools (apt-get install newsboat)"
    (home / "urls").write_text("\n".join(urls) + "\n", encoding="utf-8")
    (home / "config").write_text("", encoding="utf-8")
    done = subprocess.run(
        [newsboat, "-u", "urls", "-c", "cache.db", "-C", "config", "-x", "reload"],
        cwd=home,
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    import sqlite3

    with sqlite3.connect(home / "cache.db") as cache:
        rows = cache.execute("SELECT feedurl, title, url FROM rss_item").fetchall()
    held: dict[str, set[tuple[str, str]]] = {url: set() for url in urls}
    for feed_url, title, link in rows:
        held[feed_url].add((title, link))
    return held


def _articles(client: httpx.Client, path: str) -> set[tuple[str, str]]:
    """(title, link) of every entry a feed serves, read with feedparser."""
    parsed = feedparser.parse(client.get(path).content)
    return {(entry.title, entry.get("link", "")) for entry in parsed.entries}


def test_newsboat_subscribes_and_gets_only_the_new_entries_on_reload(
    tmp_path: Path, feeds_dir: Path, served: type[Served]
) -> None:
    with serve_directory(feeds_dir) as server:
        config = _polled(tmp_path, server, "reader.db")
        aggregator = served(config)
        # Two feeds whose entries differ: newsboat keeps one article per guid, whichever
        # feed it came from (the same feed in RSS and Atom shares its entries' ids).
        feeds = {
            "rss": f"{aggregator.base}/feeds/everything.rss",
            "atom": f"{aggregator.base}/feeds/bbc-copies.atom",
        }
        home = tmp_path / "newsboat"
        home.mkdir()
        with httpx.Client(base_url=aggregator.base, timeout=30) as client:
            expected = {fmt: _articles(client, url) for fmt, url in feeds.items()}
            assert len(expected["rss"]) > 50
            held = _newsboat(home, list(feeds.values()))
            for fmt, url in feeds.items():
                assert held[url] == expected[fmt]  # exactly the entries, titles and links

            etag = client.get("/feeds/everything.rss").headers["etag"]
            _add_items(feeds_dir / OUTLETS["npr"], 2)
            assert _cli(config, "poll").returncode == 0
            _wait_for_change(client, "/feeds/everything.rss", etag)
            again = _newsboat(home, list(feeds.values()))
        new = {("Extra story 0", "https://example.org/npr-extra-0"),
               ("Extra story 1", "https://example.org/npr-extra-1")}  # fmt: skip
        assert again[feeds["rss"]] - held[feeds["rss"]] == new  # those two, nothing else
        assert again[feeds["atom"]] == held[feeds["atom"]]  # NPR is not in the BBC's feed
        assert all(held[url] <= again[url] for url in feeds.values())


def test_export_writes_a_site_whose_links_all_resolve(
    tmp_path: Path, feeds_dir: Path, served: type[Served]
) -> None:
    with serve_directory(feeds_dir) as server:
        config = _polled(tmp_path, server, "export.db")
        out = tmp_path / "site"
        exported = _cli(config, "export", "--out", str(out))
        assert exported.returncode == 0, exported.stderr
        assert exported.stdout.startswith("wrote ")
        aggregator = served(config)
        with httpx.Client(base_url=aggregator.base, timeout=30) as client:
            for path in ("feeds/everything.rss", "feeds/stories.json", "series/geneva.atom"):
                # The same bytes the server sends (these feeds fit on one page).
                assert (out / path).read_bytes() == client.get(f"/{path}").content
    base = "http://feeds.example.org/"
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    for kind, slug in [("feeds", "everything"), ("feeds", "bbc-copies"), ("series", "geneva")]:
        assert {f"{kind}/{slug}.{fmt}" for fmt in ("rss", "atom", "json")} <= files
        assert atom_errors((out / f"{kind}/{slug}.atom").read_bytes()) == []
    assert {"index.html", "opml", "series/_index.json"} <= files
    # Every address of the site that the index or the OPML names is a file of the export.
    named = set()
    for document in ("index.html", "opml"):
        text = (out / document).read_text(encoding="utf-8")
        named |= {href.split("?")[0] for href in re.findall(rf'"{re.escape(base)}([^"#]*)"', text)}
    named.discard("")  # the index itself
    assert named and named <= files, sorted(named - files)
    assert not any(name.startswith(".") for name in files)  # no temporary file left


# --- WebSub ---------------------------------------------------------------------------


class _Hub:
    """A loopback WebSub hub that records the publish pings it gets."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs

        hub = self
        self.pings: list[str] = []
        self.status = 202

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                if form.get("hub.mode") == ["publish"] and hub.status < 300:
                    hub.pings += form["hub.url"]
                self.send_response(hub.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hub"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def take(self) -> set[str]:
        pings, self.pings = set(self.pings), []
        return pings

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_the_hub_is_told_of_exactly_the_feeds_a_poll_changed(
    tmp_path: Path, feeds_dir: Path, served: type[Served]
) -> None:
    hub = _Hub()
    try:
        with serve_directory(feeds_dir) as server:
            config = _polled(tmp_path, server, "websub.db", f"  websub_hub: {hub.url}\n")
            every = {
                f"http://feeds.example.org/{kind}/{slug}.{fmt}"
                for kind, slug in [("feeds", "everything"), ("feeds", "middle-east"),
                                   ("feeds", "bbc-only"), ("feeds", "stories"),
                                   ("feeds", "bbc-copies"), ("series", "geneva")]
                for fmt in ("rss", "atom", "json")
            }  # fmt: skip
            assert hub.take() == every  # all new: every feed changed

            aggregator = served(config)
            with httpx.Client(base_url=aggregator.base, timeout=30) as client:
                atom = feedparser.parse(client.get("/feeds/everything.atom").content)
                assert ("hub", hub.url) in {(link.rel, link.href) for link in atom.feed.links}
                rss = client.get("/feeds/everything.rss").text
                assert f'href="{hub.url}" rel="hub"' in rss
                assert client.get("/feeds/everything.json").json()["hubs"] == [
                    {"type": "WebSub", "url": hub.url}
                ]

            assert _cli(config, "poll").returncode == 0  # nothing changed upstream
            assert hub.take() == set()

            _add_items(feeds_dir / OUTLETS["npr"], 2)  # NPR: in everything, not the BBC's
            hub.status = 503  # the hub is down: polling goes on, the hub is told later
            assert _cli(config, "poll").returncode == 0
            hub.status = 202
            assert _cli(config, "poll").returncode == 0
            changed = hub.take()
            assert changed == {url for url in every if "/everything." in url or "/stories." in url}
    finally:
        hub.stop()


def test_the_static_copy_follows_every_poll_that_changes_a_feed(
    tmp_path: Path, feeds_dir: Path
) -> None:
    static = tmp_path / "public"
    with serve_directory(feeds_dir) as server:
        config = _polled(tmp_path, server, "static.db", "  static_dir: public\n")
        everything = static / "feeds" / "everything.rss"
        bbc = static / "feeds" / "bbc-only.atom"
        first = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in (everything, bbc)}
        assert atom_errors(first[bbc][0]) == []
        # A feed since removed from the config, a killed export's temporary file, and a
        # file of the site's owner beside the copy.
        removed, leftover = static / "feeds" / "removed.rss", static / "feeds" / ".x.rss.tmp"
        removed.write_text("old")
        leftover.write_text("half")
        (static / "robots.txt").write_text("User-agent: *")
        _add_items(feeds_dir / OUTLETS["npr"], 2)
        assert _cli(config, "poll").returncode == 0
        assert not removed.exists() and not leftover.exists()
        assert (static / "robots.txt").exists()
    links = {e.get("link") for e in feedparser.parse(everything.read_bytes()).entries}
    assert "https://example.org/npr-extra-0" in links  # rewritten with the new items
    assert (bbc.read_bytes(), bbc.stat().st_mtime_ns) == first[bbc]  # unchanged: untouched


# --- a real browser -----------------------------------------------------------------


def test_the_index_loads_in_headless_chromium_without_console_errors(
    tmp_path: Path, feeds_dir: Path, served: type[Served]
) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: run bash .ci/test-tools (apt-get install chromium)"
    with serve_directory(feeds_dir) as server:
        config = _polled(tmp_path, server, "browser.db")
        aggregator = served(config)
        index = httpx.get(f"{aggregator.base}/", timeout=30).text
        assert '<section id="sources">' in index and "hostile-1" in index  # source health
        story = re.search(r'href="http://feeds\.example\.org(/stories/\d+)"', index)
        assert story is not None
        screenshots = []
        for path in ("/", story.group(1)):
            shot = tmp_path / f"phone{path.replace('/', '-')}.png"
            done = subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--enable-logging=stderr", "--v=0",
                 "--window-size=390,844",  # a phone
                 f"--screenshot={shot}", f"{aggregator.base}{path}"],
                capture_output=True, text=True, timeout=120,
                env={**os.environ, "HOME": str(tmp_path)},
            )  # fmt: skip
            assert done.returncode == 0, done.stderr[-2000:]
            console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
            assert console == [], console  # no script, no error: nothing to log
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
            screenshots.append(shot)
        keep = os.environ.get("AGGREGATOR_SCREENSHOTS")  # where CI may keep them
        if keep:
            for shot in screenshots:
                shutil.copy(shot, Path(keep) / shot.name)


def test_an_exported_feed_links_its_pages_by_the_files_that_hold_them(
    tmp_path: Path, feeds_dir: Path
) -> None:
    with serve_directory(feeds_dir) as server:
        config = tmp_path / "aggregator.yaml"
        small = "  - slug: small\n    title: Small pages\n    limit: 10\n    merge: none\n"
        # feeds: is the config's last list: the small feed joins it
        config.write_text(_config(server, f"sqlite:///{tmp_path / 'pages.db'}") + small)
        assert _cli(config, "poll").returncode == 0
        out = tmp_path / "site"
        assert _cli(config, "export", "--out", str(out)).returncode == 0
    base = "http://feeds.example.org/"
    seen: list[str] = []
    path: str | None = "feeds/small.atom"
    while path is not None:  # a reader following next links, from file to file
        document = (out / path).read_bytes()
        assert atom_errors(document) == []
        parsed = feedparser.parse(document)
        seen += [entry.id for entry in parsed.entries]
        following = [link.href for link in parsed.feed.links if link.rel == "next"]
        path = following[0].removeprefix(base) if following else None
    import sqlite3

    with sqlite3.connect(tmp_path / "pages.db") as store:
        (copies,) = store.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT item_id, source_id FROM item_sources)"
        ).fetchone()
    assert len(seen) == len(set(seen)) == copies  # every outlet's copy once, over pages
    assert (out / "feeds/small.page2.rss").exists() and (out / "feeds/small.page2.json").exists()
