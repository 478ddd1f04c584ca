"""The reference side of the ingest benchmark: lemon24's ``reader`` on the same feeds.

Run with the python of a venv that has ``reader`` and ``sgmllib3k`` (NOT the project venv):

    READER_PY bench/reader_side.py --db DB --feeds FEEDS.tsv [--add] [--workers 8]

FEEDS.tsv has one ``name<TAB>group<TAB>url`` line per feed. ``--add`` adds the feeds first (the cold
phase, like ``aggregator poll`` inserting its sources). Then every feed is updated once,
scheduled or not (``update_feeds_iter(scheduled=False)``, as ``aggregator poll`` polls every
source due or not). Prints one JSON object with the counts per group on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter

import reader


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--feeds", required=True)
    parser.add_argument("--add", action="store_true")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    groups: dict[str, str] = {}
    names: dict[str, str] = {}
    with open(args.feeds, encoding="utf-8") as handle:
        for line in handle:
            name, group, url = line.rstrip("\n").split("\t")
            groups[url] = group
            names[url] = name

    started = time.perf_counter()
    rdr = reader.make_reader(args.db)
    try:
        if args.add:
            for url in groups:
                rdr.add_feed(url, exist_ok=True)
        added = time.perf_counter()
        counts: dict[str, Counter[str]] = {g: Counter() for g in set(groups.values())}
        errors: list[str] = []
        for result in rdr.update_feeds_iter(scheduled=False, workers=args.workers):
            c = counts[groups.get(result.url, "other")]
            if result.error is not None:
                c["failed"] += 1
                if len(errors) < 50:
                    # reader's messages repeat the URL: the name says which feed it is.
                    message = str(result.error).replace(f"{result.url!r}: ", "")
                    errors.append(f"{names.get(result.url, result.url)}: {message[:200]}")
            elif result.updated_feed is None:
                c["not_modified"] += 1
            else:
                feed = result.updated_feed
                c["ok"] += 1
                c["new"] += feed.new
                c["modified"] += feed.modified
                c["unmodified"] += feed.unmodified
        updated = time.perf_counter()
        entries = rdr.get_entry_counts().total
    finally:
        rdr.close()
    json.dump(
        {
            "reader_version": reader.__version__,
            "workers": args.workers,
            "add_s": round(added - started, 3),
            "update_s": round(updated - added, 3),
            "entries_total": entries,
            "groups": {g: dict(c) for g, c in counts.items()},
            "errors": errors,
        },
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
