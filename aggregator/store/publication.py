"""The publication counter: how many times what the feeds show has changed.

Writers count a change in the transaction that makes it, last (the row is every
writer's: held for as short a time as can be); readers compare it with the one their
rendered copies were made at.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from aggregator.store.dialect import count_up
from aggregator.store.schema import publication

_ROW = 1


def count_change(connection: Connection) -> None:
    count_up(connection, publication.c.version, _ROW)


def version(connection: Connection) -> int:
    found: int | None = connection.execute(
        select(publication.c.version).where(publication.c.id == _ROW)
    ).scalar_one_or_none()
    return found or 0
