"""sources.unreadable_digest: the digest of the last document that could not be read

A source that sends something that is no feed mostly sends the same bytes again; the
same bytes fail the same way without being parsed again (process/unreadable.py).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("unreadable_digest", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("unreadable_digest")
