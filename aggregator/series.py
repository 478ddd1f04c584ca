"""Series in the store: the store's side of ``process/series.py``.

The configured series become rules (``series_rules``); a source's documents are matched
against the rules that listen to it (``rules_for_source``) when they are stored. When the
rules change, ``regroup`` decides every stored item's series again from what the store
holds, without fetching anything; ``regroup_if_changed`` does it when the rules differ
from those the memberships were decided by (a digest kept in the store).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aggregator.process.series import SeriesRule, compile_rule, series_for
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.types import SeriesMembership

log = logging.getLogger(__name__)

BATCH = 2000  # items read, decided and written per transaction
RULES_STATE = "series_rules"


@dataclass(frozen=True, slots=True)
class RegroupReport:
    items: int
    memberships: int
    series: int  # series with at least one member


def series_rules(settings: Settings) -> tuple[SeriesRule, ...]:
    return tuple(
        compile_rule(
            s.slug,
            [(c.term, c.domain) for c in s.match.categories],
            s.match.keywords,
            regexes=s.match.regex,
            exclude=s.match.exclude,
            sources=s.match.sources,
            tags=s.match.tags,
            min_score=s.match.min_score,
        )
        for s in settings.series
    )


def rules_for_source(
    rules: Sequence[SeriesRule], settings: Settings, name: str
) -> tuple[SeriesRule, ...]:
    """The series rules that listen to this source."""
    source = settings.source(name)
    tags = source.tags if source else ()
    return tuple(rule for rule in rules if rule.applies_to(name, tags))


def rules_digest(settings: Settings) -> str:
    """What memberships depend on: the series' rules, and which source has which tags."""
    described = {
        "series": [{"slug": s.slug, "match": s.match.model_dump()} for s in settings.series],
        "tags": {s.name: sorted(s.tags) for s in settings.sources},
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def regroup(store: Store, settings: Settings) -> RegroupReport:
    """Decide every stored item's series again, in batches of one transaction each."""
    rules = series_rules(settings)
    by_source: dict[str, tuple[SeriesRule, ...]] = {}
    after, seen, found_total = 0, 0, 0
    slugs: set[str] = set()
    while batch := store.item_texts(after, BATCH):
        memberships: list[tuple[int, SeriesMembership]] = []
        for item in batch:
            listening = {
                rule.slug: rule
                for name in item.sources
                for rule in by_source.setdefault(name, rules_for_source(rules, settings, name))
            }
            applicable = [rule for rule in rules if rule.slug in listening]
            memberships += [(item.item_id, found) for found in series_for(item, applicable)]
        store.replace_series_memberships([item.item_id for item in batch], memberships)
        after = batch[-1].item_id
        seen += len(batch)
        found_total += len(memberships)
        slugs.update(found.slug for _, found in memberships)
    store.set_state(RULES_STATE, rules_digest(settings))
    return RegroupReport(items=seen, memberships=found_total, series=len(slugs))


def regroup_if_changed(store: Store, settings: Settings) -> RegroupReport | None:
    """``regroup`` when the rules differ from those the memberships were decided by."""
    if store.state(RULES_STATE) == rules_digest(settings):
        return None
    report = regroup(store, settings)
    log.info(
        "series rules changed: %d items regrouped, %d memberships in %d series",
        report.items,
        report.memberships,
        report.series,
    )
    return report
