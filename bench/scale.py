"""Scale benchmark: a store of 1,000,000 items from 2,000 sources, on SQLite and PostgreSQL.

    .venv/bin/python bench/scale.py                                  # the full run (both backends)
    .venv/bin/python bench/scale.py --items 20000 --poll-feeds 20    # a quick check (< 1 min)

For each backend, a fresh store (a SQLite file in bench/out/scale-run/, or a new
PostgreSQL schema ``scale_<random>``, dropped at the end unless ``--keep``):

1. ``aggregator migrate``; then, on the empty store:
   - ingest: ``aggregator --config X poll`` as a whole process against ``--poll-feeds``
     loopback feeds of ``--poll-items`` items each (bench/feedserver.py, bench/synthetic.py,
     as bench/ingest.py runs them; headlines replaced, see ``_title_words``), every item new;
   - story assignment, in-process: items stored with ``Store.save_poll``, then
     ``StoryAssigner.assign_pending`` timed (a first call, which also rebuilds the index
     from the items of the window, then ``--assign-items`` items as the feeds date them,
     over the week before, then as many dated in the last hour, with a warm index);
   - a baseline of the feed rendering below (the ``all`` feed only).
2. Bulk fill: ``--items`` items over the last 90 days (``--span-days``) from ``--sources``
   generated sources (``s0001``...; not polled, next poll in the future), written
   straight into the tables (SQLite: executemany with SQLAlchemy's own bind processors;
   PostgreSQL: COPY), then ANALYZE (PostgreSQL: VACUUM ANALYZE, so autovacuum does not
   start mid-measurement). Its time is printed, but it is no figure.
3. At that size, again: the ingest poll (the same feeds, all items new: new guids and
   links), story assignment, and feed rendering: ``--samples`` loads and renders of a
   ``merge: story``, ``limit: 100`` feed page (several feeds, series and pages; RSS, Atom,
   JSON Feed), each with a fresh ``StoreCatalog`` and nothing cached in the process, timed
   from the catalog's load to the gzipped representation the server would cache.
4. Database size per item, and the query plans of the hot queries: the due-sources claim,
   the feed page, the story assignment's reads and a poll's reads (PostgreSQL:
   ``EXPLAIN (ANALYZE, BUFFERS)``; SQLite: ``EXPLAIN QUERY PLAN`` and the query timed),
   each with the indexes it uses and the full scans it makes.

The polls' log lines split their wall time: until the story index is ready (the polls,
then the index rebuilt from the window), and the assignment of the cycle's items.

Figures and ratios are printed (at-size / empty, measured in the same run); nothing is
asserted. The machine's CPU use by others (their test runs share the 2 cores) is printed
beside each timed phase. The report also goes to bench/out/scale-<UTC timestamp>.{txt,json}.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import math
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from ingest import (  # noqa: E402
    AggregatorCommand,
    FeedServer,
    fmt_ratio,
    parse_poll_output,
    prepare_aggregator,
    progress,
    ratio,
    verdict,
)
from procmon import run_measured, system_busy_seconds, wait_until_quiet  # noqa: E402
from synthetic import _WORDS, FeedFactory  # noqa: E402

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_OUT = BENCH / "out"
FILL_BATCH = 20_000  # items per write transaction of the fill
ASSIGN_BASE = 9000  # assignment feeds are f9001...: never the poll's f0001...
MULTI_SHARE = 0.20  # of the items, those in stories of 2-8 items
CREDIT_SHARE = 0.10  # of the items, those another outlet credits too
SERIES_SHARE = 0.05  # of the items, those in one of the series
SERIES = ("series-1", "series-2", "series-3", "series-4", "series-5")
SERIES_WEIGHTS = (40, 25, 15, 12, 8)
FEED_LIMIT = 100
PLAN_RUNS = 6  # timed runs of each call whose query plans are shown, after a first
QUICK = 100_000  # items below which the defaults make a quick check
TARGETS = {
    "ingest": ("ingest items/s, at size / empty", ">=", 0.8),
    "render_p95_ms": ("merged feed load + render p95, ms, at size", "<=", 50.0),
}


# --- small helpers ------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..100)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mb(size: float) -> str:
    return f"{size / 1e6:,.1f} MB"


def postgres_cpu_s() -> float:
    """CPU seconds of every postgres process now alive, plus those its postmaster
    reaped (their children's time): the server's whole CPU, whoever asked."""
    ticks = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")] != "postgres":
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@dataclass(slots=True)
class CpuWindow:
    """CPU use of the machine over a phase: ours (this process and its reaped children),
    the PostgreSQL server's (which is ours on that backend, but other people's tests use
    the same server) and everything else's."""

    wall: float = field(default_factory=time.perf_counter)
    busy: float = field(default_factory=system_busy_seconds)
    own: float = field(default_factory=own_cpu_s)
    pg: float = field(default_factory=postgres_cpu_s)

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.wall
        busy = system_busy_seconds() - self.busy
        own = own_cpu_s() - self.own
        pg = postgres_cpu_s() - self.pg
        other = max(0.0, busy - own - pg)
        return {
            "wall_s": round(wall, 3),
            "machine_cores": round(busy / wall, 2) if wall else 0.0,
            "own_cpu_s": round(own, 2),
            "postgres_cpu_s": round(pg, 2),
            "other_cores": round(other / wall, 2) if wall else 0.0,
        }


def quiet(args: argparse.Namespace, label: str, log: list[str]) -> float:
    """Wait (up to --quiet-wait) for the machine to be idle; note how busy it was."""
    if args.quiet_wait <= 0:
        return math.nan
    started = time.monotonic()
    load = wait_until_quiet(max_wait=args.quiet_wait)
    waited = time.monotonic() - started
    if load >= 0.25:
        log.append(
            f"{label}: started with {load:.2f} cores busy (others) after waiting {waited:.0f}s"
        )
    return load


# --- the two backends ---------------------------------------------------------------


class SqliteBackend:
    name = "sqlite"

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "sqlite" / "aggregator.db"
        self.url = f"sqlite:///{self.path}"
        self.location = str(self.path)

    def files(self) -> list[Path]:
        return [self.path.with_name(self.path.name + suffix) for suffix in ("", "-wal", "-shm")]

    def create(self) -> None:
        self.drop()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def drop(self) -> None:
        for path in [*self.files(), self.path.with_name(self.path.name + ".stories.lock")]:
            path.unlink(missing_ok=True)

    def size(self, engine: Engine) -> dict[str, Any]:
        main, wal, _ = self.files()
        sizes = {"file": main.stat().st_size, "wal": wal.stat().st_size if wal.exists() else 0}
        tables: dict[str, int] = {}
        with contextlib.suppress(Exception), engine.connect() as connection:
            owner = dict(
                connection.exec_driver_sql("SELECT name, tbl_name FROM sqlite_master").all()
            )
            for name, size in connection.exec_driver_sql(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name"
            ):
                table = owner.get(name, name)
                tables[table] = tables.get(table, 0) + int(size)
        return {"total": sizes["file"] + sizes["wal"], **sizes, "tables": tables}

    def analyze(self, engine: Engine) -> None:
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


class PostgresBackend:
    name = "postgresql"

    def __init__(self, base_url: str, schema: str | None = None) -> None:
        self.base = base_url
        self.schema = schema or f"scale_{uuid.uuid4().hex[:10]}"
        self.url = (
            make_url(base_url)
            .update_query_dict({"options": f"-csearch_path={self.schema}"})
            .render_as_string(hide_password=False)
        )
        self.location = f"schema {self.schema}"
        self._admin = create_engine(base_url, isolation_level="AUTOCOMMIT")

    def create(self) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{self.schema}"'))

    def drop(self) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        self._admin.dispose()

    def size(self, engine: Engine) -> dict[str, Any]:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT tablename, pg_total_relation_size("
                    "format('%I.%I', schemaname, tablename)::regclass) "
                    "FROM pg_tables WHERE schemaname = :schema"
                ),
                {"schema": self.schema},
            ).all()
        tables = {name: int(size) for name, size in rows}
        return {"total": sum(tables.values()), "tables": tables}

    def analyze(self, engine: Engine) -> None:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")


Backend = SqliteBackend | PostgresBackend


# --- feeds ----------------------------------------------------------------------------


def cycle_bytes(body: bytes, tag: str) -> bytes:
    """The feed with every guid, id and link made unique to ``tag``: the same outlet's
    next cycle, all of whose items are new."""
    return (
        body.replace(b"urn:bench:", f"urn:bench:{tag}:".encode())
        .replace(b"tag:bench.example,2024:", f"tag:bench.example,2024:{tag}:".encode())
        .replace(b".bench.example/", f".bench.example/{tag}/".encode())
    )


_ITEM_TITLE = re.compile(rb"(<(?:item|entry)>\n<title[^>]*>)[^<]*(</title>)")


def build_feeds(
    indices: Sequence[int], items: int, seed: int, tag: str, anchor: datetime
) -> dict[str, tuple[str, bytes]]:
    """name -> (filename, bytes): synthetic.py's feeds, every item's headline replaced
    with one of ``title_plan`` (ASCII words: nothing to escape)."""
    factory = FeedFactory(seed=seed, items=items, anchor=anchor)
    rng = random.Random(f"scale-titles:{seed}:{tag}")
    titles = iter(title_plan(rng, _pools(), items * len(indices)))
    built = {}
    for index in indices:
        feed = factory.build(index)
        body, replaced = _ITEM_TITLE.subn(
            lambda m: m.group(1) + next(titles).encode() + m.group(2), feed.body
        )
        if replaced != items:
            raise RuntimeError(f"{feed.name}: {replaced} item titles found, expected {items}")
        built[feed.name] = (feed.filename, cycle_bytes(body, tag))
    return built


# --- the ingest poll (a whole process) -------------------------------------------------

_PLACED = re.compile(r"stories: (\d+) new items placed")
_PUT_BACK = re.compile(r"story index: (\d+) recent items put back")
_TAKEN_UP = re.compile(r"story index: taken up")
_INDEX_READY = re.compile(rf"{_PUT_BACK.pattern}|{_TAKEN_UP.pattern}")
_ROLE = re.compile(r"this process now does stories")
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", re.M)


def logged_at(stderr: str, pattern: re.Pattern[str]) -> datetime | None:
    """When the poll's log (local time, as logging writes it) first says ``pattern``."""
    for line in stderr.splitlines():
        if pattern.search(line) and (stamp := _LOG_LINE.match(line)):
            return datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f")
    return None


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def write_config(path: Path, database: str, urls: dict[str, str]) -> None:
    lines = [
        "# Generated by bench/scale.py; safe to delete.",
        f'database: "{database}"',
        "polling:",
        "  interval: 1h",
        "  timeout: 60s",
        "  max_bytes: 20MB",
        '  allow_networks: ["127.0.0.0/8"]',
        "sources:",
    ]
    for name, url in urls.items():
        lines += [f"  - name: {name}", f"    url: {url}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def count_items(engine: Engine) -> tuple[int, int]:
    """(items, items without a story)."""
    with engine.connect() as connection:
        total = connection.exec_driver_sql("SELECT count(*) FROM items").scalar_one()
        pending = connection.exec_driver_sql(
            "SELECT count(*) FROM items WHERE story_id IS NULL"
        ).scalar_one()
    return int(total), int(pending)


@dataclass(slots=True, kw_only=True)
class PollResult:
    items_before: int
    wall_s: float
    cpu_s: float
    new: int
    feeds: dict[str, int]
    items_per_s: float
    placed: int | None
    put_back: int | None
    taken_up: bool  # the story index was the one the last process saved, not rebuilt
    # From the poll's log: start -> the story index ready (polls, then the index rebuilt
    # from the window); -> the cycle's items placed; PostgreSQL: the rebuild alone (from
    # taking the stories role).
    to_index_s: float | None
    assign_s: float | None
    rebuild_s: float | None
    unassigned_after: int
    returncode: int
    server_cpu_s: float
    postgres_cpu_s: float
    other_cores: float
    quiet_load: float
    failures: list[str]


def run_poll(
    ctx: Context, backend: Backend, engine: Engine, config: Path, cycle: int, label: str
) -> PollResult:
    feeds = ctx.poll_feeds(cycle)
    for filename, body in feeds.values():
        (ctx.feeds_dir / filename).write_bytes(body)
    ctx.server.reload()
    items_before, _ = count_items(engine)
    load = quiet(ctx.args, f"{backend.name} poll {label}", ctx.warnings)
    ctx.server.stats(reset=True)
    server_before = float(ctx.server.stats()["cpu_s"])
    pg_before = postgres_cpu_s()
    progress(f"{backend.name}: aggregator poll ({label}, {items_before:,} items stored) ...")
    started_at = datetime.now()  # local, as the poll's log lines
    measured = run_measured(
        ctx.aggregator.argv("--config", str(config), "poll"),
        timeout=ctx.args.timeout,
        log_dir=ctx.run_dir / "logs",
        label=f"{backend.name}-poll-{label}",
        env=ctx.aggregator.env,
        cwd=ctx.run_dir,
    )
    pg_cpu = postgres_cpu_s() - pg_before if backend.name == "postgresql" else 0.0
    server_cpu = float(ctx.server.stats()["cpu_s"]) - server_before
    new, statuses, failures = parse_poll_output(measured.stdout, dict.fromkeys(feeds, "poll"))
    placed = [int(m.group(1)) for m in _PLACED.finditer(measured.stderr)]
    put_back = [int(m.group(1)) for m in _PUT_BACK.finditer(measured.stderr)]
    _, unassigned = count_items(engine)
    index_at = logged_at(measured.stderr, _INDEX_READY)
    placed_at = logged_at(measured.stderr, _PLACED)
    other = measured.system_busy_s - measured.cpu_s - server_cpu - measured.harness_cpu_s - pg_cpu
    result = PollResult(
        items_before=items_before,
        wall_s=measured.wall_s,
        cpu_s=measured.cpu_s,
        new=sum(new.values()),
        feeds=statuses,
        items_per_s=sum(new.values()) / measured.wall_s,
        placed=sum(placed) if placed else None,
        put_back=put_back[0] if put_back else None,
        taken_up=bool(_TAKEN_UP.search(measured.stderr)),
        to_index_s=seconds_between(started_at, index_at),
        assign_s=seconds_between(index_at, placed_at),
        rebuild_s=seconds_between(logged_at(measured.stderr, _ROLE), index_at),
        unassigned_after=unassigned,
        returncode=measured.returncode,
        server_cpu_s=round(server_cpu, 2),
        postgres_cpu_s=round(pg_cpu, 2),
        other_cores=round(max(0.0, other) / measured.wall_s, 2),
        quiet_load=load,
        failures=failures,
    )
    expected = len(feeds) * ctx.args.poll_items
    if result.new != expected or measured.returncode != 0:
        tail = "\n".join(measured.stderr.splitlines()[-10:])
        ctx.warnings.append(
            f"{backend.name} poll {label}: {result.new} new items, expected {expected}; "
            f"exit {measured.returncode}; stderr tail:\n{tail}"
        )
    if unassigned:
        ctx.warnings.append(
            f"{backend.name} poll {label}: {unassigned} items left without a story (the "
            "stories role held by another process? on PostgreSQL its advisory lock key is "
            "the same in every schema of the database)"
        )
    progress(
        f"{backend.name}: poll {label}: {result.wall_s:.1f}s wall, {result.new} new, "
        f"{result.items_per_s:.0f} items/s, placed {result.placed}, index "
        f"{'taken up' if result.taken_up else f'rebuilt from {result.put_back} items'}"
    )
    return result


# --- a poll cycle in a running process ---------------------------------------------------


@dataclass(slots=True, kw_only=True)
class CycleResult:
    """The second of two ``poll_all`` cycles of one ``open_pipeline`` (the daemon's
    composition), each of every poll feed with new items: the story index, the parse
    workers and the connections are warm, as in a running daemon's next cycle."""

    items_before: int
    first_s: float  # the cycle that warms everything up: not the figure
    wall_s: float
    new: int
    items_per_s: float
    cpu: dict[str, float]


def measure_cycle(
    ctx: Context, backend: Backend, store: Any, config: Path, cycles: tuple[int, int], label: str
) -> CycleResult:
    from aggregator.pipeline import open_pipeline
    from aggregator.settings import load_settings

    settings = load_settings(config)

    def serve(cycle: int) -> None:
        feeds = ctx.poll_feeds(cycle)
        names = list(ctx.poll_urls)
        if list(feeds) != names:
            raise RuntimeError("cycle feeds do not match the configured poll feeds")
        for filename, body in feeds.values():
            (ctx.feeds_dir / filename).write_bytes(body)
        ctx.server.reload()

    with open_pipeline(settings) as pipeline:
        serve(cycles[0])
        started = time.perf_counter()
        pipeline.poll_all()
        first_s = time.perf_counter() - started
        serve(cycles[1])
        items_before, _ = count_items(store.engine)
        quiet(ctx.args, f"{backend.name} cycle {label}", ctx.warnings)
        window = CpuWindow()
        started = time.perf_counter()
        outcomes = pipeline.poll_all()
        wall_s = time.perf_counter() - started
        cpu = window.stop()
    new = sum(o.items_new or 0 for o in outcomes)
    expected = len(ctx.poll_urls) * ctx.args.poll_items
    if new != expected:
        ctx.warnings.append(f"{backend.name} cycle {label}: {new} new items, expected {expected}")
    result = CycleResult(
        items_before=items_before,
        first_s=first_s,
        wall_s=wall_s,
        new=new,
        items_per_s=new / wall_s,
        cpu=cpu,
    )
    progress(
        f"{backend.name}: cycle in a running process ({label}): {wall_s:.2f}s for {new} new "
        f"items, {result.items_per_s:.0f} items/s (first cycle {first_s:.2f}s)"
    )
    return result


# --- story assignment, in-process ------------------------------------------------------


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclass(slots=True, kw_only=True)
class AssignResult:
    items_before: int
    save_items: int
    save_s: float
    first_items: int
    first_s: float
    put_back: int | None
    taken_up: bool
    steady_items: int
    steady_s: float
    steady_ms_per_item: float
    fresh_items: int
    fresh_ms_per_item: float
    save_ms_per_item: float
    cpu: dict[str, float]
    quiet_load: float


def measure_assignment(ctx: Context, backend: Backend, store: Any, cycle: int) -> AssignResult:
    """Items stored with save_poll, then assign_pending timed: a first call (the index
    rebuilt from the window's items, plus one feed's items), then the rest."""
    from aggregator.grouping import StoryAssigner
    from aggregator.process.document import process_document
    from aggregator.process.stories import GroupingRules
    from aggregator.reading_code import reading_code_key
    from aggregator.types import PollSchedule, SourceDefinition

    args = ctx.args
    per_batch = max(1, math.ceil(args.assign_items / args.poll_items))
    feeds_count = 1 + 2 * per_batch
    indices = [ASSIGN_BASE + 1 + i for i in range(feeds_count)]
    now = datetime.now(UTC)
    feeds = build_feeds(indices, args.poll_items, args.seed + 500, f"a{cycle}", now)
    store.sync_sources(
        [
            SourceDefinition(name=name, title=f"Assign {name}", url=f"http://assign.invalid/{f}")
            for name, (f, _) in feeds.items()
        ],
        now,
    )
    documents = []
    for name, (filename, body) in feeds.items():
        kind = "rss" if filename.endswith(".rss") else "atom"
        documents.append(
            (
                name,
                process_document(
                    body,
                    content_type=f"application/{kind}+xml",
                    url=f"http://assign.invalid/{filename}",
                    source_name=name,
                    now=now,
                    rules=(),
                    code_key=reading_code_key(),
                ),
            )
        )
    # The second batch as news of the last hour: synthetic.py dates items over the week
    # before, and an item older than the index's newest stories walks past them.
    rng = random.Random(f"scale-fresh:{cycle}")
    for position in range(1 + per_batch, len(documents)):
        name, document = documents[position]
        fresh = tuple(
            replace(item, published=now - timedelta(seconds=rng.uniform(60, 3600)), updated=None)
            for item in document.items
        )
        documents[position] = (name, replace(document, items=fresh))
    items_before, _ = count_items(store.engine)

    def save(part: Sequence[tuple[str, Any]]) -> int:
        stored = 0
        for name, document in part:
            saved = store.save_poll(
                name,
                batch=document.items,
                series=document.series,
                http_status=200,
                etag=None,
                last_modified=None,
                now=now,
                schedule=lambda _new: PollSchedule(next_poll_at=now + timedelta(hours=1)),
            )
            stored += saved.new
        return stored

    handler = _Captured()
    grouping_log = logging.getLogger("aggregator.grouping")
    grouping_log.addHandler(handler)
    grouping_log.setLevel(logging.INFO)
    try:
        assigner = StoryAssigner(store, GroupingRules())
        load = quiet(args, f"{backend.name} assignment", ctx.warnings)
        window = CpuWindow()
        save(documents[:1])
        started = time.perf_counter()
        first = assigner.assign_pending(now)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        saved = save(documents[1 : 1 + per_batch])
        save_s = time.perf_counter() - started
        started = time.perf_counter()
        steady = assigner.assign_pending(now)
        steady_s = time.perf_counter() - started
        fresh_saved = save(documents[1 + per_batch :])
        started = time.perf_counter()
        fresh = assigner.assign_pending(now)
        fresh_s = time.perf_counter() - started
        cpu = window.stop()
        assigner.close()
    finally:
        grouping_log.removeHandler(handler)
    put_back = next(
        (int(m.group(1)) for msg in handler.messages if (m := _PUT_BACK.search(msg))), None
    )
    if fresh != fresh_saved:
        ctx.warnings.append(
            f"{backend.name} assignment: {fresh} items assigned in the fresh call, "
            f"{fresh_saved} stored"
        )
    if steady != saved:
        ctx.warnings.append(
            f"{backend.name} assignment: {steady} items assigned in the timed call, {saved} stored"
        )
    result = AssignResult(
        items_before=items_before,
        save_items=saved,
        save_s=save_s,
        first_items=first,
        first_s=first_s,
        put_back=put_back,
        taken_up=any(_TAKEN_UP.search(msg) for msg in handler.messages),
        steady_items=steady,
        steady_s=steady_s,
        steady_ms_per_item=1000 * steady_s / steady if steady else math.nan,
        fresh_items=fresh,
        fresh_ms_per_item=1000 * fresh_s / fresh if fresh else math.nan,
        save_ms_per_item=1000 * save_s / saved if saved else math.nan,
        cpu=cpu,
        quiet_load=load,
    )
    progress(
        f"{backend.name}: assignment: first call {first} items in {first_s:.2f}s "
        f"({'index taken up' if result.taken_up else f'{put_back} put back'}); "
        f"{steady} items in {steady_s:.2f}s "
        f"= {result.steady_ms_per_item:.3f} ms/item; dated in the last hour "
        f"{result.fresh_ms_per_item:.3f} ms/item"
    )
    return result


# --- the bulk fill ---------------------------------------------------------------------

_SYLLABLES = (
    "ka", "ri", "to", "ma", "lo", "vu", "sen", "dor", "bel", "an", "ti", "gra", "mon", "zel",
    "ha", "ku", "ne", "os", "pra", "lin", "ver", "ta", "ro", "mi", "sa", "dun", "ek", "fa",
    "jor", "qui", "bra", "nov", "ste", "il", "ya",
)  # fmt: skip


def _pseudo_names(rng: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        word = "".join(rng.choices(_SYLLABLES, k=rng.randint(2, 3)))
        names.add(word.capitalize())
    return sorted(names)


@dataclass(slots=True)
class _Pools:
    """Text drawn once: building a million items must stay cheap."""

    names: list[str]  # capitalised mid-headline: names and places
    rare: list[str]  # the long tail of a headline's vocabulary
    summaries: list[tuple[str, str]]  # (summary_html, lead)
    contents: list[str]
    authors: list[str]
    categories: list[str]

    @classmethod
    def build(cls, rng: random.Random) -> _Pools:
        names = _pseudo_names(rng, 3000)
        rare = sorted(
            {"".join(rng.choices(_SYLLABLES, k=rng.randint(2, 4))) for _ in range(30_000)}
            - {name.lower() for name in names}
        )
        summaries = []
        for _ in range(4000):
            words: list[str] = []
            while sum(len(w) + 1 for w in words) < 280:
                words.append(rng.choice(names) if rng.random() < 0.08 else rng.choice(_WORDS))
            words[0] = words[0].capitalize()
            lead = " ".join(words) + "."
            summaries.append((f"<p>{lead}</p>", lead[:400]))
        contents = []
        for _ in range(400):
            parts = []
            while sum(len(p) for p in parts) < 2000:
                sentence = " ".join(rng.choices(_WORDS, k=rng.randint(10, 20))).capitalize()
                parts.append(
                    f'<p>{sentence}. <a href="https://x.example/{rng.randrange(10**6)}">'
                    f"{rng.choice(names)}</a> {rng.choice(_WORDS)}.</p>"
                )
            contents.append("\n".join(parts))
        authors = [f"{rng.choice(names)} {rng.choice(names)}" for _ in range(500)]
        categories = [
            "World", "Politics", "Business", "Europe", "Asia", "Science", "Health", "Sport",
            "Technology", "Climate", "Analysis", "Opinion",
        ]  # fmt: skip
        return cls(names, rare, summaries, contents, authors, categories)


@functools.cache
def _pools() -> _Pools:
    """The text pools of every feed and of the fill: one vocabulary."""
    return _Pools.build(random.Random("scale-pools"))


def _title_words(rng: random.Random, pools: _Pools) -> list[str]:
    """6-12 words: a few common ones (synthetic.py's), more from a long tail, and a name
    or two. Random headlines of synthetic.py's 200 words alone share so many terms that
    story assignment puts nearly all of them in one story (4,884 of 5,000)."""
    words = rng.choices(_WORDS, k=rng.randint(2, 4)) + rng.choices(pools.rare, k=rng.randint(3, 6))
    rng.shuffle(words)
    for _ in range(rng.randint(1, 2)):
        words.insert(rng.randint(1, len(words)), rng.choice(pools.names))
    words[0] = words[0][:1].upper() + words[0][1:]
    return words


def title_plan(rng: random.Random, pools: _Pools, count: int) -> list[str]:
    """Headlines for ``count`` items, shuffled: most report an event of their own,
    MULTI_SHARE of them one that 2-8 outlets report in other words."""
    titles: list[str] = []
    p_multi = (MULTI_SHARE / 5) / (MULTI_SHARE / 5 + (1 - MULTI_SHARE))
    while len(titles) < count:
        words = _title_words(rng, pools)
        if rng.random() < p_multi:
            titles += [_variant(rng, words) for _ in range(rng.randint(2, 8))]
        else:
            titles.append(" ".join(words))
    titles = titles[:count]
    rng.shuffle(titles)
    return titles


def _variant(rng: random.Random, base: list[str]) -> str:
    """Another outlet's headline of the same event: most words kept."""
    words = list(base)
    for _ in range(rng.randint(1, 2)):
        words[rng.randrange(len(words))] = rng.choice(_WORDS)
    if rng.random() < 0.5:
        i = rng.randrange(len(words))
        j = rng.randrange(len(words))
        words[i], words[j] = words[j], words[i]
    words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words)


def _sketch(rng: random.Random) -> bytes:
    """A fingerprint as process/duplicates.py packs one: the 64 smallest of an article's
    4-gram hashes, ascending, 4 bytes each, big-endian. Random: no item repeats another."""
    values = sorted(memoryview(rng.randbytes(600)).cast("I"))[:64]
    return b"".join(v.to_bytes(4, "big") for v in values)


ITEM_COLUMNS = (
    "id", "identity", "origin_source_id", "guid", "link", "title", "content_html",
    "summary_html", "published", "updated", "authors", "categories", "enclosures",
    "language", "content_hash", "first_seen", "sort_at", "changed_at", "story_id",
    "fingerprint", "duplicate_of", "lead",
)  # fmt: skip
CREDIT_COLUMNS = ("source_id", "entry_key", "item_id", "guid", "link", "first_seen")
STORY_COLUMNS = ("id", "first_seen", "last_seen", "merged_into")
SERIES_COLUMNS = ("series_slug", "item_id", "reason", "tagged")
TABLE_COLUMNS = {
    "stories": STORY_COLUMNS,
    "items": ITEM_COLUMNS,
    "item_sources": CREDIT_COLUMNS,
    "item_series": SERIES_COLUMNS,
}


@dataclass(slots=True)
class _Batch:
    stories: list[tuple[Any, ...]] = field(default_factory=list)
    items: list[tuple[Any, ...]] = field(default_factory=list)
    item_sources: list[tuple[Any, ...]] = field(default_factory=list)
    item_series: list[tuple[Any, ...]] = field(default_factory=list)


def generate(
    *,
    count: int,
    sources: Sequence[tuple[int, int]],  # (id, number in its name)
    now: datetime,
    seed: int,
    first_item: int,
    first_story: int,
    stats: Counter[str],
    span: timedelta,
) -> Iterator[_Batch]:
    """The items of the fill, in batches, each with its stories, credits and series."""
    rng = random.Random(f"scale-fill:{seed}")
    pools = _pools()
    weights = [rng.lognormvariate(0, 1.0) for _ in sources]  # outlets differ in output
    cumulative = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    start = now - span
    span_s = span.total_seconds()
    # Stories of 2-8 items (5 on average) hold MULTI_SHARE of the items.
    p_multi = (MULTI_SHARE / 5) / (MULTI_SHARE / 5 + (1 - MULTI_SHARE))
    item_id, story_id, made = first_item, first_story, 0
    batch = _Batch()
    latest = now - timedelta(minutes=1)

    def pick_sources(k: int) -> list[tuple[int, int]]:
        chosen: dict[int, tuple[int, int]] = {}
        while len(chosen) < k:
            source = rng.choices(sources, cum_weights=cumulative)[0]
            chosen[source[0]] = source
        return list(chosen.values())

    while made < count:
        base = start + timedelta(seconds=span_s * made / count + rng.uniform(0, 60))
        size = rng.randint(2, 8) if rng.random() < p_multi else 1
        size = min(size, count - made)
        if size == 1:
            members = [(base, " ".join(_title_words(rng, pools)))]
        else:
            words = _title_words(rng, pools)
            offsets = sorted(rng.uniform(0, 8 * 3600) for _ in range(size))
            members = [
                (min(base + timedelta(seconds=o), latest), _variant(rng, words)) for o in offsets
            ]
            stats["multi_stories"] += 1
            stats["multi_items"] += size
        outlets = pick_sources(size)
        when_first = members[0][0]
        when_last = members[-1][0]
        batch.stories.append((story_id, when_first, when_last, None))
        for (sort_at, title), (source_id, number) in zip(members, outlets, strict=True):
            link = f"https://s{number}.example/a/{item_id}"
            guid = f"urn:s{number}:{item_id}" if rng.random() < 0.7 else None
            dated = rng.random() < 0.95
            first_seen = min(sort_at + timedelta(seconds=rng.uniform(0, 1200)), now)
            if not dated:
                sort_at = first_seen
            changed_at = first_seen
            batch.item_sources.append(
                (
                    source_id,
                    f"guid:{guid}" if guid else f"link:{link}",
                    item_id,
                    guid,
                    link,
                    first_seen,
                )
            )
            if rng.random() < CREDIT_SHARE:
                credited = {source_id}
                for _ in range(2 if rng.random() < 0.2 else 1):
                    other_id, other = rng.choices(sources, cum_weights=cumulative)[0]
                    if other_id in credited:
                        continue
                    credited.add(other_id)
                    seen = min(first_seen + timedelta(seconds=rng.uniform(60, 3 * 3600)), now)
                    changed_at = max(changed_at, seen)
                    other_guid = f"urn:s{other}:x{item_id}"
                    batch.item_sources.append(
                        (other_id, f"guid:{other_guid}", item_id, other_guid, link, seen)
                    )
                    stats["extra_credits"] += 1
            if rng.random() < SERIES_SHARE:
                slug = rng.choices(SERIES, weights=SERIES_WEIGHTS)[0]
                batch.item_series.append(
                    (slug, item_id, f"keyword {rng.choice(_WORDS)!r}", rng.random() < 0.3)
                )
            summary_html, lead = rng.choice(pools.summaries)
            categories = [
                {"term": term, "domain": None, "label": None}
                for term in sorted(set(rng.choices(pools.categories, k=rng.randint(0, 3))))
            ]
            enclosures = (
                [
                    {
                        "url": f"https://cdn.s{number}.example/{item_id}.jpg",
                        "type": "image/jpeg",
                        "length": rng.randrange(20_000, 400_000),
                    }
                ]
                if rng.random() < 0.1
                else []
            )
            batch.items.append(
                (
                    item_id,
                    f"link:{link}",
                    source_id,
                    guid,
                    link,
                    title,
                    rng.choice(pools.contents) if rng.random() < 0.3 else None,
                    summary_html,
                    sort_at if dated else None,
                    None,
                    [rng.choice(pools.authors)] if rng.random() < 0.7 else [],
                    categories,
                    enclosures,
                    "en",
                    rng.randbytes(32).hex(),
                    first_seen,
                    sort_at,
                    changed_at,
                    story_id,
                    _sketch(rng) if rng.random() < 0.85 else None,
                    None,
                    lead,
                )
            )
            item_id += 1
            made += 1
        story_id += 1
        if len(batch.items) >= FILL_BATCH:
            yield batch
            batch = _Batch()
    if batch.items:
        yield batch


class _SqliteWriter:
    """executemany on one connection, values prepared by SQLAlchemy's own bind processors
    (the stored format of datetimes and JSON is exactly what the store writes)."""

    def __init__(self, engine: Engine) -> None:
        from aggregator.store.schema import metadata

        self.connection = engine.connect()
        for pragma in ("foreign_keys=OFF", "synchronous=OFF", "cache_size=-524288"):
            self.connection.exec_driver_sql(f"PRAGMA {pragma}")
        self.connection.commit()  # end the autobegun transaction: each batch is its own
        dialect = engine.dialect
        self.statements: dict[str, tuple[str, list[Callable[[Any], Any] | None]]] = {}
        for name, columns in TABLE_COLUMNS.items():
            table = metadata.tables[name]
            processors = [table.c[c].type.bind_processor(dialect) for c in columns]
            marks = ", ".join("?" for _ in columns)
            sql = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})"
            self.statements[name] = (sql, processors)

    def write(self, batch: _Batch) -> None:
        with self.connection.begin():
            for name in TABLE_COLUMNS:
                sql, processors = self.statements[name]
                rows = [
                    tuple(
                        p(v) if p is not None else v for p, v in zip(processors, row, strict=True)
                    )
                    for row in getattr(batch, name)
                ]
                if rows:
                    self.connection.exec_driver_sql(sql, rows)

    def close(self) -> None:
        self.connection.close()


class _PostgresWriter:
    """COPY, foreign-key triggers off for the session (the rows are consistent by
    construction); JSON columns as their text."""

    JSON_COLUMNS = frozenset({"authors", "categories", "enclosures"})

    def __init__(self, engine: Engine) -> None:
        self.connection = engine.connect()

    def write(self, batch: _Batch) -> None:
        with self.connection.begin():
            self.connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
            raw = self.connection.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cursor:
                for name, columns in TABLE_COLUMNS.items():
                    rows = getattr(batch, name)
                    if not rows:
                        continue
                    json_at = [i for i, c in enumerate(columns) if c in self.JSON_COLUMNS]
                    with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in rows:
                            if json_at:
                                row = list(row)
                                for i in json_at:
                                    row[i] = json.dumps(row[i])
                            copy.write_row(row)

    def close(self) -> None:
        self.connection.close()


@dataclass(slots=True, kw_only=True)
class FillResult:
    items: int
    stories: int
    multi_stories: int
    multi_items: int
    credits: int
    series_rows: int
    sources: int
    fill_s: float
    analyze_s: float


def bulk_fill(ctx: Context, backend: Backend, now: datetime) -> FillResult:
    from aggregator.store import create_store_engine
    from aggregator.store.schema import sources as sources_table
    from aggregator.store.stories import count_assignment_write

    args = ctx.args
    span = timedelta(days=args.span_days)  # the filled items' dates, before now
    engine = create_store_engine(backend.url)
    try:
        width = max(4, len(str(args.sources)))
        rows = [
            {
                "name": f"s{n:0{width}d}",
                "url": f"https://s{n}.example/feed.xml",
                "title": f"Outlet {n} News",
                "etag": f'"{n:x}-etag"',
                "last_modified": None,
                "last_polled_at": now - timedelta(minutes=n % 60),
                "next_poll_at": now + timedelta(hours=1, minutes=n % 600),
                "last_status": "ok",
                "last_http_status": 200,
                "consecutive_errors": 0,
                "created_at": now - span - timedelta(days=1),
            }
            for n in range(1, args.sources + 1)
        ]
        with engine.begin() as connection:
            connection.execute(sources_table.insert(), rows)
            ids = dict(
                connection.execute(text("SELECT name, id FROM sources WHERE name LIKE 's%'")).all()
            )
            first_item = connection.exec_driver_sql(
                "SELECT coalesce(max(id), 0) FROM items"
            ).scalar_one()
            first_story = connection.exec_driver_sql(
                "SELECT coalesce(max(id), 0) FROM stories"
            ).scalar_one()
        generated = [(ids[f"s{n:0{width}d}"], n) for n in range(1, args.sources + 1)]
        writer: _SqliteWriter | _PostgresWriter = (
            _SqliteWriter(engine) if backend.name == "sqlite" else _PostgresWriter(engine)
        )
        stats: Counter[str] = Counter()
        started = time.perf_counter()
        done = 0
        try:
            for batch in generate(
                count=args.items,
                sources=generated,
                now=now,
                seed=args.seed,
                first_item=int(first_item) + 1,
                first_story=int(first_story) + 1,
                stats=stats,
                span=span,
            ):
                writer.write(batch)
                done += len(batch.items)
                stats["stories"] += len(batch.stories)
                stats["credits"] += len(batch.item_sources)
                stats["series_rows"] += len(batch.item_series)
                if done % 200_000 < FILL_BATCH:
                    elapsed = time.perf_counter() - started
                    progress(f"{backend.name}: filled {done:,} items ({elapsed:.0f}s)")
        finally:
            writer.close()
        fill_s = time.perf_counter() - started
        if backend.name == "postgresql":
            with engine.begin() as connection:
                for table in ("items", "sources"):
                    connection.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
        with engine.begin() as connection:  # stories written behind the assigner's back:
            count_assignment_write(connection)  # an index saved before must not be used
        started = time.perf_counter()
        backend.analyze(engine)
        analyze_s = time.perf_counter() - started
    finally:
        engine.dispose()
    result = FillResult(
        items=done,
        stories=stats["stories"],
        multi_stories=stats["multi_stories"],
        multi_items=stats["multi_items"],
        credits=stats["credits"],
        series_rows=stats["series_rows"],
        sources=len(generated),
        fill_s=fill_s,
        analyze_s=analyze_s,
    )
    progress(f"{backend.name}: fill done in {fill_s:.0f}s, analyze {analyze_s:.0f}s")
    return result


@dataclass(slots=True, kw_only=True)
class IndexStart:
    """The first process after the fill: it rebuilds the story index from the window's
    items (the fill wrote stories behind the assigner's back, so no saved index holds)
    and saves it at exit, as any polling process does, for the next to take up."""

    put_back: int | None
    rebuild_s: float
    save_s: float
    snapshot_mb: float


def start_index(backend: Backend, store: Any, config: Path) -> IndexStart:
    from aggregator.pipeline import story_assigner
    from aggregator.settings import load_settings

    assigner = story_assigner(store, load_settings(config))
    handler = _Captured()
    grouping_log = logging.getLogger("aggregator.grouping")
    grouping_log.addHandler(handler)
    grouping_log.setLevel(logging.INFO)
    try:
        started = time.perf_counter()
        assigner.assign_pending(datetime.now(UTC))
        rebuild_s = time.perf_counter() - started
        started = time.perf_counter()
        assigner.close()
        save_s = time.perf_counter() - started
    finally:
        grouping_log.removeHandler(handler)
    saved = store.saved_story_index()
    put_back = next(
        (int(m.group(1)) for msg in handler.messages if (m := _PUT_BACK.search(msg))), None
    )
    result = IndexStart(
        put_back=put_back,
        rebuild_s=rebuild_s,
        save_s=save_s,
        snapshot_mb=len(saved.snapshot or b"") / 1e6,
    )
    progress(
        f"{backend.name}: first start after the fill: story index rebuilt in "
        f"{rebuild_s:.2f}s ({put_back} put back), saved in {save_s:.2f}s "
        f"({result.snapshot_mb:.1f} MB)"
    )
    return result


# --- feed rendering ----------------------------------------------------------------------


def catalog_settings(ctx: Context, url: str) -> Any:
    """The settings the measured catalog reads: every source, feeds of limit 100 merged
    by story (everything; 100 outlets; a tag of 200 outlets) and five series."""
    from aggregator.settings import Settings

    args = ctx.args
    width = max(4, len(str(args.sources)))
    rng = random.Random(f"scale-catalog:{args.seed}")
    generated = [f"s{n:0{width}d}" for n in range(1, args.sources + 1)]
    sources: list[dict[str, Any]] = [
        {"name": name, "url": f"https://s{n}.example/feed.xml", "tags": [] if n % 10 else ["world"]}
        for n, name in enumerate(generated, start=1)
    ]
    sources += [{"name": name, "url": url} for name, url in ctx.poll_urls.items()]
    outlet_sets = [sorted(rng.sample(generated, min(100, len(generated)))) for _ in range(3)]
    feeds = [{"slug": "all", "title": "Everything", "limit": FEED_LIMIT, "merge": "story"}]
    feeds += [
        {
            "slug": f"outlets-{k}",
            "title": f"Outlets {k}",
            "sources": names,
            "limit": FEED_LIMIT,
            "merge": "story",
        }
        for k, names in enumerate(outlet_sets, start=1)
    ]
    feeds.append({"slug": "tag-world", "title": "World", "tags": ["world"], "limit": FEED_LIMIT})
    series = [
        {"slug": slug, "title": slug.title(), "match": {"keywords": [f"zz{slug}"]}}
        for slug in SERIES
    ]
    return Settings.model_validate(
        {"database": url, "sources": sources, "feeds": feeds, "series": series}
    )


def sample_plan(count: int, seed: int, *, baseline: bool) -> list[tuple[str, str, int, str]]:
    """(kind, slug, page, format) of each sample."""
    rng = random.Random(f"scale-samples:{seed}")
    if baseline:
        choices = [(("feeds", "all", 1), 1.0)]
    else:
        choices = [
            (("feeds", "all", 1), 0.30),
            (("feeds", "all", 2), 0.10),
            (("feeds", "all", 3), 0.10),
            (("feeds", "outlets-1", 1), 0.07),
            (("feeds", "outlets-2", 1), 0.07),
            (("feeds", "outlets-3", 1), 0.06),
            (("feeds", "tag-world", 1), 0.15),
            *((("series", slug, 1), 0.03) for slug in SERIES),
        ]
    targets = [c for c, _ in choices]
    weights = [w for _, w in choices]
    plan = []
    for _ in range(count):
        kind, slug, page = rng.choices(targets, weights=weights)[0]
        plan.append((kind, slug, page, rng.choice(("rss", "atom", "json"))))
    return plan


@dataclass(slots=True, kw_only=True)
class RenderSample:
    feed: str
    fmt: str
    load_ms: float
    render_ms: float
    total_ms: float
    entries: int
    body_bytes: int


@dataclass(slots=True, kw_only=True)
class RenderResult:
    items: int
    samples: list[RenderSample]
    stopped_early: bool
    cpu: dict[str, float]
    quiet_load: float

    def stats(self, feed_prefix: str | None = None) -> dict[str, float]:
        chosen = [s for s in self.samples if feed_prefix is None or s.feed.startswith(feed_prefix)]
        totals = [s.total_ms for s in chosen]
        return {
            "n": len(chosen),
            "p50": percentile(totals, 50),
            "p95": percentile(totals, 95),
            "max": max(totals) if totals else math.nan,
            "load_p50": percentile([s.load_ms for s in chosen], 50),
            "render_p50": percentile([s.render_ms for s in chosen], 50),
            "entries": statistics.mean(s.entries for s in chosen) if chosen else math.nan,
            "kb": statistics.mean(s.body_bytes for s in chosen) / 1e3 if chosen else math.nan,
        }


def measure_render(
    ctx: Context, backend: Backend, store: Any, settings: Any, *, baseline: bool
) -> RenderResult:
    """What the server does for a feed it has no copy of (FeedEndpoint._rendered): load
    the page through a fresh catalog, render it, hash it, gzip it."""
    from aggregator.memory import collector_paused
    from aggregator.publish import FEED_FORMATS
    from aggregator.publish.catalog import StoreCatalog
    from aggregator.publish.etag import body_etag, page_last_modified
    from aggregator.publish.feed_cache import rendered

    args = ctx.args
    count = min(args.samples, 50) if baseline else args.samples
    plan = sample_plan(count, args.seed, baseline=baseline)
    items, _ = count_items(store.engine)
    load = quiet(args, f"{backend.name} render", ctx.warnings)
    window = CpuWindow()
    deadline = time.perf_counter() + args.render_budget
    samples = []
    stopped = False
    for kind, slug, number, fmt_name in plan:
        fmt = FEED_FORMATS[fmt_name]
        started = time.perf_counter()
        # As FeedEndpoint renders a page: the collector paused until the page is gone.
        with collector_paused():
            catalog = StoreCatalog(settings, store)
            page = catalog.feed_page(kind, slug, number)
            loaded = time.perf_counter()
            assert page is not None
            body = fmt.render(page)
            rendered(
                etag=body_etag(body),
                last_modified=page_last_modified(page),
                body=body,
                media_type=f"{fmt.media_type}; charset=utf-8",
                max_age=page.max_age,
            )
            entries = len(page.entries)
            del page, catalog
        finished = time.perf_counter()
        samples.append(
            RenderSample(
                feed=f"{kind}/{slug}?page={number}",
                fmt=fmt_name,
                load_ms=1000 * (loaded - started),
                render_ms=1000 * (finished - loaded),
                total_ms=1000 * (finished - started),
                entries=entries,
                body_bytes=len(body),
            )
        )
        if finished > deadline:
            stopped = len(samples) < len(plan)
            break
    result = RenderResult(
        items=items, samples=samples, stopped_early=stopped, cpu=window.stop(), quiet_load=load
    )
    if stopped:
        ctx.warnings.append(
            f"{backend.name} render: stopped after {len(samples)} of {len(plan)} samples "
            f"(--render-budget {args.render_budget:g}s)"
        )
    overall = result.stats()
    progress(
        f"{backend.name}: render ({'baseline' if baseline else 'at size'}): "
        f"p50 {overall['p50']:.1f} ms, p95 {overall['p95']:.1f} ms over {len(samples)}"
    )
    return result


# --- query plans -------------------------------------------------------------------------

_PLACEHOLDER = r"(?:\?|%\(\w+\)s(?:::(?:VARCHAR|INTEGER|TEXT|BIGINT))?)"
_LIST = re.compile(rf"{_PLACEHOLDER}(?:\s*,\s*{_PLACEHOLDER}){{6,}}")
_PG_ARRAY = re.compile(r"'\{[^}]{100,}\}'")


def abbreviate(sql: str) -> str:
    def placeholders(match: re.Match[str]) -> str:
        values = re.findall(_PLACEHOLDER, match.group(0))
        return f"{values[0]}, ... [{len(values)} values]"

    sql = _LIST.sub(placeholders, sql)
    return " ".join(sql.split())


def abbreviate_plan(line: str) -> str:
    return _PG_ARRAY.sub(
        lambda m: f"'{{{m.group(0)[2:40]}... [{m.group(0).count(',') + 1} elements]}}'", line
    )


def indexes_used(backend: str, plan: str) -> tuple[list[str], list[str]]:
    """(indexes used, full scans) named in a plan."""
    if backend == "postgresql":
        used = re.findall(
            r"(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\S+)", plan
        )
        full = [f"Seq Scan on {t}" for t in re.findall(r"Seq Scan on (\S+)", plan)]
    else:
        used = re.findall(r"USING (?:COVERING )?INDEX (\S+)", plan)
        used += [f"{t} (rowid)" for t in re.findall(r"(\w+) USING INTEGER PRIMARY KEY", plan)]
        full = [f"SCAN {t}" for t in re.findall(r"SCAN (\w+)\s*$", plan, flags=re.M)]
        full += [
            f"SCAN {t} (whole index {i})"
            for t, i in re.findall(r"SCAN (\w+) USING (?:COVERING )?INDEX (\S+)", plan)
        ]
    return sorted(set(used)), sorted(set(full))


@contextlib.contextmanager
def captured_sql(engine: Engine) -> Iterator[list[tuple[str, Any, float]]]:
    """Each statement the engine runs meanwhile: (text, parameters, milliseconds from
    sending it to the driver having executed it, rows not yet fetched)."""
    statements: list[tuple[str, Any, float]] = []

    def before(
        conn: Any, _cursor: Any, _statement: str, _parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        conn.info["scale_bench_sent"] = time.perf_counter()

    def after(
        conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool
    ) -> None:
        if not many:
            elapsed = 1000 * (time.perf_counter() - conn.info.pop("scale_bench_sent"))
            statements.append((statement, parameters, elapsed))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def explain(
    engine: Engine, backend: str, statement: str, parameters: Any
) -> tuple[list[str], float, int]:
    """(plan lines, milliseconds the statement took run alone, rows)."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            if backend == "postgresql":
                lines = [
                    row[0]
                    for row in connection.exec_driver_sql(
                        "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                    )
                ]
            else:
                rows = connection.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + statement, parameters
                ).all()
                depth: dict[int, int] = {0: -1}
                lines = []
                for node, parent, _, detail in rows:
                    depth[node] = depth.get(parent, -1) + 1
                    lines.append("  " * depth[node] + detail)
            started = time.perf_counter()
            found = len(connection.exec_driver_sql(statement, parameters).all())
            elapsed = 1000 * (time.perf_counter() - started)
        finally:
            transaction.rollback()
    return lines, elapsed, found


@dataclass(slots=True, kw_only=True)
class PlanReport:
    label: str
    call_ms: float
    queries: list[dict[str, Any]]


def query_plans(ctx: Context, backend: Backend, store: Any, settings: Any) -> list[PlanReport]:
    from aggregator.process.document import process_document
    from aggregator.process.moments import window_start
    from aggregator.reading_code import reading_code_key
    from aggregator.store import entries as store_entries
    from aggregator.store import items as store_items
    from aggregator.store import sources as store_sources
    from aggregator.store import stories as store_stories

    engine = store.engine
    now = datetime.now(UTC)
    names = [s.name for s in settings.sources]
    feed = build_feeds([ASSIGN_BASE + 999], ctx.args.poll_items, ctx.args.seed, "plan", now)
    ((name, (filename, body)),) = feed.items()
    document = process_document(
        body, content_type=None, url=f"http://plan.invalid/{filename}", source_name=name,
        now=now, rules=(), code_key=reading_code_key(),
    )  # fmt: skip
    with engine.connect() as connection:
        some_source = connection.exec_driver_sql("SELECT min(id) FROM sources").scalar_one()
        recent = [
            row[0]
            for row in connection.exec_driver_sql("SELECT id FROM items ORDER BY id DESC LIMIT 50")
        ]
    outlets = next(f for f in settings.feeds if f.slug == "outlets-1")
    calls: list[tuple[str, Callable[[Any], Any]]] = [
        (
            f"claim_due_sources ({len(names)} names, limit 8, per_host 2; none due)",
            lambda c: store_sources.claim_due_sources(
                c, names, now, owner="scale-bench", lease=timedelta(minutes=5), limit=8,
                per_host=2,
            ),
        ),
        (
            "feed page: story_entries, no filter (merge: story, limit 100 -> 101, page 1)",
            lambda c: store_entries.story_entries(
                c, source_filters=(), series_slugs=None, limit=FEED_LIMIT + 1, offset=0
            ),
        ),
        (
            "feed page: story_entries, 100 outlets (sources filter), page 1",
            lambda c: store_entries.story_entries(
                c, source_filters=(tuple(outlets.sources or ()),), series_slugs=None,
                limit=FEED_LIMIT + 1, offset=0,
            ),
        ),
        (
            "series page: story_entries, series-1, page 1",
            lambda c: store_entries.story_entries(
                c, source_filters=(), series_slugs=("series-1",), limit=FEED_LIMIT + 1,
                offset=0,
            ),
        ),
        ("story assignment: unassigned_ids", store_stories.unassigned_ids),
        (
            "story assignment: unassigned_members (50 ids)",
            lambda c: store_stories.unassigned_members(c, recent),
        ),
        (
            "story assignment: assigned_since(now - 72h) (the index's warm start)",
            lambda c: store_stories.assigned_since(
                c, window_start(now, timedelta(hours=72))
            ),
        ),
        (
            f"save_poll: save_items' reads ({len(document.items)} new items of one source)",
            lambda c: store_items.save_items(
                c, source_id=some_source, batch=document.items, series={}, now=now
            ),
        ),
    ]  # fmt: skip
    reports = []
    for label, call in calls:
        # As the application runs them: on one connection, again and again (psycopg
        # prepares a statement from its fifth run on, and PostgreSQL may then keep a
        # generic plan), each run rolled back. Timed: the runs after the first.
        call_times: list[float] = []
        in_app: dict[str, list[float]] = defaultdict(list)
        with engine.connect() as connection:
            for run in range(1 + PLAN_RUNS):
                with captured_sql(engine) as statements:
                    transaction = connection.begin()
                    started = time.perf_counter()
                    try:
                        call(connection)
                    finally:
                        elapsed_ms = 1000 * (time.perf_counter() - started)
                        transaction.rollback()
                if run:
                    call_times.append(elapsed_ms)
                    for statement, _, ms in statements:
                        in_app[statement].append(ms)
        call_ms = statistics.median(call_times)
        seen: set[str] = set()
        queries = []
        for statement, parameters, _ in statements:
            head = statement.lstrip().upper()
            if not head.startswith(("SELECT", "WITH")) or not re.search(r"\bFROM\b", head):
                continue
            if statement in seen:
                continue
            seen.add(statement)
            lines, elapsed, rows = explain(engine, backend.name, statement, parameters)
            plan = "\n".join(lines)
            used, full = indexes_used(backend.name, plan)
            queries.append(
                {
                    "sql": abbreviate(statement),
                    "ms": round(elapsed, 2),
                    # per run of the call: a statement may run more than once in one
                    "app_ms": round(sum(in_app[statement]) / PLAN_RUNS, 2),
                    "rows": rows,
                    "plan": [abbreviate_plan(line) for line in lines],
                    "indexes": used,
                    "full_scans": full,
                }
            )
        reports.append(PlanReport(label=label, call_ms=call_ms, queries=queries))
        progress(f"{backend.name}: plans: {label}: {call_ms:.0f} ms")
    return reports


# --- one backend, end to end --------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class BackendResult:
    backend: str
    location: str
    poll_empty: PollResult
    poll_full: PollResult
    cycle_empty: CycleResult
    cycle_full: CycleResult
    assign_empty: AssignResult
    assign_full: AssignResult
    render_baseline: RenderResult
    render_full: RenderResult
    fill: FillResult
    index_start: IndexStart
    items_at_end: int
    size: dict[str, Any]
    plans: list[PlanReport]


@dataclass(slots=True)
class Context:
    args: argparse.Namespace
    run_dir: Path
    feeds_dir: Path
    server: FeedServer
    aggregator: AggregatorCommand
    poll_urls: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    _cycles: dict[int, dict[str, tuple[str, bytes]]] = field(default_factory=dict)
    anchor: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def poll_feeds(self, cycle: int) -> dict[str, tuple[str, bytes]]:
        """The poll's feeds in a cycle: the same outlets, every item new in each cycle."""
        if cycle not in self._cycles:
            self._cycles[cycle] = build_feeds(
                range(1, self.args.poll_feeds + 1),
                self.args.poll_items,
                self.args.seed + 1000 * cycle,
                f"c{cycle}",
                self.anchor,
            )
        return self._cycles[cycle]


def run_backend(ctx: Context, backend: Backend) -> BackendResult:
    from aggregator.store import Store

    progress(f"{backend.name}: fresh store at {backend.location}")
    backend.create()
    work = ctx.run_dir / backend.name
    work.mkdir(parents=True, exist_ok=True)
    config = work / "aggregator.yaml"
    write_config(config, backend.url, ctx.poll_urls)
    store = None
    try:
        migrated = run_measured(
            ctx.aggregator.argv("--config", str(config), "migrate"),
            timeout=600,
            log_dir=ctx.run_dir / "logs",
            label=f"{backend.name}-migrate",
            env=ctx.aggregator.env,
            cwd=ctx.run_dir,
        )
        if migrated.returncode != 0:
            raise RuntimeError(f"aggregator migrate failed:\n{migrated.stderr}")
        store = Store.open(backend.url)
        settings = catalog_settings(ctx, backend.url)
        poll_empty = run_poll(ctx, backend, store.engine, config, 0, "empty")
        assign_empty = measure_assignment(ctx, backend, store, 0)
        render_baseline = measure_render(ctx, backend, store, settings, baseline=True)
        # After the rendering: its 20,000 items of full text would top every feed page.
        cycle_empty = measure_cycle(ctx, backend, store, config, (10, 11), "empty")
        fill = bulk_fill(ctx, backend, datetime.now(UTC))
        store.close()  # new connections: the fill's ANALYZE is to be seen by all
        store = Store.open(backend.url)
        index_start = start_index(backend, store, config)
        poll_full = run_poll(ctx, backend, store.engine, config, 1, "at size")
        assign_full = measure_assignment(ctx, backend, store, 1)
        render_full = measure_render(ctx, backend, store, settings, baseline=False)
        cycle_full = measure_cycle(ctx, backend, store, config, (12, 13), "at size")
        items_at_end, _ = count_items(store.engine)
        size = backend.size(store.engine)
        plans = query_plans(ctx, backend, store, settings)
        return BackendResult(
            backend=backend.name,
            location=backend.location,
            poll_empty=poll_empty,
            poll_full=poll_full,
            cycle_empty=cycle_empty,
            cycle_full=cycle_full,
            assign_empty=assign_empty,
            assign_full=assign_full,
            render_baseline=render_baseline,
            render_full=render_full,
            fill=fill,
            index_start=index_start,
            items_at_end=items_at_end,
            size=size,
            plans=plans,
        )
    finally:
        if store is not None:
            store.close()
        if ctx.args.keep:
            progress(f"{backend.name}: kept {backend.location}")
        else:
            backend.drop()


def kept_backend(ctx: Context, kind: str) -> Backend:
    """The store a ``--keep`` run left, migrated to this code's schema."""
    from aggregator.store import create_store_engine, migrate

    backend: Backend
    if kind == "sqlite":
        backend = SqliteBackend(ctx.run_dir)
        if not backend.path.exists():
            raise SystemExit(f"no kept SQLite store at {backend.path}: run with --keep first")
    else:
        if not ctx.args.postgres_schema:
            raise SystemExit("a kept PostgreSQL store needs --postgres-schema scale_...")
        backend = PostgresBackend(ctx.args.postgres_url, schema=ctx.args.postgres_schema)
    engine = create_store_engine(backend.url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return backend


def poll_only(ctx: Context, kinds: Sequence[str], polls: int) -> int:
    """Ingest polls alone, on the stores a ``--keep`` run left: for trying a change to
    ingest at size without filling a million items again. Each poll brings new items
    (a cycle of its own), so the store grows by one poll's items each time."""
    for kind in kinds:
        backend = kept_backend(ctx, kind)
        work = ctx.run_dir / backend.name
        work.mkdir(parents=True, exist_ok=True)
        config = work / "aggregator.yaml"
        write_config(config, backend.url, ctx.poll_urls)
        engine = create_engine(backend.url)
        first_cycle = int(time.time())  # new guids and links: every item new to the store
        try:
            for n in range(polls):
                label = f"poll-only {n + 1}"
                result = run_poll(ctx, backend, engine, config, first_cycle + n, label)
                print(
                    f"{backend.name} poll {n + 1}: {result.items_before:,} items before, "
                    f"{result.wall_s:.2f}s wall, {result.items_per_s:.0f} items/s, "
                    f"to index {result.to_index_s}s, assign {result.assign_s}s, "
                    f"others {result.other_cores}c"
                )
        finally:
            engine.dispose()
    return 0


def render_only(ctx: Context, kinds: Sequence[str]) -> int:
    """Feed rendering alone, on the stores a ``--keep`` run left: for trying a change to
    the feed pages without filling a million items again."""
    from aggregator.store import Store

    for kind in kinds:
        backend = kept_backend(ctx, kind)
        store = Store.open(backend.url)
        try:
            result = measure_render(
                ctx, backend, store, catalog_settings(ctx, backend.url), baseline=False
            )
        finally:
            store.close()
        print(f"=== {backend.name} ({backend.location}), {result.items:,} items ===")
        print(f"   {'':<26} {'n':>4} {'p50':>8} {'p95':>8} {'max':>8} {'load p50':>9} "
              f"{'render p50':>10}")  # fmt: skip
        for label, prefix in (
            ("all samples", None),
            ("merged feeds (feeds/*)", "feeds/"),
            ("feeds/all (pages 1-3)", "feeds/all"),
            ("feeds/outlets-* (100)", "feeds/outlets"),
            ("feeds/tag-world (200)", "feeds/tag-world"),
            ("series/*", "series/"),
        ):
            st = result.stats(prefix)
            print(
                f"   {label:<26} {st['n']:>4} {st['p50']:>8.1f} {st['p95']:>8.1f} "
                f"{st['max']:>8.1f} {st['load_p50']:>9.1f} {st['render_p50']:>10.1f}"
            )
    return 0


# --- the report ------------------------------------------------------------------------------


def _index_origin(put_back: int | None, taken_up: bool) -> str:
    if taken_up:
        return "saved"
    return "-" if put_back is None else str(put_back)


def render_report(ctx: Context, results: list[BackendResult], meta: dict[str, Any]) -> str:
    args = ctx.args
    out: list[str] = []
    add = out.append
    add(
        f"scale benchmark: {args.items:,} items from {args.sources:,} sources; poll "
        f"{args.poll_feeds} feeds x {args.poll_items} new items; {args.samples} render samples"
    )
    add(
        f"machine: {meta['cpus']} cores, {meta.get('cpu_model', '?')}; repository HEAD "
        f"{meta.get('commit', '?')}; aggregator code {meta['code']}"
    )
    if meta.get("uncommitted"):
        add(
            f"working tree: {len(meta['uncommitted'])} uncommitted paths under aggregator/ "
            f"({', '.join(x.strip() for x in meta['uncommitted'][:4])}, ...)"
        )
    for r in results:
        f = r.fill
        add("")
        add(f"=== {r.backend} ({r.location}) ===")
        add(
            f"fill: {f.items:,} items, {f.stories:,} stories ({f.multi_stories:,} of 2-8 items "
            f"holding {f.multi_items:,} items), {f.credits:,} credits, {f.series_rows:,} series "
            f"rows, {f.sources:,} sources in {f.fill_s:.0f}s "
            f"({f.items / f.fill_s:,.0f} items/s); "
            f"{'VACUUM ANALYZE' if r.backend == 'postgresql' else 'ANALYZE'} {f.analyze_s:.0f}s"
        )
        i = r.index_start
        add(
            f"first start after the fill: story index rebuilt from {i.put_back} items of the "
            f"window in {i.rebuild_s:.2f}s, saved in {i.save_s:.2f}s ({i.snapshot_mb:.1f} MB); "
            "later processes take it up"
        )
        add("")
        add("1. ingest: aggregator poll as a whole process (every item new)")
        add(
            f"   {'store':<8} {'items before':>12} {'wall s':>7} {'new':>6} {'items/s':>8} "
            f"{'CPU s':>6} {'pg CPU s':>8} {'placed':>7} {'put back':>8} {'to index s':>10} "
            f"{'rebuild s':>9} {'assign s':>8} {'others':>7}"
        )

        def sec(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}"

        for label, p in (("empty", r.poll_empty), ("at size", r.poll_full)):
            add(
                f"   {label:<8} {p.items_before:>12,} {p.wall_s:>7.2f} {p.new:>6} "
                f"{p.items_per_s:>8.0f} {p.cpu_s:>6.1f} {p.postgres_cpu_s:>8.1f} "
                f"{p.placed if p.placed is not None else '-':>7} "
                f"{_index_origin(p.put_back, p.taken_up):>8} {sec(p.to_index_s):>10} "
                f"{sec(p.rebuild_s):>9} {sec(p.assign_s):>8} {p.other_cores:>6.2f}c"
            )
        ingest = ratio(r.poll_full.items_per_s, r.poll_empty.items_per_s)
        op, target = TARGETS["ingest"][1:]
        add(
            f"   items/s at size / empty: {fmt_ratio(ingest)} (target {op} {target}: "
            f"{verdict(ingest, op, target)}); wall at size / empty: "
            f"{fmt_ratio(ratio(r.poll_full.wall_s, r.poll_empty.wall_s))}"
        )
        cpu_empty = (r.poll_empty.cpu_s + r.poll_empty.postgres_cpu_s) / max(1, r.poll_empty.new)
        cpu_full = (r.poll_full.cpu_s + r.poll_full.postgres_cpu_s) / max(1, r.poll_full.new)
        add(
            f"   CPU ms per new item (the poll's process tree"
            f"{' + the PostgreSQL server, whoever asked' if r.backend == 'postgresql' else ''}): "
            f"empty {1000 * cpu_empty:.2f}, at size {1000 * cpu_full:.2f}; empty / at size "
            f"{fmt_ratio(ratio(cpu_empty, cpu_full))} (less sensitive to others than wall time)"
        )
        add(
            "   (from the poll's log: 'to index': start until the story index is ready, i.e. "
            "the polls,\n   then the index rebuilt from the window's assigned items ('put back'"
            " says how many),\n   or taken up as the last process saved it ('saved'); 'rebuild': "
            "that rebuild alone\n   (PostgreSQL only: SQLite's role is taken silently); "
            "'assign': the cycle's items placed.\n   'others': cores used meanwhile by "
            "processes outside the run)"
        )
        add("")
        add(
            "1b. ingest: a poll cycle in a running process (open_pipeline + poll_all, the "
            "daemon's code; the second\n    of two cycles, so the story index, the parse "
            "workers and the connections are warm)"
        )
        add(f"   {'store':<8} {'items before':>12} {'wall s':>7} {'new':>6} {'items/s':>8} "
            f"{'1st cycle s':>11} {'others':>7}")  # fmt: skip
        for label, c in (("empty", r.cycle_empty), ("at size", r.cycle_full)):
            add(
                f"   {label:<8} {c.items_before:>12,} {c.wall_s:>7.2f} {c.new:>6} "
                f"{c.items_per_s:>8.0f} {c.first_s:>11.2f} {c.cpu['other_cores']:>6.2f}c"
            )
        cycle = ratio(r.cycle_full.items_per_s, r.cycle_empty.items_per_s)
        add(
            f"   items/s at size / empty: {fmt_ratio(cycle)} (target {op} {target}: "
            f"{verdict(cycle, op, target)})"
        )
        add("")
        add("2. story assignment, in-process: StoryAssigner(store, GroupingRules()).assign_pending")
        add(
            f"   {'store':<8} {'items before':>12} {'1st call':>9} {'put back':>9} "
            f"{'1st s':>6} {'batch':>6} {'batch s':>8} {'ms/item':>8} {'fresh ms/item':>13} "
            f"{'save ms/item':>13} {'others':>7}"
        )
        for label, a in (("empty", r.assign_empty), ("at size", r.assign_full)):
            add(
                f"   {label:<8} {a.items_before:>12,} {a.first_items:>9} "
                f"{_index_origin(a.put_back, a.taken_up):>9} {a.first_s:>6.2f} "
                f"{a.steady_items:>6} {a.steady_s:>8.2f} {a.steady_ms_per_item:>8.3f} "
                f"{a.fresh_ms_per_item:>13.3f} {a.save_ms_per_item:>13.3f} "
                f"{a.cpu['other_cores']:>6.2f}c"
            )
        per_item = ratio(r.assign_full.steady_ms_per_item, r.assign_empty.steady_ms_per_item)
        fresh = ratio(r.assign_full.fresh_ms_per_item, r.assign_empty.fresh_ms_per_item)
        add(
            "   ('batch': items as the feeds date them, over the week before; 'fresh': another "
            "batch\n   re-dated to the last hour; '1st call' also rebuilds the index from the "
            "window's items)"
        )
        add(
            f"   ms/item at size / empty: {fmt_ratio(per_item)} (fresh: {fmt_ratio(fresh)})"
            f"; first call (index rebuilt from the window) at size / empty: "
            f"{fmt_ratio(ratio(r.assign_full.first_s, r.assign_empty.first_s))}"
            f"; save_poll ms/item at size / empty: "
            f"{fmt_ratio(ratio(r.assign_full.save_ms_per_item, r.assign_empty.save_ms_per_item))}"
        )
        add("")
        add("3. feed page load + render, nothing cached in the process (ms)")
        add(
            f"   {'':<26} {'n':>4} {'p50':>8} {'p95':>8} {'max':>8} {'load p50':>9} "
            f"{'render p50':>10} {'entries':>7} {'KB':>6}"
        )
        rows = [
            (f"baseline, {r.render_baseline.items:,} items", None),
            ("  feeds/all?page=1", r.render_baseline.stats()),
            (f"at size, {r.render_full.items:,} items", None),
            ("  all samples", r.render_full.stats()),
            ("  merged feeds (feeds/*)", r.render_full.stats("feeds/")),
            ("  feeds/all (pages 1-3)", r.render_full.stats("feeds/all")),
            ("  feeds/outlets-* (100)", r.render_full.stats("feeds/outlets")),
            ("  feeds/tag-world (200)", r.render_full.stats("feeds/tag-world")),
            ("  series/*", r.render_full.stats("series/")),
        ]
        for label, s in rows:
            if s is None:
                add(f"   {label}")
                continue
            add(
                f"   {label:<26} {s['n']:>4} {s['p50']:>8.1f} {s['p95']:>8.1f} {s['max']:>8.1f} "
                f"{s['load_p50']:>9.1f} {s['render_p50']:>10.1f} {s['entries']:>7.0f} "
                f"{s['kb']:>6.0f}"
            )
        p95 = r.render_full.stats("feeds/")["p95"]
        op, target = TARGETS["render_p95_ms"][1:]
        add(
            f"   merged feeds (the issue's 'merged feed of 100 stories'), p95 at size: "
            f"{p95:.1f} ms (target {op} {target:g} ms: {verdict(p95, op, target)}); series "
            f"pages p95 {r.render_full.stats('series/')['p95']:.1f} ms (no target; see "
            f"docs/design.md);\n   machine during the samples: "
            f"{r.render_full.cpu['other_cores']:.2f} cores busy with others"
        )
        add("")
        add(f"4. size at {r.items_at_end:,} items")
        size = r.size
        if r.backend == "sqlite":
            add(f"   file {mb(size['file'])} + wal {mb(size['wal'])} = {mb(size['total'])}")
        else:
            add(f"   sum of pg_total_relation_size over the schema's tables: {mb(size['total'])}")
        add(f"   {size['total'] / r.items_at_end:,.0f} bytes per item (every table and index)")
        for table, nbytes in sorted(size["tables"].items(), key=lambda kv: -kv[1]):
            add(f"     {table:<28} {mb(nbytes):>12}")
        add("")
        add(f"5. query plans at {r.items_at_end:,} items")
        for plan in r.plans:
            add(
                f"-- {plan.label}: {plan.call_ms:.1f} ms for the whole call "
                f"(median of {PLAN_RUNS} runs after a first)"
            )
            for q in plan.queries:
                add(
                    f"   SQL ({q.get('app_ms', math.nan):.1f} ms in the call, "
                    f"{q['ms']:.1f} ms alone, {q['rows']} rows): {q['sql']}"
                )
                for line in q["plan"]:
                    add(f"      | {line}")
                add(f"      indexes: {', '.join(q['indexes']) or '-'}")
                if q["full_scans"]:
                    add(f"      FULL SCANS: {', '.join(q['full_scans'])}")
    if results:
        add("")
        add("=== summary ===")
        add(f"{'':<52} " + " ".join(f"{r.backend:>12}" for r in results) + "   target")

        def at_size_and_empty(
            label: str,
            empty: Callable[[BackendResult], float],
            full: Callable[[BackendResult], float],
            digits: int,
            target: str,
        ) -> list[tuple[str, list[str], str]]:
            """A figure on the empty store, at size, and their ratio (against ``target``)."""
            return [
                (f"{label}, empty", [f"{empty(r):.{digits}f}" for r in results], ""),
                (f"{label}, at size", [f"{full(r):.{digits}f}" for r in results], ""),
                (
                    f"{label}, size/empty",
                    [fmt_ratio(ratio(full(r), empty(r))) for r in results],
                    target,
                ),
            ]  # fmt: skip

        lines: list[tuple[str, list[str], str]] = [
            *at_size_and_empty(
                "ingest items/s, poll process",
                lambda r: r.poll_empty.items_per_s,
                lambda r: r.poll_full.items_per_s,
                0,
                ">= 0.8",
            ),
            *at_size_and_empty(
                "ingest items/s, running process's cycle",
                lambda r: r.cycle_empty.items_per_s,
                lambda r: r.cycle_full.items_per_s,
                0,
                ">= 0.8",
            ),
            *at_size_and_empty(
                "assignment ms/item",
                lambda r: r.assign_empty.steady_ms_per_item,
                lambda r: r.assign_full.steady_ms_per_item,
                3,
                "flat",
            ),
            (
                "assignment ms/item, fresh items, at size / empty",
                [
                    fmt_ratio(
                        ratio(r.assign_full.fresh_ms_per_item, r.assign_empty.fresh_ms_per_item)
                    )
                    for r in results
                ],
                "flat",
            ),
            *(
                (
                    f"{pages} load+render {figure} ms, at size",
                    [f"{r.render_full.stats(prefix)[figure]:.1f}" for r in results],
                    "< 50" if (prefix, figure) == ("feeds/", "p95") else "",
                )
                for pages, prefix, figures in (
                    ("merged feed", "feeds/", ("p50", "p95", "max")),
                    ("series page", "series/", ("p95",)),
                )
                for figure in figures
            ),
            (
                "bytes per item",
                [f"{r.size['total'] / r.items_at_end:,.0f}" for r in results],
                "",
            ),
        ]
        for label, values, target in lines:
            add(f"{label:<52} " + " ".join(f"{v:>12}" for v in values) + f"   {target}")
    if ctx.warnings:
        add("")
        add("WARNINGS:")
        out.extend(f"  - {w}" for w in ctx.warnings)
    return "\n".join(out)


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=1_000_000, help="items of the fill")
    p.add_argument("--sources", type=int, default=2000, help="sources of the fill")
    p.add_argument(
        "--span-days",
        type=float,
        default=90,
        help="the fill's items are dated over this many days before now (3: all in the window)",
    )
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="a fresh schema is made in it")
    p.add_argument("--poll-feeds", type=int, default=200, help="feeds of the ingest poll")
    p.add_argument("--poll-items", type=int, default=50, help="new items per feed and poll")
    p.add_argument(
        "--assign-items",
        type=int,
        help=f"items of each timed assignment batch (default 2000; 500 below {QUICK:,} items)",
    )
    p.add_argument(
        "--samples", type=int, help=f"feed renders at size (default 200; 40 below {QUICK:,} items)"
    )
    p.add_argument(
        "--render-budget", type=float, default=1500, help="seconds of render samples at most"
    )
    p.add_argument("--hosts", type=int, default=16, help="loopback addresses of the feed server")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=1800, help="per poll process, seconds")
    p.add_argument(
        "--quiet-wait",
        type=float,
        help="before each timed phase, wait up to this many seconds for the machine to be "
        f"idle (others' tests share it); 0 to skip (default 60; 0 below {QUICK:,} items)",
    )
    p.add_argument("--keep", action="store_true", help="keep the stores (schema / file)")
    p.add_argument(
        "--render-only",
        action="store_true",
        help="only the feed rendering, on the stores a --keep run left (migrated first)",
    )
    p.add_argument(
        "--poll-only",
        type=int,
        metavar="N",
        help="only N ingest polls (whole aggregator poll processes, every item new), on the "
        "stores a --keep run left (migrated first); each adds --poll-feeds x --poll-items items",
    )
    p.add_argument(
        "--postgres-schema",
        help="with --render-only or --poll-only: the kept schema (scale_...) to use",
    )
    p.add_argument("--live", action="store_true", help="run the working tree, not a snapshot")
    p.add_argument(
        "--code",
        type=Path,
        help="snapshot the aggregator package found in this directory instead of the "
        "working tree's (e.g. a commit: git archive HEAD aggregator | tar -x -C DIR)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    quick = args.items < QUICK  # a quick check: done in under a minute
    for name, full, small in (
        ("assign_items", 2000, 500),
        ("samples", 200, 40),
        ("quiet_wait", 60, 0),
    ):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    if args.items < 1 or args.sources < 2 or args.poll_feeds < 1 or args.poll_items < 1:
        p.error("--items >= 1, --sources >= 2, --poll-feeds >= 1, --poll-items >= 1")
    if args.poll_feeds >= ASSIGN_BASE:
        p.error(f"--poll-feeds must stay below {ASSIGN_BASE}")
    return args


def machine_meta(aggregator: AggregatorCommand, args: argparse.Namespace) -> dict[str, Any]:
    source = "the working tree" if args.live else f"a snapshot of {args.code or 'the working tree'}"
    meta: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "code": f"{aggregator.fingerprint} ({source})",
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                meta["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        head = (REPO / ".git" / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            head = (REPO / ".git" / head[5:]).read_text().strip()
        meta["commit"] = head[:7]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        # Read-only (no index refresh): what of the package differs from that commit.
        status = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(REPO), "status", "--porcelain", "--",
             "aggregator"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        meta["uncommitted"] = [line for line in status.stdout.splitlines() if line]
    return meta


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = args.out / "scale-run"
    shutil.rmtree(run_dir / "logs", ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    feeds_dir = Path(tempfile.mkdtemp(prefix="aggregator-scale-feeds-"))
    server: FeedServer | None = None

    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        aggregator = prepare_aggregator(run_dir, live=args.live, source=args.code)
        if aggregator.pythonpath is not None:
            sys.path.insert(0, str(aggregator.pythonpath))  # in-process parts run it too
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        progress(f"aggregator code {aggregator.fingerprint} ({aggregator.pythonpath or 'live'})")
        # The feeds' bytes are written before each poll (a cycle of its own); names and
        # addresses stay.
        server = FeedServer(feeds_dir, args.hosts)
        factory = FeedFactory(seed=args.seed, items=1, anchor=datetime.now(UTC))
        urls = {
            FeedFactory.name(index): server.url(index - 1, factory.filename(index))
            for index in range(1, args.poll_feeds + 1)
        }
        ctx = Context(
            args=args,
            run_dir=run_dir,
            feeds_dir=feeds_dir,
            server=server,
            aggregator=aggregator,
            poll_urls=urls,
        )
        meta = machine_meta(aggregator, args)
        kinds = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
        if args.render_only:
            return render_only(ctx, kinds)
        if args.poll_only:
            return poll_only(ctx, kinds, args.poll_only)
        results = []
        for kind in kinds:
            backend: Backend = (
                SqliteBackend(run_dir) if kind == "sqlite" else PostgresBackend(args.postgres_url)
            )
            results.append(run_backend(ctx, backend))
        report = render_report(ctx, results, meta)
        print(report)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"scale-{stamp}.txt").write_text(report + "\n", encoding="utf-8")
        (args.out / f"scale-{stamp}.json").write_text(
            json.dumps(
                {
                    "meta": meta,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "results": [asdict(r) for r in results],
                    "warnings": ctx.warnings,
                },
                indent=1,
                default=str,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"\nreport: {args.out / f'scale-{stamp}.txt'} (and .json); logs: {run_dir / 'logs'}")
        return 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(feeds_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
