"""story_index.snapshot stored uncompressed on PostgreSQL

TOAST compressed the saved indexes (tens of MB at a million items) on every save, which
took a poll process a second at exit; they are mostly numbers and short strings, which
compress little.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE story_index ALTER COLUMN snapshot SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE story_index ALTER COLUMN snapshot SET STORAGE EXTENDED")
