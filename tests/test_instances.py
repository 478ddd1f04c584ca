"""Several `aggregator run` processes sharing one PostgreSQL store, as an operator runs
them: each source is polled once per due time, whoever polls it; a process killed
mid-poll gives its sources back when their leases run out; nothing is lost or doubled."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import item_and_credit_counts
from tests.feedserver import FeedServer, serve_directory
from tests.test_daemon import LogWatcher

FEEDS = 300
ITEMS = 5
INTERVAL = 3.0  # seconds
LEASE = 4.0  # seconds


def _feed(n: int, items: int) -> bytes:
    entries = "".join(
        f"<item><title>Bulletin {n} number {k} about w{n}x{k}</title>"
        f"<link>https://outlet{n}.example/{k}</link><guid>o{n}-{k}</guid>"
        f"<pubDate>Wed, 18 Feb 2026 {k % 24:02d}:00:00 GMT</pubDate></item>"
        for k in range(items)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Outlet {n}</title><link>https://outlet{n}.example/</link>{entries}"
        f"</channel></rss>"
    ).encode()


def _config(tmp_path: Path, server: FeedServer, database_url: str) -> Path:
    sources = "".join(
        f"  - name: outlet{n}\n    url: {server.url(f'f{n}.xml')}\n" for n in range(FEEDS)
    )
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"database: {database_url}\n"
        "polling:\n"
        f"  interval: {INTERVAL:g}s\n"
        "  min_interval: 1s\n"
        "  jitter: 0\n"
        "  timeout: 1s\n"
        "  parse_timeout: 1s\n"
        f"  lease: {LEASE:g}s\n"
        "  concurrency: 8\n"
        # Every feed is on 127.0.0.1: room for all 3 x 8 workers, or two instances could
        # hold every slot of the host and the third never lease a source.
        "  per_host: 32\n"
        "  allow_networks: [127.0.0.1/32]\n"
        f"sources:\n{sources}",
        encoding="utf-8",
    )
    return config


def _start(config: Path) -> tuple[subprocess.Popen[str], LogWatcher]:
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator.cli", "--config", str(config), "run", "--no-server"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return process, LogWatcher(process)


def _log_tails(instances: list[tuple[subprocess.Popen[str], LogWatcher]], lines: int = 15) -> str:
    return "\n".join(
        f"--- instance {index} (pid {process.pid}, exit {process.poll()}):\n"
        + "".join(watcher.lines[-lines:])
        for index, (process, watcher) in enumerate(instances)
    )


def _wait(
    condition: Callable[[], bool],
    what: str,
    timeout: float = 90,
    state: Callable[[], str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            found = f" ({state()})" if state is not None else ""
            raise AssertionError(f"timed out waiting for {what}{found}")
        time.sleep(0.1)  # polling a condition with a deadline, not hiding a race


def test_three_instances_share_the_polls_and_survive_a_kill(
    tmp_path: Path, postgres_url: str
) -> None:
    www = tmp_path / "www"
    www.mkdir()
    for n in range(FEEDS):
        (www / f"f{n}.xml").write_bytes(_feed(n, ITEMS))
    engine = create_engine(postgres_url)

    def scalar(sql: str, **params: object) -> int:
        with engine.connect() as connection:
            return int(connection.execute(text(sql), params).scalar_one())

    try:
        _run(tmp_path, www, engine, scalar, postgres_url)
    finally:
        engine.dispose()


def _run(tmp_path: Path, www: Path, engine, scalar, postgres_url: str) -> None:
    with serve_directory(www) as server:
        config = _config(tmp_path, server, postgres_url)
        subprocess.run(
            [sys.executable, "-m", "aggregator.cli", "--config", str(config), "migrate"],
            check=True,
            capture_output=True,
        )
        instances = [_start(config) for _ in range(3)]

        def stored(expected: int) -> str:
            placed = scalar("SELECT count(*) FROM items WHERE story_id IS NOT NULL")
            return f"{scalar('SELECT count(*) FROM items')} stored, {placed} placed of {expected}"

        try:
            everything = FEEDS * ITEMS
            _wait(
                lambda: (
                    scalar("SELECT count(*) FROM items WHERE story_id IS NOT NULL") == everything
                ),
                "every item stored and put in a story",
                state=lambda: stored(everything),
            )
            _wait(
                lambda: all(len(server.arrivals.get(f"/f{n}.xml", ())) >= 3 for n in range(FEEDS)),
                "three polls of every feed",
            )
            # Polls now last a second: the victim is killed with polls in flight.
            server.hold = 1.0
            victim, _ = instances[0]
            mark = f"%:{victim.pid}:%"
            _wait(
                lambda: (
                    scalar("SELECT count(*) FROM sources WHERE lease_owner LIKE :m", m=mark) > 0
                ),
                "the first instance to hold leases",
            )
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
            server.hold = 0.0
            with engine.connect() as connection:
                orphaned = {
                    row.name: row.lease_until.timestamp()
                    for row in connection.execute(
                        text("SELECT name, lease_until FROM sources WHERE lease_owner LIKE :m"),
                        {"m": mark},
                    )
                }
            assert orphaned, "the killed instance held no leases"
            killed_at = time.time()
            changed = range(0, FEEDS, 30)
            for n in changed:
                (www / f"f{n}.xml").write_bytes(_feed(n, ITEMS + 2))
            everything += 2 * len(changed)

            def polled_again(name: str) -> bool:
                return any(t > killed_at for t in server.arrivals[f"/f{name[6:]}.xml"])

            _wait(
                lambda: all(polled_again(name) for name in orphaned),
                "the killed instance's sources polled by the others",
            )
            _wait(
                lambda: (
                    scalar("SELECT count(*) FROM items WHERE story_id IS NOT NULL") == everything
                ),
                "the new items stored and put in stories after the kill",
                state=lambda: stored(everything),
            )
            for process, _ in instances[1:]:
                process.send_signal(signal.SIGTERM)
            for process, _ in instances[1:]:
                assert process.wait(timeout=30) == 0
        except AssertionError as exc:  # a rare failure, under load: say what each was doing
            raise AssertionError(f"{exc}\n{_log_tails(instances)}") from exc
        finally:
            server.release.set()
            for process, watcher in instances:
                if process.poll() is None:
                    process.kill()
                    process.wait()
                watcher.close()

    # Nothing lost, nothing doubled.
    assert item_and_credit_counts(postgres_url) == (everything, everything)
    # The killed one's leases ended with the polls that took them over; the others gave
    # theirs back on the way out.
    assert scalar("SELECT count(*) FROM sources WHERE lease_owner IS NOT NULL") == 0

    # Once per due time: two requests for one feed are never closer than the interval
    # (less a margin for the poll's own time), as a second poll inside a lease would be.
    for path, times in server.arrivals.items():
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert min(gaps) > INTERVAL * 0.8, (path, gaps)
    # The killed instance's sources waited for their leases to run out.
    for name, lease_until in orphaned.items():
        after = [t for t in server.arrivals[f"/f{name[6:]}.xml"] if t > killed_at]
        assert min(after) >= lease_until - 0.05, (name, after, lease_until)
    # The work was shared: every instance polled, and wrote, some sources.
    polled: Counter[int] = Counter()
    for index, (_, watcher) in enumerate(instances):
        polled[index] = sum(
            1 for line in watcher.lines if ": not modified" in line or " new\n" in line
        )
    assert all(polled[index] > 0 for index in range(3)), polled
