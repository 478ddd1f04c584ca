"""Retention: the store's side of ``process/retention.py``, as the config asks.

``retention`` (top level, and per source) says how long items are kept, by their date.
The daemon prunes every hour, in the one process that holds the retention role;
``aggregator prune`` does it at once, or only reports with ``--dry-run``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.types import PruneReport

PRUNE_EVERY = timedelta(hours=1)


def retention_configured(settings: Settings) -> bool:
    """Whether any source's items are kept for less than forever."""
    return isinstance(settings.retention, timedelta) or any(
        isinstance(source.retention, timedelta) for source in settings.sources
    )


def prune(store: Store, settings: Settings, now: datetime, *, dry_run: bool = False) -> PruneReport:
    default = settings.retention if isinstance(settings.retention, timedelta) else None
    return store.prune(
        {source.name: settings.retention_for(source) for source in settings.sources},
        default,
        now,
        dry_run=dry_run,
    )


def describe_report(report: PruneReport, *, dry_run: bool) -> str:
    verb = "would remove" if dry_run else "removed"
    lines = [
        f"{verb} {report.items} items past their retention, "
        f"{sum(report.credits.values())} outlet credits, {report.stories} stories left empty; "
        f"{'would forget' if dry_run else 'forgot'} {report.forgotten} pruned entries "
        "their feeds no longer list"
    ]
    if report.credits:
        width = max(len(name) for name in report.credits)
        lines += [
            f"  {name:<{width}}  {count}"
            for name, count in sorted(report.credits.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
    return "\n".join(lines)
