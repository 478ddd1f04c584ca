"""Which stored items retention removes: a pure decision over dates and carriers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta


def cutoffs(
    retentions: Mapping[int, timedelta | None], now: datetime
) -> dict[int, datetime | None]:
    """Per source id: items dated before this are past the source's retention; None:
    the source keeps its items forever."""
    return {
        source: (now - kept if kept is not None else None) for source, kept in retentions.items()
    }


def expired(
    sort_at: datetime,
    carriers: Iterable[int],
    source_cutoffs: Mapping[int, datetime | None],
    default_cutoff: datetime | None,
) -> bool:
    """An item goes when it is past the retention of every outlet that carried it: one
    that keeps it longer (or forever) keeps it for all. A source the config no longer
    lists follows ``default_cutoff`` (the top-level retention)."""
    found = False
    for source in carriers:
        found = True
        cutoff = source_cutoffs.get(source, default_cutoff)
        if cutoff is None or sort_at >= cutoff:
            return False
    return found
