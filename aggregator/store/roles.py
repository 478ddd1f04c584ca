"""Work that one process at a time does for every process sharing the store.

Assigning items to stories keeps an index in memory and chooses story ids: two
processes doing it at once would each miss the other's stories. The process that
holds the role keeps it (and its warm index) until it stops or dies; the others
leave the work to it. On PostgreSQL the role is a session advisory lock on a
connection kept for it, which the server releases when that session ends, however
the process ended. On SQLite it is a lock on a file beside the database, which the
operating system releases likewise.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from aggregator.store.database import describe
from aggregator.store.dialect import ADVISORY_KEYS

log = logging.getLogger(__name__)


class Tenure(enum.Enum):
    KEPT = "kept"  # held since the last call: what this process remembers is current
    TAKEN = "taken"  # newly held: another process may have done the work meanwhile
    ELSEWHERE = "elsewhere"  # another process holds it


class Role:
    """A named role that at most one process holds at a time."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self._session: Connection | None = None
        self._file: IO[bytes] | None = None

    def claim(self) -> Tenure:
        """Keep the role, or take it if nobody holds it."""
        if self.engine.dialect.name == "postgresql":
            return self._claim_postgresql()
        return self._claim_file()

    def release(self) -> None:
        if self._session is not None:
            # Unlocked at once (the server ends a closed session's locks only when its
            # backend has exited), then closed, not returned to the pool.
            with contextlib.suppress(SQLAlchemyError):
                self._session.execute(
                    text(f"SELECT pg_advisory_unlock({ADVISORY_KEYS})"), {"lock_name": self.name}
                )
            with contextlib.suppress(SQLAlchemyError):
                self._session.invalidate()
                self._session.close()
            self._session = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def _claim_postgresql(self) -> Tenure:
        if self._session is not None:
            try:
                self._session.execute(text("SELECT 1"))
                return Tenure.KEPT
            except SQLAlchemyError as exc:
                log.warning("lost the %s role with its database session: %s", self.name, exc)
                self.release()
        try:
            session = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            log.warning("cannot take the %s role: %s", self.name, describe(exc))
            return Tenure.ELSEWHERE
        try:
            held = session.execute(
                text(f"SELECT pg_try_advisory_lock({ADVISORY_KEYS})"), {"lock_name": self.name}
            ).scalar_one()
        except SQLAlchemyError as exc:
            session.close()
            log.warning("cannot take the %s role: %s", self.name, describe(exc))
            return Tenure.ELSEWHERE
        if not held:
            session.close()
            return Tenure.ELSEWHERE
        self._session = session
        log.info("this process now does %s for every process sharing the store", self.name)
        return Tenure.TAKEN

    def _claim_file(self) -> Tenure:
        if self._file is not None:
            return Tenure.KEPT
        path = _lock_path(self.engine, self.name)
        if path is None:  # an in-memory database: no other process can share it
            self._file = open(os.devnull, "rb")  # noqa: SIM115 (held until release)
            return Tenure.TAKEN
        handle = open(path, "ab")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return Tenure.ELSEWHERE
        self._file = handle
        return Tenure.TAKEN


def _lock_path(engine: Engine, name: str) -> Path | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(f"{database}.{name}.lock")
