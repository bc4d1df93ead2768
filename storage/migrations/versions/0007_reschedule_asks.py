"""reschedule asks from the student, and who cancelled a request

Revision ID: 0007
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reschedule_asks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("schedule_version", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name=op.f("fk_reschedule_asks_request_id_requests")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_reschedule_asks_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reschedule_asks")),
    )
    op.create_index("ix_reschedule_asks_request_id", "reschedule_asks", ["request_id", "id"], unique=False)
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("cancelled_by", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("cancelled_by")
    op.drop_index("ix_reschedule_asks_request_id", table_name="reschedule_asks")
    op.drop_table("reschedule_asks")
