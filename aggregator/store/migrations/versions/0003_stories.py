"""stories: items that report the same event

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.store.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stories",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("merged_into", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["merged_into"], ["stories.id"], name=op.f("fk_stories_merged_into_stories")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stories")),
    )
    op.create_index(op.f("ix_stories_last_seen"), "stories", ["last_seen"])
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("story_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_items_story_id_stories"), "stories", ["story_id"], ["id"])
        batch.create_index(op.f("ix_items_story_id"), ["story_id"])


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_index(op.f("ix_items_story_id"))
        batch.drop_constraint(op.f("fk_items_story_id_stories"), type_="foreignkey")
        batch.drop_column("story_id")
    op.drop_index(op.f("ix_stories_last_seen"), table_name="stories")
    op.drop_table("stories")
