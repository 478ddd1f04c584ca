"""The one place that knows SQL dialects differ: native ``INSERT ... ON CONFLICT``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")

# SQLite allows 32766 bound parameters per statement; stay well below on every backend.
CHUNK = 500


def upsert(connection: Connection, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing/_do_update`` for this backend."""
    name = connection.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database backend {name!r}; use SQLite or PostgreSQL")


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
