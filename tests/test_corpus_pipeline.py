"""Every real-world and malformed file in the shared corpus, served over loopback HTTP,
through fetch -> parse -> normalize -> store. Nothing may crash the poll; every good item
is stored; every failure is a readable error recorded on its source."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import feedparser

from aggregator.clock import SystemClock
from aggregator.fetch import Fetcher, FetchLimits
from aggregator.pipeline import Pipeline
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.types import PollOutcome
from tests.conftest import corpus_dir
from tests.feedserver import serve_directory

# Real-world files that are genuinely not feeds we can read (each named, so that a new
# failure anywhere else fails this test).
REALWORLD_NOT_FEEDS = frozenset(
    {
        "ScriptingNews.json",  # Dave Winer's RSS-in-JSON, not JSON Feed
        "Subs.opml",  # subscription lists, not feeds
        "SubsNoTitleAttributes.opml",
    }
)


def _files(folder: str) -> list[Path]:
    root = corpus_dir() / folder
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "PROVENANCE.md")


def _poll_all(tmp_path: Path, files: list[Path]) -> Iterator[tuple[Path, PollOutcome, Store]]:
    corpus = corpus_dir()
    with serve_directory(corpus) as server:
        names = {f"f{index}": path for index, path in enumerate(files)}
        settings = Settings.model_validate(
            {
                "database": f"sqlite:///{tmp_path / 'corpus.db'}",
                "sources": [
                    {"name": name, "url": server.url(str(path.relative_to(corpus)))}
                    for name, path in names.items()
                ],
            }
        )
        store = Store.open(settings.database)
        fetcher = Fetcher(FetchLimits(timeout=60, allow_networks=("127.0.0.1/32",)))
        try:
            pipeline = Pipeline(
                settings=settings, store=store, fetcher=fetcher, clock=SystemClock()
            )
            pipeline.sync_sources()
            for source in store.sources_for_poll(list(names)):
                # poll_source, not poll_guarded: a bug must surface here, not be recorded.
                yield names[source.name], pipeline.poll_source(source), store
        finally:
            fetcher.close()
            store.close()


def test_every_realworld_file_is_stored(tmp_path: Path) -> None:
    failures = {}
    for path, outcome, _store in _poll_all(tmp_path, _files("realworld")):
        if outcome.status != "ok":
            failures[path.name] = outcome.error
            continue
        # Every entry the reference parser finds is stored, none twice, none lost.
        assert outcome.items_new == outcome.items_seen == _reference_count(path), path
    assert set(failures) == REALWORLD_NOT_FEEDS, failures


def _reference_count(path: Path) -> int:
    body = path.read_bytes()
    if path.suffix == ".gz":
        body = gzip.decompress(body)
    if path.suffix == ".json":
        return len(json.loads(body)["items"])
    return len(feedparser.parse(body, sanitize_html=False).entries)


def test_malformed_files_yield_items_or_a_readable_error(tmp_path: Path) -> None:
    results = list(_poll_all(tmp_path, _files("malformed")))
    assert len(results) > 400
    store = results[0][2] if results else None
    assert store is not None
    outcomes = {o.source: (path, o) for path, o, _ in results}
    states = {s.name: s for s in _states(tmp_path)}
    for name, (path, outcome) in outcomes.items():
        state = states[name]
        if outcome.status == "error":
            assert outcome.error and len(outcome.error) < 500, path
            assert state.last_status == "error" and state.last_error == outcome.error, path
            assert state.consecutive_errors == 1
        else:
            assert outcome.status == "ok", path
            assert state.item_count == outcome.items_new == outcome.items_seen, path
    errors = sum(o.status == "error" for _, o in outcomes.values())
    assert 0 < errors < len(outcomes)


def _states(tmp_path: Path):
    store = Store.open(f"sqlite:///{tmp_path / 'corpus.db'}")
    try:
        return store.source_states()
    finally:
        store.close()


def test_a_real_file_that_is_no_feed_goes_to_the_parse_workers_once(tmp_path: Path) -> None:
    """Dave Winer's RSS-in-JSON from the corpus, served over loopback HTTP twice and read
    by the daemon's parse workers: the second poll fails as the first did, with the same
    message, without sending the unchanged bytes to a worker again."""
    from aggregator.pipeline import open_pipeline

    corpus = corpus_dir()
    path = corpus / "realworld" / "netnewswire" / "ScriptingNews.json"
    with serve_directory(corpus) as server:
        url = server.url(str(path.relative_to(corpus)))
        settings = Settings.model_validate(
            {
                "database": f"sqlite:///{tmp_path / 'winer.db'}",
                "polling": {"allow_networks": ["127.0.0.1/32"]},
                "sources": [{"name": "winer", "url": url}],
            }
        )
        sent: list[bytes] = []
        with open_pipeline(settings) as pipeline:  # the daemon's own parse workers
            in_workers = pipeline.processor

            def counted(content: bytes, **arguments: object) -> object:
                sent.append(content)
                return in_workers(content, **arguments)  # type: ignore[arg-type]

            pipeline.processor = counted  # type: ignore[assignment]
            pipeline.sync_sources()
            outcomes = []
            for _ in range(2):
                (source,) = pipeline.store.sources_for_poll(["winer"])
                outcomes.append(pipeline.poll_source(source))
        requested = server.arrivals[f"/{path.relative_to(corpus)}"]
    first, second = outcomes
    assert first.status == second.status == "error"
    assert first.error is not None and first.error.startswith("not a feed")
    assert second.error == first.error
    assert len(requested) == 2 and sent == [path.read_bytes()]
