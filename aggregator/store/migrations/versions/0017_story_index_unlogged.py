"""story_index is an unlogged table on PostgreSQL

The saved story index is a cache: the next process rebuilds it from the store when it
is missing (six seconds at a million items). Logged, each `aggregator poll` wrote it
to the write-ahead log as well, 50-70 MB at a million items, which replicas and WAL
archives then carry. Unlogged, PostgreSQL empties it after a crash and does not
replicate it: the next process rebuilds the index.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE story_index SET UNLOGGED")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE story_index SET LOGGED")
