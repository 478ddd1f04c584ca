"""Engine creation and schema migrations (Alembic, from the first table on)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from aggregator.exceptions import SchemaOutdated, StoreError
from aggregator.store.dialect import ADVISORY_KEYS, binary_results
from aggregator.store.schema import UTC_SESSIONS

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest migration. Kept here so that opening a store does not load Alembic
# (memory and startup time of every poll); a test holds it equal to Alembic's head.
SCHEMA_REVISION = "0017"


def describe(exc: BaseException) -> str:
    """The driver's own message, first line only, without SQLAlchemy's links and SQL."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# PostgreSQL: deadlock_detected, serialization_failure, lock_not_available.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})


def is_transient(exc: BaseException | None) -> bool:
    """Whether retrying the same transaction may succeed (a lost lock race)."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    if getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    return "database is locked" in str(orig)


SQLITE_BUSY_SECONDS = 30
SQLITE_WAL_LIMIT_BYTES = 64 * 1024 * 1024
SQLITE_CHECKPOINT_PAGES = SQLITE_WAL_LIMIT_BYTES // 4096  # of SQLite's default page size


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # How long a writer waits for another one: ?timeout=SECONDS in the URL, else 30 s.
        busy_seconds = float(str(parsed.query.get("timeout", SQLITE_BUSY_SECONDS)))
        kwargs["connect_args"] = {"timeout": busy_seconds, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(
            f"cannot open database {parsed.render_as_string()}: {describe(exc)}"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        event.listen(engine, "connect", _postgresql_settings)
        event.listen(engine, "before_cursor_execute", binary_results)
        setattr(engine.dialect, UTC_SESSIONS, True)
    return engine


def _postgresql_settings(dbapi_connection: Any, _record: Any) -> None:
    """JIT off: our queries are short and many; compiling them cost a series page half a
    second at a million items (bench/scale.py), and saves nothing at this size. No
    parallel workers either: starting them took 40 ms of a feed page's walk down the
    date index (a LIMIT read stops after a few hundred rows), on a small server whose
    other cores are busy polling anyway."""
    cursor = dbapi_connection.cursor()
    try:
        # Dates in and out of the store are UTC. The server's own time zone would only
        # make psycopg hand every timestamp back in a ZoneInfo, converted again here.
        cursor.execute("SET TIME ZONE 'UTC'")
        cursor.execute("SET jit = off")
        cursor.execute("SET max_parallel_workers_per_gather = 0")
    finally:
        cursor.close()
    dbapi_connection.commit()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # A checkpoint (the WAL copied into the file, two fsyncs) every 64 MB of log, not
        # SQLite's 4 MB: a cold poll writes hundreds of MB, and rows it rewrites (a
        # source's, the counters, a story's items) are copied once per checkpoint.
        # The log file is cut back to that size after each one.
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_LIMIT_BYTES}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    head: str | None = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision Alembic recorded in the database; None before any migration."""
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            revision = connection.execute(text("SELECT version_num FROM alembic_version"))
            return revision.scalar_one_or_none()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot reach the database: {describe(exc)}") from exc


def migrate(engine: Engine) -> tuple[str | None, str | None]:
    """Upgrade the schema to the newest revision; return (before, after)."""
    from alembic import command

    before = current_revision(engine)
    config = _alembic_config()
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Instances started together on an empty database migrate in turn: the
                # later ones find the schema made and do nothing.
                connection.execute(
                    text(f"SELECT pg_advisory_xact_lock({ADVISORY_KEYS})"),
                    {"lock_name": "migrations"},
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"migration failed: {describe(exc)}") from exc
    return before, head_revision()


def ensure_schema(engine: Engine) -> None:
    """Create the schema in an empty database; refuse to run on an outdated one."""
    current = current_revision(engine)
    head = SCHEMA_REVISION
    if current == head:
        return
    if current is None:
        try:
            has_tables = bool(inspect(engine).get_table_names())
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot reach the database: {describe(exc)}") from exc
        if not has_tables:
            log.info("creating the database schema (revision %s)", head)
            migrate(engine)
            return
    raise SchemaOutdated(
        f"the database schema is at revision {current or 'none'}, this version of "
        f"aggregator needs {head}: run 'aggregator migrate' first"
    )
