"""Ingest benchmark: ``aggregator poll`` against lemon24's ``reader`` on the same feeds.

    .venv/bin/python bench/ingest.py --feeds 1000 --items 50

1. generate N feeds (RSS 2.0 / Atom 1.0, half each, ~3 KB of HTML per item; seeded) plus
   every file of ../shared/corpus/realworld/ into a temp dir;
2. serve them from a loopback server in a separate process (ETag, Last-Modified, 304);
3. for each phase, run ``aggregator --config CFG poll`` as a whole process, then reader
   (bench/reader_side.py in its own venv) on the same URLs, measuring wall time, CPU time,
   peak RSS of the process tree and the database size:
     cold     empty databases, everything is new
     warm     nothing changed: every feed answers 304
     changed  10% of the generated feeds gain 5 new items (new bytes, new ETag)
4. print a table with the ours/reader ratios next to the targets of issue 3 and write it all
   as JSON to bench/out/ingest-<timestamp>.json.

Progress goes to stderr, the report to stdout. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from procmon import Measured, run_measured, wait_until_quiet
from synthetic import FeedFactory

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CORPUS = REPO.parent / "shared" / "corpus" / "realworld"
DEFAULT_OUT = BENCH / "out"
DEFAULT_READER_VENV = DEFAULT_OUT / "reader-venv"
PHASES = ("cold", "warm", "changed")
SERVER_START_TIMEOUT = 120.0
OTHER_CPU_WARN = 0.10  # warn when other processes took this share of a core during a run

# Targets from issue 3 ("Throughput"), as ratios in one run at 1000 feeds x 50 items.
TARGETS = {
    "cold_items_per_s": ("cold: items/s, ours / reader", ">=", 10.0),
    "warm_speedup": ("warm: speed-up, reader wall / ours", ">=", 3.0),
    "changed_speedup": ("changed: speed-up, reader wall / ours", ">=", 10.0),
    "memory": ("peak memory (PSS), ours / reader, max of phases", "<=", 3.0),
}


def progress(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- feeds on disk ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedRef:
    name: str  # source name in the aggregator config: f0001, c001
    group: str  # "generated" | "corpus"
    filename: str
    origin: str  # generator kind, or the corpus path


def write_generated(
    factory: FeedFactory, count: int, root: Path, mtime: float
) -> tuple[list[FeedRef], int]:
    refs: list[FeedRef] = []
    total = 0
    for index in range(1, count + 1):
        feed = factory.build(index)
        path = root / feed.filename
        path.write_bytes(feed.body)
        os.utime(path, (mtime, mtime))
        total += len(feed.body)
        refs.append(FeedRef(feed.name, "generated", feed.filename, feed.kind))
        if index % 200 == 0:
            progress(f"  generated {index}/{count} feeds")
    return refs, total


def copy_corpus(root: Path, mtime: float) -> tuple[list[FeedRef], int]:
    refs: list[FeedRef] = []
    total = 0
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    for number, src in enumerate(files, start=1):
        name = f"c{number:03d}"
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(src.relative_to(CORPUS)).replace("/", "--"))
        filename = f"{name}-{safe}"
        dest = root / filename
        shutil.copyfile(src, dest)
        os.utime(dest, (mtime, mtime))
        total += src.stat().st_size
        refs.append(FeedRef(name, "corpus", filename, str(src.relative_to(CORPUS))))
    return refs, total


# --- the feed server process ----------------------------------------------------------


class FeedServer:
    """bench/feedserver.py in its own process; killed on exit whatever happens."""

    def __init__(self, root: Path, hosts: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "feedserver.py"), str(root), "--hosts", str(hosts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._first_line(SERVER_START_TIMEOUT)
        info = json.loads(line)
        self.hosts: list[tuple[str, int]] = [(h, int(p)) for h, p in info["hosts"]]
        self.files = int(info["files"])

    def _first_line(self, timeout: float) -> str:
        box: list[str] = []
        assert self.proc.stdout is not None
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        reader.daemon = True
        reader.start()
        reader.join(timeout)
        if not box or not box[0].strip():
            self.stop()
            raise RuntimeError(f"feed server did not start within {timeout:g}s")
        return box[0]

    def url(self, index: int, filename: str) -> str:
        host, port = self.hosts[index % len(self.hosts)]
        return f"http://{host}:{port}/{filename}"

    def _call(self, method: str, path: str) -> dict[str, Any]:
        host, port = self.hosts[0]
        request = urllib.request.Request(f"http://{host}:{port}{path}", method=method)
        with urllib.request.urlopen(request, timeout=120) as response:
            return dict(json.loads(response.read()))

    def reload(self) -> int:
        return int(self._call("POST", "/_reload")["files"])

    def stats(self, *, reset: bool = False) -> dict[str, Any]:
        return self._call("GET", "/_stats?reset=1" if reset else "/_stats")

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            if self.proc.stdin:
                self.proc.stdin.close()  # the server exits when its stdin closes
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


# --- the aggregator under test ---------------------------------------------------------

_MAIN = "import sys; from aggregator.cli import main; sys.argv[0] = 'aggregator'; sys.exit(main())"
# Every module but the Alembic scripts (which only run inside Alembic): a snapshot taken
# while someone is mid-edit fails here rather than in the middle of a phase.
_IMPORT_ALL = (
    "import importlib, pkgutil, aggregator\n"
    "for m in pkgutil.walk_packages(aggregator.__path__, 'aggregator.'):\n"
    "    if '.migrations' not in m.name: importlib.import_module(m.name)\n"
)
SNAPSHOT_ATTEMPTS = 6
SNAPSHOT_RETRY_S = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AggregatorCommand:
    """How to run ``aggregator``: the project venv's python on a snapshot of the package
    taken when the bench starts (other people edit the tree meanwhile: every phase must run
    the same code), or on the live tree with ``--live``."""

    python: Path
    pythonpath: Path | None  # the snapshot's parent dir, or None for the installed package
    cwd: Path
    fingerprint: str  # hash of the package's *.py files as run

    def argv(self, *args: str) -> list[str]:
        return [str(self.python), "-c", _MAIN, *args]

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.pythonpath is not None:
            env["PYTHONPATH"] = str(self.pythonpath)
        return env


def package_fingerprint(package: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def prepare_aggregator(
    run_dir: Path, *, live: bool, source: Path | None = None
) -> AggregatorCommand:
    """Snapshot ``source`` (a directory holding an ``aggregator`` package; default: this
    repository) into ``run_dir/snapshot``, or with ``live`` run the installed tree as is."""
    package = (source or REPO) / "aggregator"
    if not (package / "__init__.py").exists():
        raise SystemExit(f"no aggregator package in {package.parent}")
    if live:
        return AggregatorCommand(
            python=Path(sys.executable),
            pythonpath=None,
            cwd=run_dir,
            fingerprint=package_fingerprint(package),
        )
    snapshot = run_dir / "snapshot"
    problem = ""
    for attempt in range(1, SNAPSHOT_ATTEMPTS + 1):
        shutil.rmtree(snapshot, ignore_errors=True)
        shutil.copytree(
            package, snapshot / "aggregator", ignore=shutil.ignore_patterns("__pycache__")
        )
        # Byte-compile the copy as pip does at install time: PYTHONDONTWRITEBYTECODE is
        # set on some machines, and then every poll would compile every module again.
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(snapshot)],
            capture_output=True,
            timeout=120,
            check=False,
        )
        command = AggregatorCommand(
            python=Path(sys.executable),
            pythonpath=snapshot,
            cwd=run_dir,
            fingerprint=package_fingerprint(snapshot / "aggregator"),
        )
        probe = subprocess.run(
            [str(command.python), "-c", _IMPORT_ALL],
            env=command.env,
            cwd=run_dir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if probe.returncode == 0:
            return command
        problem = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else "?"
        progress(f"the snapshot does not import ({problem}); the tree may be mid-edit")
        if attempt < SNAPSHOT_ATTEMPTS:
            time.sleep(SNAPSHOT_RETRY_S)
    raise RuntimeError(f"aggregator does not import from a snapshot of {package}: {problem}")


# --- the two sides ----------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class RunResult:
    side: str
    phase: str
    wall_s: float
    cpu_s: float
    peak_mb: float  # RSS summed over the process tree
    pss_mb: float | None  # PSS summed over the process tree (shared pages counted once)
    db_mb: float
    returncode: int
    timed_out: bool
    new: dict[str, int]  # per group
    feeds: dict[str, int]  # ok / not_modified / failed
    items_per_s: float
    feeds_per_s: float
    server: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def new_total(self) -> int:
        return sum(self.new.values())


def file_mb(*paths: Path) -> float:
    return sum(p.stat().st_size for p in paths if p.exists()) / 1e6


def db_files(db: Path) -> tuple[Path, Path]:
    return db, db.with_name(db.name + "-wal")


def count_rows(db: Path, table: str) -> int | None:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return None


_OK = re.compile(r"^(\S+)\s+ok\s+(\d+) items?, (\d+) new\s*$")
_NOT_MODIFIED = re.compile(r"^(\S+)\s+not modified\s*$")
_FAILED = re.compile(r"^(\S+)\s+FAILED: (.*)$")
_SUMMARY = re.compile(r"(\d+) new items")


def parse_poll_output(
    stdout: str, groups: dict[str, str]
) -> tuple[dict[str, int], dict[str, int], list[str]]:
    """Per-group new items, feed statuses and failures from ``aggregator poll``'s report."""
    new: Counter[str] = Counter(dict.fromkeys(groups.values(), 0))
    feeds: Counter[str] = Counter()
    failures: list[str] = []
    for line in stdout.splitlines():
        if m := _OK.match(line):
            new[groups.get(m.group(1), "other")] += int(m.group(3))
            feeds["ok"] += 1
        elif m := _NOT_MODIFIED.match(line):
            feeds["not_modified"] += 1
        elif m := _FAILED.match(line):
            feeds["failed"] += 1
            failures.append(f"{m.group(1)}: {m.group(2)}")
    if not feeds and (m := _SUMMARY.search(stdout)):  # the report's format changed
        progress("warning: no per-source lines in the poll report; new items not split by group")
        new = Counter(all=int(m.group(1)))
    return dict(new), dict(feeds), failures


@dataclass(slots=True, kw_only=True)
class Bench:
    args: argparse.Namespace
    run_dir: Path
    server: FeedServer
    refs: list[FeedRef]
    urls: dict[str, str]  # name -> url
    aggregator: AggregatorCommand
    reader_python: Path | None
    config: Path = field(init=False)
    ours_db: Path = field(init=False)
    reader_db: Path = field(init=False)
    reader_feeds: Path = field(init=False)
    allow_networks: bool = False
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.config = self.run_dir / "aggregator.yaml"
        self.ours_db = self.run_dir / "aggregator.db"
        self.reader_db = self.run_dir / "reader.sqlite"
        self.reader_feeds = self.run_dir / "reader-feeds.tsv"
        self.reader_feeds.write_text(
            "".join(f"{r.name}\t{r.group}\t{self.urls[r.name]}\n" for r in self.refs),
            encoding="utf-8",
        )

    # config -------------------------------------------------------------------------

    def write_config(self, *, allow_networks: bool) -> None:
        lines = [
            "# Generated by bench/ingest.py; safe to delete.",
            f"database: sqlite:///{self.ours_db}",
            "polling:",
            "  interval: 1h",
            f"  timeout: {int(self.args.timeout_fetch)}s",
            "  max_bytes: 20MB",
        ]
        if allow_networks:
            lines.append('  allow_networks: ["127.0.0.0/8"]')
        lines.append("sources:")
        for ref in self.refs:
            lines += [f"  - name: {ref.name}", f"    url: {self.urls[ref.name]}"]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def check_config(self) -> None:
        """Include ``polling.allow_networks`` only if this aggregator knows the key."""
        self.write_config(allow_networks=True)
        check = self._aggregator("check")
        if check.returncode == 0:
            self.allow_networks = True
            progress("aggregator check: config OK (polling.allow_networks is accepted)")
            return
        if "allow_networks" not in check.stderr + check.stdout:
            raise RuntimeError(f"aggregator check failed:\n{check.stdout}{check.stderr}")
        self.write_config(allow_networks=False)
        check = self._aggregator("check")
        if check.returncode != 0:
            raise RuntimeError(f"aggregator check failed:\n{check.stdout}{check.stderr}")
        progress("aggregator check: config OK (no polling.allow_networks: unknown key here)")

    def _aggregator(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.aggregator.argv("--config", str(self.config), command),
            env=self.aggregator.env,
            cwd=self.aggregator.cwd,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    # runs ---------------------------------------------------------------------------

    def _measure(
        self, side: str, phase: str, argv: list[str], env: dict[str, str] | None = None
    ) -> tuple[Measured, dict[str, Any]]:
        if self.args.quiet_wait > 0:
            started = time.monotonic()
            load = wait_until_quiet(max_wait=self.args.quiet_wait)
            waited = time.monotonic() - started
            if load >= 0.25:
                self.warnings.append(
                    f"{side} {phase}: the machine was still busy ({load:.2f} cores in use "
                    f"by others) after waiting {waited:.0f}s for it to be quiet"
                )
            elif waited > 2:
                progress(f"waited {waited:.0f}s for the machine to be quiet")
        self.server.stats(reset=True)
        measured = run_measured(
            argv,
            timeout=self.args.timeout,
            log_dir=self.run_dir / "logs",
            label=f"{side}-{phase}",
            env=env,
            cwd=self.run_dir,
        )
        server = self.server.stats(reset=True)
        if measured.timed_out:
            self.warnings.append(f"{side} {phase}: killed after the {self.args.timeout:g}s timeout")
        return measured, server

    def run_ours(self, phase: str) -> RunResult:
        progress(f"{phase}: aggregator poll ...")
        argv = self.aggregator.argv("--config", str(self.config), "poll")
        m, server = self._measure("ours", phase, argv, self.aggregator.env)
        groups = {r.name: r.group for r in self.refs}
        new, feeds, failures = parse_poll_output(m.stdout, groups)
        if m.returncode not in (0, 1) or (not feeds and not new):
            tail = "\n".join(m.stderr.splitlines()[-15:])
            self.warnings.append(f"ours {phase}: exit {m.returncode}; stderr tail:\n{tail}")
        polled = sum(feeds.values()) or len(self.refs)
        result = RunResult(
            side="ours",
            phase=phase,
            wall_s=m.wall_s,
            cpu_s=m.cpu_s,
            peak_mb=m.peak_rss_mb,
            pss_mb=m.peak_pss_mb,
            db_mb=file_mb(*db_files(self.ours_db)),
            returncode=m.returncode,
            timed_out=m.timed_out,
            new=new,
            feeds=feeds,
            items_per_s=sum(new.values()) / m.wall_s,
            feeds_per_s=polled / m.wall_s,
            server=server,
            failures=failures,
            extra={
                "items_in_db": count_rows(self.ours_db, "items"),
                "system_busy_s": m.system_busy_s,
                "harness_cpu_s": m.harness_cpu_s,
                "processes": m.processes,
                "cpu_complete": m.cpu_complete,
            },
        )
        progress(f"{phase}: aggregator {describe(result)}")
        return result

    def run_reader(self, phase: str) -> RunResult:
        assert self.reader_python is not None
        progress(f"{phase}: reader update_feeds ...")
        argv = [
            str(self.reader_python),
            str(BENCH / "reader_side.py"),
            "--db",
            str(self.reader_db),
            "--feeds",
            str(self.reader_feeds),
            "--workers",
            str(self.args.reader_workers),
        ]
        if phase == "cold":
            argv.append("--add")
        m, server = self._measure("reader", phase, argv)
        try:
            report = json.loads(m.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            tail = "\n".join(m.stderr.splitlines()[-15:])
            self.warnings.append(f"reader {phase}: exit {m.returncode}, no report:\n{tail}")
            report = {"groups": {}, "errors": []}
        new: dict[str, int] = {}
        feeds: Counter[str] = Counter()
        for group, counts in report["groups"].items():
            new[group] = int(counts.get("new", 0))
            for key in ("ok", "not_modified", "failed"):
                feeds[key] += int(counts.get(key, 0))
        polled = sum(feeds.values()) or len(self.refs)
        result = RunResult(
            side="reader",
            phase=phase,
            wall_s=m.wall_s,
            cpu_s=m.cpu_s,
            peak_mb=m.peak_rss_mb,
            pss_mb=m.peak_pss_mb,
            db_mb=file_mb(*db_files(self.reader_db)),
            returncode=m.returncode,
            timed_out=m.timed_out,
            new=new,
            feeds=dict(feeds),
            items_per_s=sum(new.values()) / m.wall_s,
            feeds_per_s=polled / m.wall_s,
            server=server,
            failures=list(report.get("errors", [])),
            extra={
                **{k: v for k, v in report.items() if k not in ("groups", "errors")},
                "system_busy_s": m.system_busy_s,
                "harness_cpu_s": m.harness_cpu_s,
                "processes": m.processes,
                "cpu_complete": m.cpu_complete,
            },
        )
        progress(f"{phase}: reader {describe(result)}")
        return result


def describe(r: RunResult) -> str:
    counts = r.server.get("counts", {})
    return (
        f"{r.wall_s:.1f}s wall, {r.cpu_s:.1f}s CPU, {r.new_total} new items, "
        f"peak {r.peak_mb:.0f} MB (PSS {_mb(r.pss_mb)}), DB {r.db_mb:.0f} MB; feeds {r.feeds}; "
        f"server answered 200x{counts.get('200', 0)} 304x{counts.get('304', 0)}"
    )


# --- changed phase ----------------------------------------------------------------------


def change_feeds(
    factory: FeedFactory, count: int, root: Path, args: argparse.Namespace, mtime: float
) -> list[int]:
    """Rewrite 10% of the generated feeds with ``--added`` newer items (new bytes, new
    mtime, so a new ETag and Last-Modified)."""
    k = max(1, round(count * args.changed_fraction)) if count else 0
    chosen = sorted(random.Random(f"{args.seed}:changed").sample(range(1, count + 1), k))
    for index in chosen:
        feed = factory.build(index, version=1, added=args.added)
        path = root / feed.filename
        path.write_bytes(feed.body)
        os.utime(path, (mtime, mtime))
    return chosen


# --- the report -------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def verdict(value: float | None, op: str, target: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    met = value >= target if op == ">=" else value <= target
    return "MET" if met else "NOT MET"


def _mb(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}"


def _peak_ratio(pairs: list[tuple[float | None, float | None]]) -> float | None:
    if not pairs or any(a is None or b is None for a, b in pairs):
        return None
    return ratio(
        max(a for a, _ in pairs if a is not None), max(b for _, b in pairs if b is not None)
    )


def compute_ratios(results: dict[str, dict[str, RunResult]]) -> dict[str, float | None]:
    """Ours / reader per phase; ``memory`` (the target) compares the peak PSS of the two
    process trees (ours: the poll and its parse workers; reader: one process), and
    ``memory_rss`` the peak RSS sums, which count our processes' shared libraries once
    per process."""
    out: dict[str, float | None] = {}
    for phase, sides in results.items():
        ours, theirs = sides.get("ours"), sides.get("reader")
        if not ours or not theirs:
            continue
        if phase in ("cold", "changed"):
            out[f"{phase}_items_per_s"] = ratio(ours.items_per_s, theirs.items_per_s)
        out[f"{phase}_speedup"] = ratio(theirs.wall_s, ours.wall_s)
        out[f"{phase}_memory"] = _peak_ratio([(ours.pss_mb, theirs.pss_mb)])
        out[f"{phase}_memory_rss"] = ratio(ours.peak_mb, theirs.peak_mb)
    pairs = [s for s in results.values() if len(s) == 2]
    if pairs:
        out["memory"] = _peak_ratio([(s["ours"].pss_mb, s["reader"].pss_mb) for s in pairs])
        out["memory_rss"] = _peak_ratio([(s["ours"].peak_mb, s["reader"].peak_mb) for s in pairs])
    return out


def render(
    meta: dict[str, Any],
    results: dict[str, dict[str, RunResult]],
    ratios: dict[str, float | None],
    warnings: list[str],
) -> str:
    if meta.get("aggregator_code_from"):
        code = f"code from {meta['aggregator_code_from']}"
    else:
        code = (
            f"the tree at {meta.get('aggregator_commit')} + "
            f"{len(meta.get('aggregator_uncommitted', []))} uncommitted files"
        )
    lines = [
        f"aggregator ingest benchmark — {meta['generated_feeds']} generated feeds x "
        f"{meta['items']} items (RSS 2.0 / Atom 1.0 half each, ~3 KB HTML per item) "
        f"+ {meta['corpus_feeds']} real-corpus feeds; {meta['cpus']} CPUs",
        f"feed server: a separate process on the same machine ({meta['hosts']} loopback "
        "addresses); its CPU is charged to neither side but competes for the same cores.",
        f"ours: {meta.get('aggregator_version', 'aggregator ?')}, {code}, code fingerprint "
        f"{meta.get('aggregator_fingerprint')}; reader {meta.get('reader_version', '-')} "
        f"(update_feeds workers={meta.get('reader_workers')})",
        "",
    ]
    head = f"{'phase':<8} {'side':<7} {'wall s':>8} {'items/s':>9} {'feeds/s':>8} "
    head += (
        f"{'CPU s':>7} {'peak MB':>8} {'PSS MB':>7} {'DB MB':>7} {'new items':>16} {'in DB':>8} "
    )
    head += f"{'srv CPU s':>9} {'other CPU s':>11}"
    lines += [head, "-" * len(head)]
    for phase, sides in results.items():
        for side in ("ours", "reader"):
            r = sides.get(side)
            if r is None:
                continue
            corpus = r.new.get("corpus", 0)
            new = f"{r.new_total - corpus}+{corpus}c" if corpus else str(r.new_total)
            stored = r.extra.get("items_in_db", r.extra.get("entries_total"))
            stored = "?" if stored is None else str(stored)
            lines.append(
                f"{phase:<8} {side:<7} {r.wall_s:>8.2f} {r.items_per_s:>9.0f} "
                f"{r.feeds_per_s:>8.0f} {r.cpu_s:>7.1f} {r.peak_mb:>8.1f} "
                f"{_mb(r.pss_mb):>7} {r.db_mb:>7.1f} "
                f"{new:>16} {stored:>8} {r.server.get('cpu_s_delta', 0):>9.2f} "
                f"{r.extra.get('other_cpu_s', 0):>11.1f}"
            )
    lines.append(
        "  new items: generated + corpus (c), as each side reports them; in DB: item/entry "
        "rows after the phase; warm: compare feeds/s; other CPU s: used meanwhile by "
        "processes outside the bench; peak MB: RSS summed over the process tree (a library "
        "mapped by three processes counts three times); PSS MB: what the tree holds, each "
        "shared page once"
    )
    if any(len(s) == 2 for s in results.values()):
        lines += ["", f"{'ours / reader':<44} {'measured':>9}   {'target':>8}   verdict"]
        for key, (label, op, target) in TARGETS.items():
            value = ratios.get(key)
            lines.append(
                f"{label:<44} {fmt_ratio(value):>9}   {op} {target:>4g}x   "
                f"{verdict(value, op, target)}"
            )
        extra = [
            ("changed: items/s, ours / reader", ratios.get("changed_items_per_s")),
            ("cold: speed-up, reader wall / ours", ratios.get("cold_speedup")),
            ("peak memory (RSS sum), max of phases", ratios.get("memory_rss")),
        ]
        for phase in results:
            extra += [
                (f"{phase}: peak memory (PSS), ours / reader", ratios.get(f"{phase}_memory")),
                (f"{phase}: peak memory (RSS sum)", ratios.get(f"{phase}_memory_rss")),
            ]
        lines += [f"{label:<44} {fmt_ratio(value):>9}   (info)" for label, value in extra]
    for phase, sides in results.items():
        for side, r in sides.items():
            failed = r.feeds.get("failed", len(r.failures))
            if failed:
                shown = "; ".join(r.failures[:4])
                more = f" (+{failed - 4} more)" if failed > 4 else ""
                lines.append(f"{side} {phase}: {failed} failed feeds: {shown}{more}")
    if warnings:
        lines += ["", "WARNINGS:"] + [f"  - {w}" for w in warnings]
    return "\n".join(lines)


def sanity_checks(
    results: dict[str, dict[str, RunResult]], meta: dict[str, Any], warnings: list[str]
) -> None:
    generated = meta["generated_feeds"]
    expected = {
        "cold": generated * meta["items"],
        "warm": 0,
        "changed": len(meta["changed_feeds"]) * meta["added"],
    }
    for phase, sides in results.items():
        for side, r in sides.items():
            got = r.new.get("generated", r.new.get("all"))
            if got is not None and got != expected[phase]:
                warnings.append(
                    f"{side} {phase}: {got} new generated items, expected {expected[phase]}"
                )
            counts = r.server.get("counts", {})
            failed = r.feeds.get("failed", 0)
            if phase == "warm" and counts.get("200", 0) > failed:
                warnings.append(
                    f"{side} warm: the server sent {counts['200']} full responses for "
                    f"{failed} failing feeds (expected 304 for every feed that worked)"
                )


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Ingest benchmark: aggregator poll vs reader.")
    p.add_argument("--feeds", type=int, default=1000, help="generated feeds (default 1000)")
    p.add_argument("--items", type=int, default=50, help="items per generated feed (default 50)")
    p.add_argument("--no-corpus", action="store_true", help="leave out the real corpus")
    p.add_argument("--no-reader", action="store_true", help="run aggregator only")
    p.add_argument(
        "--phases",
        default=",".join(PHASES),
        help="comma-separated subset of cold,warm,changed (cold always runs first: "
        "the other phases need its database; it is reported only if listed)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--hosts", type=int, default=16, help="loopback addresses to spread feeds on")
    p.add_argument("--changed-fraction", type=float, default=0.10)
    p.add_argument("--added", type=int, default=5, help="new items per changed feed")
    p.add_argument("--reader-workers", type=int, default=8, help="update_feeds(workers=)")
    p.add_argument("--timeout", type=float, default=1800, help="per poll process, seconds")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=180,
        help="before each run, wait up to this many seconds for the machine's CPU to be "
        "idle (other people's tests share it); 0 to skip",
    )
    p.add_argument("--timeout-fetch", type=float, default=60, help="aggregator polling.timeout")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results dir (bench/out)")
    p.add_argument(
        "--reader-python",
        type=Path,
        default=DEFAULT_READER_VENV / "bin" / "python",
        help="python with reader + sgmllib3k (created in bench/out/reader-venv if missing)",
    )
    p.add_argument("--keep", action="store_true", help="keep the generated feeds and databases")
    p.add_argument(
        "--live",
        action="store_true",
        help="run the working tree's aggregator package instead of a snapshot taken at start",
    )
    p.add_argument(
        "--code",
        type=Path,
        help="snapshot the aggregator package found in this directory instead of the "
        "repository's (e.g. an earlier bench/out/last-run/snapshot, to compare versions)",
    )
    args = p.parse_args(argv)
    phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown or not phases:
        p.error(f"--phases: expected a subset of {','.join(PHASES)}, got {args.phases!r}")
    args.phases = [x for x in PHASES if x in phases]
    if args.feeds < 0 or args.items < 1 or args.hosts < 1 or args.hosts > 254:
        p.error("--feeds >= 0, --items >= 1, 1 <= --hosts <= 254")
    return args


def ensure_reader(python: Path) -> Path:
    if python.exists():
        return python
    if python != DEFAULT_READER_VENV / "bin" / "python":
        raise SystemExit(f"--reader-python {python} does not exist")
    progress(f"creating {DEFAULT_READER_VENV} with reader + sgmllib3k (once) ...")
    subprocess.run(
        [sys.executable, "-m", "venv", str(DEFAULT_READER_VENV)], check=True, timeout=300
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "reader", "sgmllib3k"],
        check=True,
        timeout=900,
    )
    return python


def machine_info(aggregator: AggregatorCommand, reader_python: Path | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["aggregator_version"] = subprocess.run(
            aggregator.argv("--version"),
            env=aggregator.env,
            cwd=aggregator.cwd,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
        info["aggregator_commit"] = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
        # Read-only: which files of the repository's package differ from that commit
        # (says nothing about a --code directory).
        info["aggregator_uncommitted"] = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "aggregator"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.split("\n")
        info["aggregator_uncommitted"] = [x for x in info["aggregator_uncommitted"] if x]
    info["aggregator_fingerprint"] = aggregator.fingerprint
    info["aggregator_snapshot"] = str(aggregator.pythonpath) if aggregator.pythonpath else None
    if reader_python is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            info["reader_version"] = subprocess.run(
                [str(reader_python), "-c", "import reader; print(reader.__version__)"],
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout.strip()
    return info


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (Path(sys.executable).parent / "aggregator").exists():
        raise SystemExit("run this with the project venv's python (.venv/bin/python)")
    reader_python = None if args.no_reader else ensure_reader(args.reader_python)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    run_dir = args.out / "last-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    feeds_dir = Path(tempfile.mkdtemp(prefix="aggregator-bench-feeds-"))
    server: FeedServer | None = None

    def on_term(signum: int, _frame: object) -> None:
        progress(f"signal {signum}: stopping the poll and the feed server")
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        anchor = datetime.now(UTC).replace(second=0, microsecond=0)
        base_mtime = (anchor - timedelta(minutes=10)).timestamp()
        progress(f"generating {args.feeds} feeds x {args.items} items into {feeds_dir} ...")
        factory = FeedFactory(seed=args.seed, items=args.items, anchor=anchor)
        refs, gen_bytes = write_generated(factory, args.feeds, feeds_dir, base_mtime)
        corpus_bytes = 0
        if not args.no_corpus:
            corpus_refs, corpus_bytes = copy_corpus(feeds_dir, base_mtime)
            refs += corpus_refs
        n_corpus = sum(r.group == "corpus" for r in refs)
        progress(
            f"{args.feeds} generated feeds ({gen_bytes / 1e6:.1f} MB) + {n_corpus} corpus "
            f"files ({corpus_bytes / 1e6:.1f} MB); starting the feed server ..."
        )
        server = FeedServer(feeds_dir, args.hosts)
        urls = {ref.name: server.url(i, ref.filename) for i, ref in enumerate(refs)}
        progress(f"feed server pid {server.proc.pid} on {len(server.hosts)} addresses")
        aggregator = prepare_aggregator(run_dir, live=args.live, source=args.code)
        progress(
            f"aggregator code: {'live tree' if args.live else 'snapshot in ' + str(run_dir)}"
            f"{' of ' + str(args.code) if args.code and not args.live else ''}"
            f" (fingerprint {aggregator.fingerprint})"
        )
        bench = Bench(
            args=args,
            run_dir=run_dir,
            server=server,
            refs=refs,
            urls=urls,
            aggregator=aggregator,
            reader_python=reader_python,
        )
        bench.check_config()

        meta: dict[str, Any] = {
            "timestamp": stamp,
            "generated_feeds": args.feeds,
            "items": args.items,
            "corpus_feeds": n_corpus,
            "generated_mb": round(gen_bytes / 1e6, 2),
            "corpus_mb": round(corpus_bytes / 1e6, 2),
            "hosts": len(server.hosts),
            "seed": args.seed,
            "added": args.added,
            "changed_feeds": [],
            "reader_workers": None if args.no_reader else args.reader_workers,
            "allow_networks_in_config": bench.allow_networks,
            "aggregator_code_from": str(args.code) if args.code else None,
            "phases": args.phases,
            **machine_info(aggregator, reader_python),
        }
        results: dict[str, dict[str, RunResult]] = {}
        server_cpu = server.stats(reset=True)["cpu_s"]
        for phase in PHASES:
            if phase != "cold" and phase not in args.phases:
                continue
            if phase == "changed":
                changed = change_feeds(
                    factory,
                    args.feeds,
                    feeds_dir,
                    args,
                    (anchor + timedelta(minutes=5)).timestamp(),
                )
                meta["changed_feeds"] = [FeedFactory.name(i) for i in changed]
                progress(
                    f"changed: {len(changed)} feeds gained {args.added} items each; "
                    f"server reloaded {server.reload()} files"
                )
                server_cpu = server.stats(reset=True)["cpu_s"]
            runs: dict[str, RunResult] = {}
            for side in ("ours", "reader"):
                if side == "reader" and reader_python is None:
                    continue
                run = bench.run_ours(phase) if side == "ours" else bench.run_reader(phase)
                cpu = float(run.server.get("cpu_s", server_cpu))
                run.server["cpu_s_delta"] = round(cpu - server_cpu, 3)
                server_cpu = cpu
                # CPU used meanwhile by anything else on the machine (other people's tests).
                other = run.extra["system_busy_s"] - run.cpu_s - run.server["cpu_s_delta"]
                run.extra["other_cpu_s"] = round(max(0.0, other - run.extra["harness_cpu_s"]), 2)
                if run.extra["other_cpu_s"] > OTHER_CPU_WARN * run.wall_s:
                    bench.warnings.append(
                        f"{side} {phase}: other processes used {run.extra['other_cpu_s']:.1f}s "
                        f"of CPU during its {run.wall_s:.1f}s: the machine was not quiet"
                    )
                runs[side] = run
            if phase in args.phases:
                results[phase] = runs

        if args.live and package_fingerprint(REPO / "aggregator") != aggregator.fingerprint:
            bench.warnings.append(
                "the aggregator package changed on disk during the run (--live): "
                "phases may have run different code"
            )
        ratios = compute_ratios(results)
        sanity_checks(results, meta, bench.warnings)
        report = render({**meta, "cpus": os.cpu_count()}, results, ratios, bench.warnings)
        print(report)
        out_json = args.out / f"ingest-{stamp}.json"
        out_json.write_text(
            json.dumps(
                {
                    "meta": meta,
                    "results": {
                        phase: {
                            side: asdict(r) | {"new_total": r.new_total} for side, r in s.items()
                        }
                        for phase, s in results.items()
                    },
                    "ratios": ratios,
                    "targets": {
                        k: {"label": v[0], "op": v[1], "target": v[2]} for k, v in TARGETS.items()
                    },
                    "verdicts": {
                        k: verdict(ratios.get(k), op, t) for k, (_, op, t) in TARGETS.items()
                    },
                    "warnings": bench.warnings,
                    "report": report,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"\nresults: {out_json}\nlogs and config: {run_dir}")
        return 0
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            progress(f"kept the feeds in {feeds_dir}")
        else:
            shutil.rmtree(feeds_dir, ignore_errors=True)
            for pattern in ("aggregator.db*", "reader.sqlite*"):
                for path in run_dir.glob(pattern):
                    path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
