"""Where one ``aggregator poll`` spends its CPU: py-spy over every thread and process.

    .venv/bin/python bench/profile_poll.py --feeds 100 --items 50 [--phase cold|warm|changed]

Generates the same feeds as bench/ingest.py (no corpus unless --corpus), serves them the
same way, and runs one poll under ``py-spy record --gil --subprocesses``: in each process
only the thread holding the GIL is sampled, so this is a CPU profile of GIL-bound code
(native code that releases the GIL, nh3 and SQLite, is under-counted). Prints the top
functions by inclusive ("cumulative") and by self share of the samples; the raw collapsed
stacks go to bench/out/profile-<phase>-<timestamp>.txt. py-spy is not a project
dependency: put it on PATH or pass --py-spy (``python3.11 -m venv /tmp/pyspy &&
/tmp/pyspy/bin/pip install py-spy``). Timings under a profiler are not benchmark figures.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingest import (
    DEFAULT_OUT,
    Bench,
    FeedServer,
    change_feeds,
    copy_corpus,
    prepare_aggregator,
    progress,
    write_generated,
)
from synthetic import FeedFactory

NOISE = ("threading.py", "concurrent/futures/thread.py", "<string>", "multiprocessing/")
# py-spy --subprocesses roots stacks at 'process PID:"COMMAND LINE"' (nested for a child's
# child), and a command line may hold ';'.
PROCESS_ROOTS = re.compile(r'^(?:process \d+:"[^"]*";)+')


def top_functions(raw: Path, n: int) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        stack = PROCESS_ROOTS.sub("", stack)
        frames = [f for f in stack.split(";") if not any(x in f for x in NOISE)]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count
    lines = [f"{total} samples (GIL holder only)", "", f"top {n} by inclusive share:"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in inclusive.most_common(n)]
    lines += ["", f"top {n} by self share:"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(n)]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description="Profile one aggregator poll with py-spy.")
    p.add_argument("--feeds", type=int, default=100)
    p.add_argument("--items", type=int, default=50)
    p.add_argument("--corpus", action="store_true", help="add the real corpus too")
    p.add_argument("--phase", choices=("cold", "warm", "changed"), default="cold")
    p.add_argument("--changed-fraction", type=float, default=0.10)
    p.add_argument("--added", type=int, default=5, help="new items per changed feed")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--py-spy", default=shutil.which("py-spy"), help="the py-spy executable")
    p.add_argument(
        "--all-threads",
        action="store_true",
        help="sample every thread that is not idle (one root per thread), not only the GIL holder:"
        " shows time in native code that releases the GIL (SQLite, sockets)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--hosts", type=int, default=16)
    p.add_argument("--code", type=Path, help="directory holding the aggregator package to run")
    args = p.parse_args()
    if not args.py_spy:
        raise SystemExit("py-spy not found: put it on PATH or pass --py-spy (see --help)")
    # What Bench reads from the ingest arguments.
    args.timeout, args.timeout_fetch, args.live, args.quiet_wait = 1800.0, 60.0, False, 0.0

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = DEFAULT_OUT / "profile-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    feeds_dir = Path(tempfile.mkdtemp(prefix="aggregator-profile-feeds-"))
    server: FeedServer | None = None
    try:
        anchor = datetime.now(UTC).replace(second=0, microsecond=0)
        mtime = (anchor - timedelta(minutes=10)).timestamp()
        factory = FeedFactory(seed=args.seed, items=args.items, anchor=anchor)
        refs, _ = write_generated(factory, args.feeds, feeds_dir, mtime)
        if args.corpus:
            refs += copy_corpus(feeds_dir, mtime)[0]
        server = FeedServer(feeds_dir, args.hosts)
        urls = {ref.name: server.url(i, ref.filename) for i, ref in enumerate(refs)}
        aggregator = prepare_aggregator(run_dir, live=False, source=args.code)
        bench = Bench(
            args=args,
            run_dir=run_dir,
            server=server,
            refs=refs,
            urls=urls,
            aggregator=aggregator,
            reader_python=None,
        )
        bench.check_config()
        poll = aggregator.argv("--config", str(bench.config), "poll")
        if args.phase != "cold":
            progress("cold poll first (not profiled) ...")
            subprocess.run(
                poll,
                env=aggregator.env,
                cwd=run_dir,
                capture_output=True,
                timeout=args.timeout,
                check=False,
            )
        if args.phase == "changed":
            later = (anchor + timedelta(minutes=5)).timestamp()
            changed = change_feeds(factory, args.feeds, feeds_dir, args, later)
            progress(f"{len(changed)} feeds gained {args.added} items; reloaded {server.reload()}")
        raw = DEFAULT_OUT / f"profile-{args.phase}-{stamp}.txt"
        progress(f"{args.phase} poll of {len(refs)} feeds under py-spy ...")
        spy = [args.py_spy, "record", "-r", str(args.rate), "-f", "raw", "--nolineno"]
        spy += ["--threads"] if args.all_threads else ["--gil"]
        spy.append("--subprocesses")  # parse workers, if the poll uses processes
        started = time.perf_counter()
        done = subprocess.run(
            [*spy, "-o", str(raw), "--", *poll],
            env=aggregator.env,
            cwd=run_dir,
            capture_output=True,
            text=True,
            timeout=args.timeout,
            check=False,
        )
        report = [x for x in done.stdout.splitlines() if x.strip() and not x.startswith("py-spy>")]
        elapsed = time.perf_counter() - started
        print(f"aggregator poll: exit {done.returncode}, {elapsed:.1f}s wall under py-spy")
        print("\n".join(report[-1:]))
        if not report:
            print("the poll printed no report: it failed; stderr tail:", file=sys.stderr)
            print("\n".join(done.stderr.splitlines()[-15:]), file=sys.stderr)
            return 1
        print(top_functions(raw, args.top))
        print(f"\nraw stacks: {raw}")
        return 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(feeds_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
