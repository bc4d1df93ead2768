"""the escalation ladder (step, wait and target per request) and where Claim messages live

Revision ID: 0006
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("escalation_step", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claim_target_at", sa.DateTime(timezone=True), nullable=True))
    # Open requests keep their pending nudge time as the first step; their wait began at posting.
    op.execute("UPDATE requests SET waiting_since = created_at WHERE status = 'open'")
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("message_ref", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("message_ref")
        batch.drop_column("channel")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("claim_target_at")
        batch.drop_column("waiting_since")
        batch.drop_column("escalation_step")
