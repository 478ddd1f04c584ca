"""source etiquette: permanent redirects, 410 Gone, rate of new items

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.store.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("fetch_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("gone_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("new_item_gap", sa.Float(), nullable=True))
        batch.add_column(sa.Column("last_new_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("last_new_at")
        batch.drop_column("new_item_gap")
        batch.drop_column("gone_at")
        batch.drop_column("fetch_url")
