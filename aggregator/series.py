"""Series in the store: the store's side of ``process/series.py``.

The configured series, and with ``series.auto`` those made from outlets' tags that look
like running stories (kept in the store, so they stay once made), become rules
(``series_rules``); a source's documents are matched against the rules that listen to it
(``rules_for_source``) when they are stored. When the rules change, ``regroup`` decides
every stored item's series again from what the store holds, without fetching anything;
``regroup_if_changed`` does it when the rules differ from those the memberships were
decided by (a digest kept in the store).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.process.series import SeriesRule, compile_rule, series_for
from aggregator.process.series_tags import SeriesSuggestion, suggest_series
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.types import AutoSeries, SeriesMembership, StoredItemText

log = logging.getLogger(__name__)

BATCH = 2000  # items read, decided and written per transaction
RULES_STATE = "series_rules"
# Raised when process/series.py decides differently (weights, folding): stored
# memberships are then decided again, as after an edit of the rules.
MATCHING_VERSION = 1
PROGRESS_EVERY = 50  # batches between two progress lines of a long regroup
AUTO_STATE = "auto_series"


@dataclass(frozen=True, slots=True)
class RegroupReport:
    items: int
    memberships: int
    series: int  # series with at least one member


def series_rules(settings: Settings, auto: Sequence[AutoSeries] = ()) -> tuple[SeriesRule, ...]:
    declared = tuple(
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
    return declared + tuple(compile_rule(a.slug, a.categories) for a in auto)


def rules_for_source(
    rules: Sequence[SeriesRule], settings: Settings, name: str
) -> tuple[SeriesRule, ...]:
    """The series rules that listen to this source."""
    source = settings.source(name)
    tags = source.tags if source else ()
    return tuple(rule for rule in rules if rule.applies_to(name, tags))


def rules_digest(settings: Settings, auto: Sequence[AutoSeries] = ()) -> str:
    """What memberships depend on: the series' rules, and which source has which tags."""
    described = {
        "matching": MATCHING_VERSION,
        "series": [{"slug": s.slug, "match": s.match.model_dump()} for s in settings.series],
        "auto": [{"slug": a.slug, "categories": a.categories} for a in auto],
        "tags": {s.name: sorted(s.tags) for s in settings.sources},
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def regroup(store: Store, settings: Settings, auto: Sequence[AutoSeries] = ()) -> RegroupReport:
    """Decide every stored item's series again, in batches of one transaction each."""
    rules = series_rules(settings, auto)
    if not rules:  # nothing can match: the memberships go, with no item read
        store.clear_series_memberships()
        store.set_state(RULES_STATE, rules_digest(settings, auto))
        return RegroupReport(items=0, memberships=0, series=0)
    after, seen, found_total = 0, 0, 0
    slugs: set[str] = set()
    while batch := store.item_texts(after, BATCH):
        memberships = decide_memberships(batch, rules, settings)
        store.replace_series_memberships([item.item_id for item in batch], memberships)
        after = batch[-1].item_id
        seen += len(batch)
        if seen % (BATCH * PROGRESS_EVERY) == 0:
            log.info("regrouping series: %d items so far", seen)
        found_total += len(memberships)
        slugs.update(found.slug for _, found in memberships)
    store.set_state(RULES_STATE, rules_digest(settings, auto))
    return RegroupReport(items=seen, memberships=found_total, series=len(slugs))


def decide_memberships(
    texts: Sequence[StoredItemText], rules: Sequence[SeriesRule], settings: Settings
) -> list[tuple[int, SeriesMembership]]:
    """The series of stored items, each matched against the rules that listen to any
    source carrying it."""
    by_source: dict[str, tuple[SeriesRule, ...]] = {}
    memberships: list[tuple[int, SeriesMembership]] = []
    for item in texts:
        listening = {
            rule.slug
            for name in item.sources
            for rule in by_source.setdefault(name, rules_for_source(rules, settings, name))
        }
        applicable = [rule for rule in rules if rule.slug in listening]
        memberships += [(item.item_id, found) for found in series_for(item, applicable)]
    return memberships


def redecide(
    store: Store, settings: Settings, rules: Sequence[SeriesRule], identities: Sequence[str]
) -> None:
    """Decide again the series of these stored items (a poll's), from what the store
    holds and with every carrier's rules: a poll matches only its own copy against its
    source's rules, and never takes back a series an updated item no longer matches."""
    store.redecide_series(identities, lambda texts: decide_memberships(texts, rules, settings))


def regroup_if_changed(
    store: Store, settings: Settings, auto: Sequence[AutoSeries] = ()
) -> RegroupReport | None:
    """``regroup`` when the rules differ from those the memberships were decided by."""
    if store.state(RULES_STATE) == rules_digest(settings, auto):
        return None
    report = regroup(store, settings, auto)
    log.info(
        "series rules changed: %d items regrouped, %d memberships in %d series",
        report.items,
        report.memberships,
        report.series,
    )
    return report


def suggest_from_store(
    store: Store,
    settings: Settings,
    *,
    since: datetime,
    min_items: int,
    min_days: int,
    auto: Sequence[AutoSeries] | None = None,
) -> tuple[list[SeriesSuggestion], int]:
    """Outlets' tags of the items since ``since`` that look like running stories and no
    series (declared, or made by series.auto: ``auto``, else read from the store) takes
    yet; and how many items were read."""
    uses, per_source = store.tag_uses(since)
    made = stored_auto_series(store) if auto is None else auto
    suggestions = suggest_series(
        uses,
        per_source,
        declared=series_rules(settings, made),
        min_items=min_items,
        min_days=min_days,
    )
    return suggestions, sum(per_source.values())


def stored_auto_series(store: Store) -> tuple[AutoSeries, ...]:
    """The series ``series.auto`` has made, oldest first."""
    raw = store.state(AUTO_STATE)
    if not raw:
        return ()
    return tuple(
        AutoSeries(
            slug=entry["slug"],
            title=entry["title"],
            categories=tuple((term, domain) for term, domain in entry["categories"]),
            created=datetime.fromisoformat(entry["created"]),
        )
        for entry in json.loads(raw)
    )


def refresh_auto_series(store: Store, settings: Settings, now: datetime) -> tuple[AutoSeries, ...]:
    """With ``series.auto``, make a series of every outlet tag of the last ``days`` that
    looks like a running story and no series takes yet; series once made stay."""
    known = stored_auto_series(store)
    auto = settings.auto_series
    if not auto.enabled:
        return known
    suggestions, _ = suggest_from_store(
        store,
        settings,
        since=now - timedelta(days=auto.days),
        min_items=auto.min_items,
        min_days=auto.min_days,
        auto=known,
    )
    taken = {s.slug for s in settings.series} | {a.slug for a in known}
    made = list(known)
    for suggestion in suggestions:
        slug = suggestion.slug if suggestion.slug not in taken else f"{suggestion.slug}-auto"
        if slug in taken:
            continue
        taken.add(slug)
        made.append(
            AutoSeries(
                slug=slug, title=suggestion.title, categories=suggestion.categories, created=now
            )
        )
    if len(made) > len(known):
        store.set_state(AUTO_STATE, json.dumps([_described(a) for a in made]))
        log.info("series.auto: %d new series from outlets' tags", len(made) - len(known))
    return tuple(made)


def _described(auto: AutoSeries) -> dict[str, object]:
    return {
        "slug": auto.slug,
        "title": auto.title,
        "categories": [list(category) for category in auto.categories],
        "created": auto.created.isoformat(),
    }
