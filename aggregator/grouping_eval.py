"""``aggregator eval-grouping``: story assignment measured against labelled stories.

Reads a CSV with the columns of the UCI News Aggregator dataset (ID, TITLE, URL,
PUBLISHER, CATEGORY, STORY, HOSTNAME, TIMESTAMP in ms), assigns every row to a story in
timestamp order exactly as the daemon assigns items, and scores the result.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aggregator.exceptions import AggregatorError
from aggregator.process.stories import GroupingRules, StoryIndex, terms

REQUIRED_COLUMNS = ("ID", "TITLE", "PUBLISHER", "STORY", "TIMESTAMP")


class EvaluationInputError(AggregatorError):
    """The labelled file cannot be read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelledHeadline:
    id: str
    title: str
    publisher: str
    story: str
    published: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Scores:
    bcubed_precision: float
    bcubed_recall: float
    pairwise_precision: float
    pairwise_recall: float
    items: int
    gold_stories: int
    predicted_stories: int

    @property
    def bcubed_f1(self) -> float:
        p, r = self.bcubed_precision, self.bcubed_recall
        return 2 * p * r / (p + r) if p + r else 0.0


def read_labelled(path: Path) -> list[LabelledHeadline]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise EvaluationInputError(
                    f"{path}: missing column(s) {', '.join(missing)}; expected the UCI News "
                    f"Aggregator columns {', '.join(REQUIRED_COLUMNS)}"
                )
            rows = []
            for line, row in enumerate(reader, start=2):
                try:
                    stamp = datetime.fromtimestamp(int(row["TIMESTAMP"]) / 1000, tz=UTC)
                except (TypeError, ValueError, OverflowError):
                    raise EvaluationInputError(
                        f"{path}:{line}: TIMESTAMP must be milliseconds since 1970, "
                        f"not {row['TIMESTAMP']!r}"
                    ) from None
                rows.append(
                    LabelledHeadline(
                        id=row["ID"],
                        title=row["TITLE"] or "",
                        publisher=row["PUBLISHER"] or "",
                        story=row["STORY"],
                        published=stamp,
                    )
                )
            return rows
    except OSError as exc:
        raise EvaluationInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise EvaluationInputError(f"{path} is not a readable UTF-8 CSV file: {exc}") from exc


def assign_stories(headlines: Sequence[LabelledHeadline], rules: GroupingRules) -> dict[str, int]:
    """ID -> predicted story, assigning in timestamp order (ties in file order)."""
    index = StoryIndex(rules)
    ordered = sorted(enumerate(headlines), key=lambda pair: (pair[1].published, pair[0]))
    predicted = {}
    for _, headline in ordered:
        counts = terms(headline.title, outlet=headline.publisher)
        predicted[headline.id] = index.assign(counts, headline.published)
    # Stories merged later take their earlier members with them.
    return {item: index.story_of(story) for item, story in predicted.items()}


def score(gold: Mapping[str, str], predicted: Mapping[str, int]) -> Scores:
    """B-cubed and pairwise precision and recall of ``predicted`` against ``gold``."""
    gold_members = _members(gold)
    predicted_members = _members(predicted)
    precision = recall = 0.0
    for item in gold:
        mine = predicted_members[predicted[item]]
        theirs = gold_members[gold[item]]
        overlap = len(mine & theirs)
        precision += overlap / len(mine)
        recall += overlap / len(theirs)
    overlaps = Counter((gold[item], predicted[item]) for item in gold)
    same_both = sum(_pairs(n) for n in overlaps.values())
    same_predicted = sum(_pairs(len(m)) for m in predicted_members.values())
    same_gold = sum(_pairs(len(m)) for m in gold_members.values())
    count = len(gold)
    return Scores(
        bcubed_precision=precision / count if count else 0.0,
        bcubed_recall=recall / count if count else 0.0,
        pairwise_precision=same_both / same_predicted if same_predicted else 1.0,
        pairwise_recall=same_both / same_gold if same_gold else 1.0,
        items=count,
        gold_stories=len(gold_members),
        predicted_stories=len(predicted_members),
    )


def _members(labels: Mapping[str, object]) -> dict[object, set[str]]:
    members: defaultdict[object, set[str]] = defaultdict(set)
    for item, label in labels.items():
        members[label].add(item)
    return members


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def write_predictions(path: Path, predicted: Iterable[tuple[str, int]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "predicted_story"])
        writer.writerows(predicted)
