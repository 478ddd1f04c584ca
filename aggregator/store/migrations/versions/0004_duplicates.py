"""duplicates: items whose text another item already carried

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("fingerprint", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("duplicate_of", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_items_duplicate_of_items"),
            "items",
            ["duplicate_of"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index(op.f("ix_items_duplicate_of"), ["duplicate_of"])


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_index(op.f("ix_items_duplicate_of"))
        batch.drop_constraint(op.f("fk_items_duplicate_of_items"), type_="foreignkey")
        batch.drop_column("duplicate_of")
        batch.drop_column("fingerprint")
