"""pruned entries: what retention removed, so that feeds still listing it add nothing

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.store.schema import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pruned_entries",
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("sources.id"), primary_key=True),
        sa.Column("entry_key", sa.String(600), primary_key=True),
        sa.Column("pruned_at", UTCDateTime(), nullable=False),
        sa.Column("last_listed_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pruned_entries")
