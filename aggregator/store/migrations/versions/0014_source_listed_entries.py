"""sources.listed_entries: digests of the entries a source's last stored document listed

A changed feed mostly sends again the entries it sent last time; those the store holds
as they are need no normalizing (process/normalize.py, ``normalize_entries``).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("listed_entries", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("listed_entries")
