"""Serving bench: a 100-item merged feed from `aggregator run`, beside nginx, with wrk.

    .venv/bin/python bench/serve.py                 # the figure for issue 6 (~2 min)
    .venv/bin/python bench/serve.py --duration 5    # a quick check

Needs `wrk` and `nginx` (Debian packages `wrk` and `nginx-light`). What a run does:

1. Serves, from bench/feedserver.py on loopback, the 26 world-news feeds captured on
   2026-02-18 (../shared/corpus/news-same-story/kagi-fastfeedparser-2026-02-18) and
   `--feeds` generated ones (bench/synthetic.py, 50 items each). The measured feed,
   `bench`, draws from the captured ones (limit 100: a 100-item feed of real items, about
   the size the issue names); the generated ones churn: every few seconds some gain new
   items, so that the daemon keeps polling, storing and assigning stories (and the
   store's publication counter keeps moving) during every measurement, while the
   measured feed's content, and so its ETag, stays the same.
2. Starts `aggregator --config ... run` (SQLite, polling every 15 s) and waits for its
   first cycle.
3. Copies the measured feed's bytes into a directory nginx (2 workers, `etag on`) serves
   as a static file.
4. Runs wrk (`--threads`, `--connections`, `--duration`) four times: our 200 (no
   conditional header), our 304 (`If-None-Match` with our ETag), nginx's 200 and 304;
   and prints requests/s, p99 latency, errors, and our figures as shares of nginx's.

Nothing here asserts: tests never measure time. Results also go to bench/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from ingest import FeedServer, write_generated  # noqa: E402
from synthetic import FeedFactory  # noqa: E402

TARGETS = {"200": 0.35, "304": 0.15}  # of nginx's requests/s (issue 6)
P99_TARGET_MS = 50.0
CHURN_EVERY_S = 4.0
CAPTURE = REPO.parent / "shared" / "corpus" / "news-same-story" / "kagi-fastfeedparser-2026-02-18"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(
    path: Path, server: FeedServer, refs: list[Any], captured: list[str], port: int, db: Path
) -> None:
    lines = [
        f"database: sqlite:///{db}",
        "server:",
        f"  listen: 127.0.0.1:{port}",
        "polling:",
        "  interval: 15s",
        "  min_interval: 15s",
        "  jitter: 0",
        "  allow_networks: [127.0.0.0/8]",
        "sources:",
    ]
    for index, ref in enumerate(refs):
        url = server.url(index, ref.filename)
        lines.append(f"  - {{name: {ref.name}, url: '{url}', tags: [churn]}}")
    for index, filename in enumerate(captured):
        url = server.url(index, filename)
        lines.append(f"  - {{name: m{index:02d}, url: '{url}', tags: [measured]}}")
    lines += [
        "feeds:",
        "  - {slug: bench, title: Bench, tags: [measured], limit: 100, merge: none}",
        "  - {slug: churn, title: Churn, tags: [churn], limit: 100}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def start_nginx(root: Path, port: int, work: Path) -> subprocess.Popen[bytes]:
    conf = work / "nginx.conf"
    temp = work / "nginx-tmp"
    temp.mkdir(exist_ok=True)
    conf.write_text(
        f"""worker_processes 2;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {temp}; proxy_temp_path {temp}; fastcgi_temp_path {temp};
  uwsgi_temp_path {temp}; scgi_temp_path {temp};
  types {{ application/rss+xml rss; }}
  server {{ listen 127.0.0.1:{port}; root {root}; etag on; }}
}}
""",
        encoding="utf-8",
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return subprocess.Popen([nginx, "-c", str(conf)], stderr=subprocess.DEVNULL)


def wait_for(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def head(url: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (names in lower case) and body of a GET."""
    with urllib.request.urlopen(url, timeout=30) as response:
        headers = {name.lower(): value for name, value in response.headers.items()}
        return response.status, headers, response.read()


def run_wrk(url: str, args: argparse.Namespace, etag: str | None) -> dict[str, Any]:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
    ]
    if etag:
        command += ["-H", f"If-None-Match: {etag}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p99_ms": p99_ms,
        "non_2xx_3xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": socket_errors.group(1).strip() if socket_errors else "",
    }


class Churn:
    """Gives some churn feeds newer items every few seconds, until stopped."""

    def __init__(self, factory: FeedFactory, indexes: list[int], root: Path, server: FeedServer):
        self.factory, self.indexes, self.root, self.server = factory, indexes, root, server
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(CHURN_EVERY_S):
            self.rounds += 1
            for index in self.indexes[self.rounds % 4 :: 4]:
                feed = self.factory.build(index, version=self.rounds, added=2)
                (self.root / feed.filename).write_bytes(feed.body)
            self.server.reload()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=100, help="generated feeds that churn")
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            print(f"{tool} is missing: apt-get install wrk nginx-light", file=sys.stderr)
            return 2

    work = Path(tempfile.mkdtemp(prefix="aggregator-serve-bench-"))
    feeds_dir, static = work / "feeds", work / "static"
    feeds_dir.mkdir()
    static.mkdir()
    work.chmod(0o755)  # nginx's workers run as another user: they must read static/
    factory = FeedFactory(seed=1, items=50, anchor=datetime.now(UTC))
    refs, _ = write_generated(factory, args.feeds, feeds_dir, time.time())
    captured = []
    for path in sorted(CAPTURE.iterdir()):
        shutil.copyfile(path, feeds_dir / f"m-{path.name}")
        captured.append(f"m-{path.name}")
    server = FeedServer(feeds_dir, hosts=16)
    daemon: subprocess.Popen[bytes] | None = None
    nginx: subprocess.Popen[bytes] | None = None
    churn: Churn | None = None
    try:
        port = free_port()
        config = work / "aggregator.yaml"
        write_config(config, server, refs, captured, port, work / "aggregator.db")
        log = (work / "daemon.log").open("wb")
        daemon = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "aggregator"), "--config", str(config), "run"],
            stderr=log,
            stdout=log,
        )
        ours = f"http://127.0.0.1:{port}/feeds/bench.rss"
        wait_for(ours, 60)
        deadline = time.monotonic() + 300
        while b"new items placed" not in (work / "daemon.log").read_bytes():
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise RuntimeError(f"the daemon's first cycle did not end; see {work}/daemon.log")
            time.sleep(0.5)
        # The same bytes twice, a second apart: the feed has settled (a copy from before
        # the last change may be served for a moment while the feed loads again).
        _, headers, body = head(ours)
        while True:
            time.sleep(1)
            _, again, body = head(ours)
            if again["etag"] == headers["etag"]:
                break
            headers = again
            if time.monotonic() > deadline:
                raise RuntimeError("the measured feed never settled")
        etag = headers["etag"]
        (static / "bench.rss").write_bytes(body)
        (static / "bench.rss").chmod(0o644)
        nginx_port = free_port()
        nginx = start_nginx(static, nginx_port, work)
        theirs = f"http://127.0.0.1:{nginx_port}/bench.rss"
        wait_for(theirs, 10)
        _, nginx_headers, nginx_body = head(theirs)
        assert nginx_body == body
        churn = Churn(factory, list(range(1, args.feeds + 1)), feeds_dir, server)
        churn.start()
        polls_before = (work / "daemon.log").read_bytes().count(b"aggregator.polls:")
        results = {
            "ours 200": run_wrk(ours, args, None),
            "ours 304": run_wrk(ours, args, etag),
            "nginx 200": run_wrk(theirs, args, None),
            "nginx 304": run_wrk(theirs, args, nginx_headers["etag"]),
        }
        polls = (work / "daemon.log").read_bytes().count(b"aggregator.polls:") - polls_before
        _, after, _ = head(ours)
        churn.stop()
    finally:
        if churn is not None:
            churn.stop()
        for process in (daemon, nginx):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
        server.stop()

    print(
        f"serving bench: {len(body) / 1000:.0f} KB feed of 100 items, wrk -t{args.threads} "
        f"-c{args.connections} -d{args.duration}s, {os.cpu_count()} CPUs"
    )
    print(
        f"the daemon polled {polls} times and the churn changed feeds {churn.rounds} times "
        "during the measurements; the measured feed's ETag "
        f"{'stayed the same' if after['etag'] == etag else 'CHANGED (figures are mixed)'}"
    )
    print()
    print(f"{'run':<10} {'req/s':>10} {'p99 ms':>8} {'errors':>8}  share of nginx (target)")
    for name, result in results.items():
        share = ""
        if name.startswith("ours"):
            status = name.split()[1]
            value = result["rps"] / results[f"nginx {status}"]["rps"]
            verdict = "ok" if value >= TARGETS[status] else "BELOW"
            share = f"{value:6.1%} (>= {TARGETS[status]:.0%}: {verdict})"
        errors = result["non_2xx_3xx"] + (1 if result["socket_errors"] else 0)
        print(f"{name:<10} {result['rps']:>10.0f} {result['p99_ms']:>8.2f} {errors:>8}  {share}")
        if result["socket_errors"]:
            print(f"           socket errors: {result['socket_errors']}")
    worst = max(r["p99_ms"] for n, r in results.items() if n.startswith("ours"))
    print(f"\nour worst p99: {worst:.2f} ms (target < {P99_TARGET_MS:g} ms)")
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {"args": vars(args), "bytes": len(body), "polls": polls, "results": results}
    (out / f"serve-{stamp}.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
