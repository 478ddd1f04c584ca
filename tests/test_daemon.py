"""The daemon as a user runs it: `aggregator run` on the bundled demo config."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import feedparser
import httpx

from aggregator.settings import load_settings
from aggregator.store import Store
from tests.conftest import REPO
from tests.feedserver import serve_directory

DEMO = REPO / "config" / "demo.yaml"


class LogWatcher:
    """Collects a subprocess's stderr lines and waits for patterns in them."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._process = process
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def close(self) -> None:
        """Once the process has ended: the rest of its log read, the pipe closed."""
        self._thread.join(timeout=10)
        if self._process.stderr is not None:
            self._process.stderr.close()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 60) -> list[re.Match[str]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [m for line in self.lines if (m := re.search(pattern, line))]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    raise AssertionError(
                        f"{count} x {pattern!r} not seen in the log:\n" + "".join(self.lines)
                    )
                self._changed.wait(remaining)


def start_daemon(config: Path) -> tuple[subprocess.Popen[str], LogWatcher]:
    """`aggregator run` as a user starts it, with its log watched."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator.cli", "--config", str(config), "run"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return process, LogWatcher(process)


def _demo_copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "config" / "demo-feeds", tmp_path / "demo-feeds")
    text = DEMO.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^database: .*$", "database: sqlite:///demo-test.db", text)
    text = re.sub(r"(?m)^  listen: .*$", "  listen: 127.0.0.1:0", text)
    config = tmp_path / "demo.yaml"
    config.write_text(text, encoding="utf-8")
    return config


def test_demo_daemon_serves_every_outlet_once_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = _demo_copy(tmp_path)
    settings = load_settings(config)
    process, log = start_daemon(config)
    try:
        (match,) = log.wait_for(r"serving merged feeds on (http://\S+?)/?$")
        base = match.group(1)
        log.wait_for(r"aggregator\.polls: [a-z0-9-]+: \d+ items", count=len(settings.sources))
        # Once the due polls are done, their items are put into stories, oldest first.
        log.wait_for(r"stories: \d+ new items placed")
        store = Store.open(settings.database)
        try:
            assert store.unassigned_ids() == []
        finally:
            store.close()
        with httpx.Client(base_url=base, timeout=30) as client:
            ready = client.get("/readyz")
            assert (ready.status_code, ready.text) == (200, "ready")
            metrics = client.get("/metrics").text
            for source in settings.sources:
                assert f'aggregator_polls_total{{outcome="ok",source="{source.name}"}}' in metrics
            assert "aggregator_scheduling_lag_seconds 0.0" in metrics  # nothing overdue
            assert re.search(r"^aggregator_story_joins_total [1-9]", metrics, re.M)
            world = feedparser.parse(client.get("/feeds/world.atom").content)
            assert world.bozo == 0
            assert len(world.entries) == 100  # the feed's limit: there is more than that
            links = [e.link for e in world.entries]
            assert len(links) == len(set(links))
            outlets = {a.name for e in world.entries for a in e.get("authors", [])}
            assert len(outlets) >= 8, outlets
            for feed in settings.feeds:
                for fmt in ("rss", "atom"):
                    parsed = feedparser.parse(client.get(f"/feeds/{feed.slug}.{fmt}").content)
                    assert parsed.bozo == 0, (feed.slug, fmt, parsed.get("bozo_exception"))
                    assert parsed.entries, (feed.slug, fmt)
                assert client.get(f"/feeds/{feed.slug}.json").json()["items"]
    finally:
        process.send_signal(signal.SIGTERM)
        # The daemon promises to stop within 10 s of SIGTERM.
        code = process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()
    assert code == 0, "".join(log.lines)
    assert any("stopped" in line for line in log.lines)


def test_sigterm_abandons_a_stuck_poll_without_partial_writes(tmp_path: Path) -> None:
    feeds = tmp_path / "www"
    feeds.mkdir()
    shutil.copy(REPO / "config" / "demo-feeds" / "npr-world.xml", feeds / "npr.xml")
    with serve_directory(feeds) as server:
        server.stalled.add("/slow.xml")
        config = tmp_path / "aggregator.yaml"
        config.write_text(
            f"database: sqlite:///{tmp_path / 'db.sqlite'}\n"
            "server:\n  listen: 127.0.0.1:0\n"
            "polling:\n  allow_networks: [127.0.0.1/32]\n"
            "sources:\n"
            f"  - name: npr\n    url: {server.url('npr.xml')}\n"
            f"  - name: slow\n    url: {server.url('slow.xml')}\n",
            encoding="utf-8",
        )
        process, log = start_daemon(config)
        try:
            log.wait_for(r"npr: \d+ items, \d+ new")
            assert server.stall_seen.wait(timeout=30)
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=10)
            assert process.stderr is not None
            process.stderr.close()
    assert code == 0, "".join(log.lines)
    assert any("abandoning in-flight polls: slow" in line for line in log.lines), log.lines
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        states = {s.name: s for s in store.source_states()}
    finally:
        store.close()
    assert states["npr"].item_count > 0
    assert (states["slow"].item_count, states["slow"].last_status) == (0, None)


def test_the_running_daemon_keeps_its_static_copy_of_what_it_serves(tmp_path: Path) -> None:
    config = _demo_copy(tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("server:\n", "server:\n  static_dir: public\n", 1))
    copy = tmp_path / "public" / "feeds" / "world.atom"
    process, log = start_daemon(config)
    try:
        (match,) = log.wait_for(r"serving merged feeds on (http://\S+?)/?$")
        log.wait_for(r"stories: \d+ new items placed")
        deadline = time.monotonic() + 60  # written by the poller right after the batch
        while not copy.exists():
            assert time.monotonic() < deadline, "the daemon wrote no static copy"
            time.sleep(0.05)
        served = feedparser.parse(httpx.get(f"{match.group(1)}/feeds/world.atom").content)
        kept = feedparser.parse(copy.read_bytes())
        assert kept.bozo == 0
        assert [e.id for e in kept.entries] == [e.id for e in served.entries]
        assert (tmp_path / "public" / "index.html").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()
    assert code == 0, "".join(log.lines)


def _reload(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "--config", str(config), "reload"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_reload_applies_a_changed_config_and_refuses_a_broken_one(tmp_path: Path) -> None:
    feeds = tmp_path / "www"
    feeds.mkdir()
    for name in ("npr-world.xml", "bbc-news-world.xml"):
        shutil.copy(REPO / "config" / "demo-feeds" / name, feeds / name)
    with serve_directory(feeds) as server:
        config = tmp_path / "aggregator.yaml"
        head = (
            f"database: sqlite:///{tmp_path / 'db.sqlite'}\n"
            "server:\n  listen: 127.0.0.1:0\n"
            "polling:\n  allow_networks: [127.0.0.1/32]\n"
        )
        npr = f"  - name: npr\n    url: {server.url('npr-world.xml')}\n"
        bbc = f"  - name: bbc\n    url: {server.url('bbc-news-world.xml')}\n"
        config.write_text(head + "sources:\n" + npr, encoding="utf-8")
        assert "no running daemon" in _reload(config).stderr
        process, log = start_daemon(config)
        try:
            (match,) = log.wait_for(r"serving merged feeds on (http://\S+?)/?$")
            log.wait_for(r"npr: \d+ items, \d+ new")
            with httpx.Client(base_url=match.group(1), timeout=30) as client:
                assert client.get("/feeds/bbc-only.rss").status_code == 404
                # A source, a feed and a series added, the first source removed.
                config.write_text(
                    head
                    + "sources:\n"
                    + bbc
                    + "feeds:\n  - {slug: bbc-only, title: BBC only, sources: [bbc]}\n"
                    + "series:\n  - slug: everything\n    title: Everything\n"
                    + "    match: {regex: ['.']}\n",
                    encoding="utf-8",
                )
                done = _reload(config)
                assert done.returncode == 0, done.stderr
                assert f"pid {process.pid}" in done.stdout
                log.wait_for(r"config reloaded: 1 sources \(1 added, 1 removed\)")
                log.wait_for(r"bbc: \d+ items, \d+ new")
                deadline = time.monotonic() + 30
                # Served within a moment of the reload, and of the poll that filled it.
                while not feedparser.parse(client.get("/feeds/bbc-only.rss").content).entries:
                    assert time.monotonic() < deadline, "the reloaded feed was never served"
                    time.sleep(0.1)  # polling a condition with a deadline, not hiding a race
                while True:
                    series = client.get("/series/everything.json")
                    if series.status_code == 200 and series.json()["items"]:
                        break
                    assert time.monotonic() < deadline, "the reloaded series was never filled"
                    time.sleep(0.1)  # polling a condition with a deadline, not hiding a race
                # A broken config is refused, with the same file:line as `check`.
                config.write_text(head + "sources:\n  - name: Bad Name\n", encoding="utf-8")
                refused = _reload(config)  # checked before the daemon is signalled
                assert refused.returncode == 2
                assert "sources[0].url: required key is missing" in refused.stderr
                process.send_signal(signal.SIGHUP)  # as `kill -HUP` or systemctl reload
                log.wait_for(r"config reload refused")
                log.wait_for(r"aggregator\.yaml:\d+: sources\[0\]")
                assert client.get("/feeds/bbc-only.rss").status_code == 200
                assert client.get("/readyz").status_code == 200
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=10)
            log.close()
    assert code == 0, "".join(log.lines)
    assert not any(" npr: " in line for line in log.lines[-5:])
    assert not (tmp_path / "aggregator.pid").exists()  # removed on the way out
