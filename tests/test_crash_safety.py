"""A poll killed in the middle of its write leaves nothing half-done.

PostgreSQL lets the test hold the source's row lock, so a real `aggregator poll` process
gets as far as writing its items and then waits, mid-transaction, on the validators'
update; the test watches for that in pg_locks, kills the process with SIGKILL, and checks
that nothing of the poll remains and that the next poll stores everything exactly once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, event, text

from aggregator.clock import SystemClock
from aggregator.fetch import Fetcher
from aggregator.pipeline import Pipeline, fetch_limits
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.types import SourceDefinition
from tests.builders import T0
from tests.conftest import item_and_credit_counts
from tests.feedserver import serve_directory

ITEMS = 3000


def _big_feed() -> bytes:
    entries = "".join(
        f"<item><title>Story {n}</title><link>https://example.org/{n}</link>"
        f"<guid>g{n}</guid><description>Body of story {n}</description></item>"
        for n in range(ITEMS)
    )
    return f'<rss version="2.0"><channel><title>big</title>{entries}</channel></rss>'.encode()


def test_sigkill_mid_write_leaves_no_partial_rows(tmp_path: Path, postgres_url: str) -> None:
    database_url = postgres_url
    www = tmp_path / "www"
    www.mkdir()
    (www / "big.xml").write_bytes(_big_feed())
    with serve_directory(www) as server:
        config = tmp_path / "aggregator.yaml"
        config.write_text(
            f"database: {database_url}\n"
            "polling:\n  allow_networks: [127.0.0.1/32]\n"
            f"sources:\n  - name: big\n    url: {server.url('big.xml')}\n",
            encoding="utf-8",
        )
        store = Store.open(database_url)
        store.sync_sources(
            [SourceDefinition(name="big", title="big", url=server.url("big.xml"))], T0
        )
        store.close()
        engine = create_engine(database_url)
        holder = engine.connect()
        blocker = holder.begin()
        poll = subprocess.Popen(
            [sys.executable, "-m", "aggregator.cli", "--config", str(config), "poll"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # Once the poll has leased the source (and is fetching 3000 items), lock its
            # row: NO KEY UPDATE lets the poll insert rows that reference the source
            # (foreign keys take KEY SHARE) and stops it at its update of the source,
            # after the items.
            _wait_for_lease(engine)
            holder.execute(text("SELECT id FROM sources WHERE name = 'big' FOR NO KEY UPDATE"))
            writer = _wait_for_writer_blocked_after_inserting(engine)
            if writer is None:
                poll.kill()
                out, err = poll.communicate()
                raise AssertionError(f"the poll never reached its write:\n{out}\n{err}")
            os.kill(poll.pid, signal.SIGKILL)
            poll.communicate(timeout=30)
        finally:
            if poll.poll() is None:
                poll.kill()
                poll.communicate()
            blocker.rollback()
            holder.close()
        # PostgreSQL ends the dead client's transaction; nothing of it may remain.
        _wait_for_backend_gone(engine, writer)
        engine.dispose()
        assert item_and_credit_counts(database_url) == (0, 0)
        store = Store.open(database_url)
        (state,) = store.source_states()
        store.close()
        assert (state.etag, state.last_status) == (None, None)

        again = subprocess.run(
            [sys.executable, "-m", "aggregator.cli", "--config", str(config), "poll"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"{ITEMS} items, {ITEMS} new" in again.stdout
        assert item_and_credit_counts(database_url) == (ITEMS, ITEMS)


def _wait_for_lease(engine) -> None:
    deadline = time.monotonic() + 60
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
        while time.monotonic() < deadline:
            owner = watcher.execute(
                text("SELECT lease_owner FROM sources WHERE name = 'big'")
            ).scalar()
            if owner is not None:
                return
            time.sleep(0.01)  # polling a condition with a deadline, not hiding a race
    raise AssertionError("the poll never leased its source")


def _wait_for_writer_blocked_after_inserting(engine) -> int | None:
    """The pid of a backend that wrote to item_sources and now waits for a row lock.

    Watched from a connection of its own: statistics views are frozen inside a transaction.
    """
    deadline = time.monotonic() + 60
    query = text(
        """
        SELECT a.pid FROM pg_stat_activity a
        WHERE a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()
          AND EXISTS (
            SELECT 1 FROM pg_locks l
            WHERE l.pid = a.pid AND l.relation = 'item_sources'::regclass
              AND l.mode = 'RowExclusiveLock' AND l.granted)
        """
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
        while time.monotonic() < deadline:
            pid = watcher.execute(query).scalar()
            if pid is not None:
                return int(pid)
            time.sleep(0.05)  # polling a condition with a deadline, not hiding a race
    return None


def _wait_for_backend_gone(engine, pid: int) -> None:
    deadline = time.monotonic() + 30
    # Autocommit: inside one transaction pg_stat_activity is read once and kept, so a
    # backend seen alive at the first look would stay "alive" to every later one.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        while time.monotonic() < deadline:
            alive = connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar_one()
            if not alive:
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} of the killed poll is still there")


def test_a_locked_sqlite_database_fails_the_poll_cleanly(tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "big.xml").write_bytes(_big_feed())
    database = tmp_path / "db.sqlite"
    with serve_directory(www) as server:
        config = tmp_path / "aggregator.yaml"
        config.write_text(
            f"database: sqlite:///{database}?timeout=1\n"
            "polling:\n  allow_networks: [127.0.0.1/32]\n"
            f"sources:\n  - name: big\n    url: {server.url('big.xml')}\n",
            encoding="utf-8",
        )
        Store.open(f"sqlite:///{database}").close()
        locker = sqlite3.connect(database, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the database
        try:
            locked = subprocess.run(
                [sys.executable, "-m", "aggregator.cli", "--config", str(config), "poll"],
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert locked.returncode == 1
        assert "database is locked" in locked.stdout + locked.stderr
        assert "Traceback" not in locked.stderr
        assert item_and_credit_counts(f"sqlite:///{database}") == (0, 0)

        again = subprocess.run(
            [sys.executable, "-m", "aggregator.cli", "--config", str(config), "poll"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"{ITEMS} items, {ITEMS} new" in again.stdout
        assert item_and_credit_counts(f"sqlite:///{database}") == (ITEMS, ITEMS)


def test_a_full_disk_keeps_the_old_state_and_the_next_poll_stores_everything(
    tmp_path: Path,
) -> None:
    """SQLite's max_page_count makes the database "full" exactly as a full disk does."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "big.xml").write_bytes(_big_feed())
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with serve_directory(www) as server:
        settings = Settings.model_validate(
            {
                "database": database,
                "polling": {"allow_networks": ["127.0.0.1/32"]},
                "sources": [{"name": "big", "url": server.url("big.xml")}],
            }
        )
        store = Store.open(database)
        fetcher = Fetcher(fetch_limits(settings))
        try:
            pipeline = Pipeline(
                settings=settings, store=store, fetcher=fetcher, clock=SystemClock()
            )
            pipeline.sync_sources()
            with store.engine.connect() as connection:
                pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
            store.engine.dispose()

            def cap(dbapi_connection, _record) -> None:
                dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 5}")

            event.listen(store.engine, "connect", cap)
            (full,) = pipeline.poll_all()
            assert full.status == "error"
            assert "full" in (full.error or "")
            assert item_and_credit_counts(database) == (0, 0)
            (state,) = store.source_states()
            assert state.etag is None and state.consecutive_errors == 1

            event.remove(store.engine, "connect", cap)
            store.engine.dispose()
            (ok,) = pipeline.poll_all()
            assert (ok.status, ok.items_new) == ("ok", ITEMS)
            assert item_and_credit_counts(database) == (ITEMS, ITEMS)
        finally:
            fetcher.close()
            store.close()
