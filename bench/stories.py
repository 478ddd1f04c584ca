"""Story assignment cost per item as the stream grows (issue: flat per-item cost).

    .venv/bin/python bench/stories.py [--items 100000] [--days 60]

Builds a stream from real headlines (the UCI development half and every item title of
the same-time captures in ../shared/corpus/news-same-story/, with the leads of their
summaries, as the daemon's assignment reads them), repeated as often as
needed with every word of a repeat tagged with its round ("Fed3 official3 ..."), so a
repeat is a new event with the same shape rather than more of an old one; timestamps
are spread evenly over --days. Assigns them in order with the daemon's StoryIndex and prints the
cost of the first and the last 10,000 items and their ratio (target: at most 1.5).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aggregator.parse import parse_feed  # noqa: E402
from aggregator.process.normalize import normalize_items  # noqa: E402
from aggregator.process.stories import GroupingRules, StoryIndex, terms  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "news-same-story"


def headlines() -> list[tuple[str, str, str]]:
    """(title, summary, outlet) of every item."""
    found = []
    with (CORPUS / "uci-news-aggregator" / "uci-dev-stories.csv").open(encoding="utf-8") as f:
        found += [(row["TITLE"], "", row["PUBLISHER"]) for row in csv.DictReader(f)]
    for folder in sorted(p for p in CORPUS.iterdir() if p.is_dir() and "uci" not in p.name):
        for path in sorted(folder.iterdir()):
            try:
                feed = parse_feed(path.read_bytes(), content_type=None, url="https://x.example/")
            except Exception:  # a capture that is not a feed
                continue
            now = datetime.now(UTC)
            for item in normalize_items(feed.items, source_name=path.stem, now=now):
                found.append((item.title, item.lead, feed.title or path.stem))
    return [(title, summary, outlet) for title, summary, outlet in found if title]


def tagged(text: str, tag: int) -> str:
    return " ".join(f"{word}{tag}" if word[:1].isalpha() else word for word in text.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    # 60 days: ~1,700 items a day, what some 40 busy outlets publish.
    parser.add_argument("--days", type=float, default=60.0)
    args = parser.parse_args()
    pool = headlines()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(days=args.days) / args.items
    stream = []
    for n in range(args.items):
        title, summary, outlet = pool[n % len(pool)]
        if n >= len(pool):  # a later round: new events, in words no earlier round used
            title, summary = tagged(title, n // len(pool)), tagged(summary, n // len(pool))
        stream.append((terms(title, summary, outlet=outlet), start + step * n))
    index = StoryIndex(GroupingRules())
    block = 10_000
    timings = []
    began = time.perf_counter()
    for offset in range(0, len(stream), block):
        t = time.perf_counter()
        for counts, when in stream[offset : offset + block]:
            index.assign(counts, when)
        timings.append((time.perf_counter() - t) / len(stream[offset : offset + block]))
    total = time.perf_counter() - began
    print(f"{args.items} items from {len(pool)} distinct headlines over {args.days:g} days")
    print(f"total {total:.1f} s, {args.items / total:.0f} items/s")
    for i, per_item in enumerate(timings):
        print(f"  items {i * block:>7}-{(i + 1) * block - 1:<7} {per_item * 1e6:7.1f} us/item")
    ratio = timings[-1] / timings[0]
    verdict = "MET" if ratio <= 1.5 else "NOT MET"
    print(f"last 10k / first 10k: {ratio:.2f}x (target <= 1.5x: {verdict})")


if __name__ == "__main__":
    main()
