"""One fetched document to storable items: parse, normalize, match series. Pure and
CPU-bound, so the pipeline may run it in a worker process with a time budget."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aggregator.parse import parse_feed
from aggregator.process.normalize import normalize_entries
from aggregator.process.series import SeriesRule, series_for
from aggregator.types import ProcessedDocument


def process_document(
    content: bytes,
    *,
    content_type: str | None,
    url: str,
    source_name: str,
    now: datetime,
    rules: Sequence[SeriesRule],
    code_key: bytes,
    split_categories: str | None = None,
    listed: frozenset[bytes] = frozenset(),
) -> ProcessedDocument:
    """Raises ParseError when the bytes are not a feed. ``rules``: the series rules
    that apply to this source; ``code_key``: the reading code's
    (``reading_code.reading_code_key``), which the entries' digests are made under;
    ``listed``: what its last stored document listed (``SourceForPoll.listed``), left
    out of the items when sent again as it was."""
    parsed = parse_feed(content, content_type=content_type, url=url)
    entries = normalize_entries(
        parsed.items,
        source_name=source_name,
        now=now,
        code_key=code_key,
        split_categories=split_categories,
        listed=listed,
    )
    series = {item.entry_key: series_for(item, rules) for item in entries.items}
    return ProcessedDocument(
        items=entries.items,
        series={key: found for key, found in series.items() if found},
        ttl=parsed.ttl,
        warning=parsed.warning,
        unchanged=entries.unchanged,
    )
