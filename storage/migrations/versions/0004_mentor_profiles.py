"""mentor profiles (skills, capacity, away until) and matching suggestions

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-01 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0005"
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
        sa.Column("last_suggested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_mentor_profiles_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_mentor_profiles")),
    )
    op.create_index(
        "ix_mentor_profiles_workspace_suggested",
        "mentor_profiles",
        ["platform", "workspace", "last_suggested_at"],
    )
    op.create_table(
        "mentor_skills",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("workspace", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["mentor_profiles.member_id"],
            name=op.f("fk_mentor_skills_member_id_mentor_profiles"),
        ),
        sa.PrimaryKeyConstraint("member_id", "tag", name=op.f("pk_mentor_skills")),
    )
    op.create_index("ix_mentor_skills_workspace_tag", "mentor_skills", ["platform", "workspace", "tag"])
    op.create_table(
        "request_suggestions",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_request_suggestions_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name=op.f("fk_request_suggestions_request_id_requests")
        ),
        sa.PrimaryKeyConstraint("request_id", "member_id", name=op.f("pk_request_suggestions")),
    )
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("match_note", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("match_note")
    op.drop_table("request_suggestions")
    op.drop_index("ix_mentor_skills_workspace_tag", table_name="mentor_skills")
    op.drop_table("mentor_skills")
    op.drop_index("ix_mentor_profiles_workspace_suggested", table_name="mentor_profiles")
    op.drop_table("mentor_profiles")
