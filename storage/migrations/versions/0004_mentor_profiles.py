"""mentor profiles (skills, capacity, away until)

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-01 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mentor_profiles",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("workspace", sa.String(length=64), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("away_until", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_mentor_profiles_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_mentor_profiles")),
    )
    op.create_index("ix_mentor_profiles_workspace", "mentor_profiles", ["platform", "workspace"])


def downgrade() -> None:
    op.drop_index("ix_mentor_profiles_workspace", table_name="mentor_profiles")
    op.drop_table("mentor_profiles")
