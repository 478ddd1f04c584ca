"""Shared fixtures: a fresh database on every backend, a loopback feed server."""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from aggregator.store import Store
from aggregator.store.schema import item_sources, items

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
POSTGRES_ENV = "AGGREGATOR_TEST_DATABASE_URL"


@pytest.fixture(autouse=True)
def _nothing_spared_from_the_collector() -> Iterator[None]:
    """A story assigner a test leaves open keeps the collector off its index
    (``memory.spare_from_collection``): the next test starts with nothing spared."""
    yield
    gc.unfreeze()


def corpus_dir() -> Path:
    """The shared real-world corpus; tests that need it fail (never skip) without it."""
    path = Path(os.environ.get("AGGREGATOR_CORPUS", REPO.parent / "shared" / "corpus"))
    if not path.is_dir():
        pytest.fail(
            f"the shared test corpus is missing at {path}; check out shared/ beside the "
            "repository or set AGGREGATOR_CORPUS"
        )
    return path


def _postgres_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"{POSTGRES_ENV} must be set in CI: the store tests run on PostgreSQL too")
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a temp SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    yield from _fresh_postgres_schema()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema, for what only PostgreSQL can show."""
    yield from _fresh_postgres_schema()


def _fresh_postgres_schema() -> Iterator[str]:
    base = _postgres_url()
    if base is None:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    try:
        yield opened
    finally:
        opened.close()


def item_and_credit_counts(database_url: str) -> tuple[int, int]:
    """(items, item_sources) rows in the database at ``database_url``."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return (
                connection.execute(select(func.count()).select_from(items)).scalar_one(),
                connection.execute(select(func.count()).select_from(item_sources)).scalar_one(),
            )
    finally:
        engine.dispose()
