"""proposals of times, and the request's pending proposal

Revision ID: 0005
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("mentor_id", sa.Integer(), nullable=False),
        sa.Column("times", sa.JSON(), nullable=False),
        sa.Column("last_starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("meeting_url", sa.String(length=500), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("picked", sa.Integer(), nullable=True),
        sa.Column("reply_note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["mentor_id"], ["members.id"], name=op.f("fk_proposals_mentor_id_members")),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], name=op.f("fk_proposals_request_id_requests")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposals")),
    )
    op.create_index("ix_proposals_request_id", "proposals", ["request_id", "id"], unique=False)
    op.create_index(
        "ix_proposals_status_last_starts_at", "proposals", ["status", "last_starts_at"], unique=False
    )
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("proposal_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("proposal_id")
    op.drop_index("ix_proposals_status_last_starts_at", table_name="proposals")
    op.drop_index("ix_proposals_request_id", table_name="proposals")
    op.drop_table("proposals")
