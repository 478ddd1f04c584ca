"""The one place that knows SQL dialects differ: native ``INSERT ... ON CONFLICT``,
lists of values as one array parameter on PostgreSQL, and its binary reads of bytes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Column, ColumnElement, Connection, Table, any_, func, literal, text
from sqlalchemy.sql.functions import Function
from sqlalchemy.sql.selectable import TableValuedAlias

T = TypeVar("T")

# The two keys of a PostgreSQL advisory lock named :lock_name. Advisory locks are per
# database, and deployments (or test runs) may share one database in separate schemas.
ADVISORY_KEYS = (
    "hashtext('aggregator'), hashtext(coalesce(current_schema(), '') || ':' || :lock_name)"
)

# SQLite allows 32766 bound parameters per statement; stay well below on every backend.
CHUNK = 500


def upsert(connection: Connection, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing/_do_update`` for this backend."""
    # Each dialect is imported when used: PostgreSQL's costs every SQLite process 50 ms
    # of start-up (a tenth of a warm poll's imports).
    name = connection.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database backend {name!r}; use SQLite or PostgreSQL")


def count_up(connection: Connection, counter: Column[Any], row: int) -> int:
    """Add one to ``counter`` in the row of id ``row`` of its table (made at 1 when
    missing), in the caller's transaction; the new count."""
    table = counter.table
    statement = upsert(connection, table).values({"id": row, counter.name: 1})
    statement = statement.on_conflict_do_update(
        index_elements=["id"], set_={counter.name: counter + 1}
    )
    return int(connection.execute(statement.returning(counter)).scalar_one())


def write_first(connection: Connection) -> None:
    """Make the transaction a writer from its first statement. PostgreSQL needs nothing;
    SQLite's driver begins a transaction only at the first write, so reads before it
    would see a snapshot another writer can change before ours writes. A write that
    changes no row takes SQLite's write lock, as BEGIN IMMEDIATE would."""
    if connection.dialect.name == "sqlite":
        connection.execute(text("UPDATE publication SET version = version WHERE 0"))


def any_of(connection: Connection, column: ColumnElement[Any], values: Sequence[Any]) -> Any:
    """``column IN (values)``. On PostgreSQL, ``column = ANY(array)`` with the list as
    one parameter: the statement's text is the same for every list, so the driver
    prepares it once, and neither SQLAlchemy nor the server parses hundreds of
    placeholders on every page of a feed."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(literal(list(values), ARRAY(column.type)))
    return column.in_(list(values))


# An execution option: PostgreSQL sends this statement's results in binary. In text, a
# bytea value comes as hex, twice its size, to be decoded again (the story index's 52 MB
# snapshot at a million items: 0.47 s to read, against 0.2 s). Other backends ignore it.
BINARY_RESULTS = "aggregator_binary_results"


def binary_results(
    _connection: Connection,
    cursor: Any,
    _statement: str,
    _parameters: Any,
    context: Any,
    _executemany: bool,
) -> None:
    """A PostgreSQL engine's ``before_cursor_execute`` listener: results in binary for
    a statement run with the ``BINARY_RESULTS`` option. SQLAlchemy makes a cursor per
    statement, so no other statement is affected; psycopg loads the same Python values
    either way."""
    if context is not None and context.execution_options.get(BINARY_RESULTS):
        from psycopg import pq

        cursor.format = pq.Format.BINARY


def not_a_key(connection: Connection, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """``column`` for a test SQLite must not look it up by: on SQLite an expression
    (``column + 0``), which it then reads from the index entry it found by the others.
    SQLite would otherwise search ``(item_id, source_id)`` once per value of
    ``source_id IN (...)`` (100 values: 160 ms a feed page at a million items)."""
    return column + 0 if connection.dialect.name == "sqlite" else column


def id_chunks(connection: Connection, values: Sequence[T]) -> Iterator[Sequence[T]]:
    """``values`` in parts, each for one ``any_of``: on PostgreSQL all in one (an array
    is one parameter, and every part is a round trip), elsewhere ``CHUNK`` at a time."""
    if connection.dialect.name == "postgresql":
        return iter((values,) if values else ())
    return chunks(values)


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# json_each and json_extract are built into SQLite from 3.38 on (optional before), and
# UPDATE ... FROM came in 3.33. Python links the system's SQLite.
SQLITE_JSON_ROWS = (3, 38)


def has_json_rows(connection: Connection) -> bool:
    """Whether ``json_rows`` and UPDATE ... FROM it run here (SQLite 3.38 or later)."""
    if connection.dialect.name != "sqlite":
        return False
    version: tuple[int, ...] = connection.dialect.dbapi.sqlite_version_info  # type: ignore[union-attr]
    return version >= SQLITE_JSON_ROWS


def json_rows(rows: Sequence[Sequence[Any]]) -> TableValuedAlias:
    """SQLite's ``json_each`` over these rows (one JSON array each), as a table whose
    ``value`` column holds each row: many rows in one parameter of one statement."""
    return func.json_each(json.dumps(rows)).table_valued("value")


def field(rows: TableValuedAlias, position: int) -> Function[Any]:
    """The value at ``position`` of a row of ``json_rows``."""
    return func.json_extract(rows.c.value, f"$[{position}]")
