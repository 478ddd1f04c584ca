"""What this process did, for Prometheus (``GET /metrics``, prometheus-client).

One ``Metrics`` per process, handed to the pipeline (polls, stories) and to the app
(feed requests): nothing is global, so tests count on their own registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from aggregator.types import PollOutcome, StoryAssignment

__all__ = ["CONTENT_TYPE", "Metrics"]

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.polls = Counter(
            "aggregator_polls", "Polls of sources, by outcome", ["source", "outcome"], registry=r
        )
        self.http_responses = Counter(
            "aggregator_source_responses",
            "Sources' HTTP answers by status class (none: no answer)",
            ["status_class"],
            registry=r,
        )
        self.items = Counter(
            "aggregator_items_ingested", "Entries new to their source, stored", registry=r
        )
        self.duplicates = Counter(
            "aggregator_duplicates_merged",
            "Items found to repeat an earlier item's text (wire copy), joined to its story",
            registry=r,
        )
        self.story_joins = Counter(
            "aggregator_story_joins", "Items that joined a story other outlets reported", registry=r
        )
        self.story_merges = Counter(
            "aggregator_stories_merged", "Stories found to be one and merged", registry=r
        )
        self.fetch_seconds = Histogram(
            "aggregator_fetch_seconds", "Time to fetch a source", buckets=_SECONDS, registry=r
        )
        self.parse_seconds = Histogram(
            "aggregator_parse_seconds",
            "Time to parse and normalize a document",
            buckets=_SECONDS,
            registry=r,
        )
        self.feed_requests = Counter(
            "aggregator_feed_requests",
            "Requests for published feeds, by HTTP status (304: the reader had it)",
            ["code"],
            registry=r,
        )
        self.not_modified_ratio = Gauge(
            "aggregator_feed_not_modified_ratio",
            "Share of feed requests answered 304 (the reader had the feed already)",
            registry=r,
        )
        self.not_modified_ratio.set_function(self._not_modified_ratio)
        self.scheduling_lag = Gauge(
            "aggregator_scheduling_lag_seconds",
            "How long the most overdue source has been due without being polled",
            registry=r,
        )

    def measure_lag(self, lag: Callable[[], float]) -> None:
        """Read the scheduling lag (from the store) whenever metrics are scraped."""
        self.scheduling_lag.set_function(lag)

    def poll(self, outcome: PollOutcome) -> None:
        self.polls.labels(outcome.source, outcome.status).inc()
        status = outcome.http_status
        self.http_responses.labels(f"{status // 100}xx" if status else "none").inc()
        if outcome.items_new:
            self.items.inc(outcome.items_new)
        if outcome.fetch_seconds is not None:
            self.fetch_seconds.observe(outcome.fetch_seconds)
        if outcome.parse_seconds is not None:
            self.parse_seconds.observe(outcome.parse_seconds)

    def assigned(self, assignments: Sequence[StoryAssignment]) -> None:
        self.duplicates.inc(sum(1 for a in assignments if a.duplicate_of is not None))
        self.story_joins.inc(sum(1 for a in assignments if not a.created))
        self.story_merges.inc(sum(len(a.merged) for a in assignments))

    def feed_response(self, status: int) -> None:
        self.feed_requests.labels(str(status)).inc()

    def _not_modified_ratio(self) -> float:
        counts = {
            sample.labels["code"]: sample.value
            for metric in self.feed_requests.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        }
        total = sum(counts.values())
        return counts.get("304", 0.0) / total if total else 0.0

    def render(self) -> bytes:
        return generate_latest(self.registry)
