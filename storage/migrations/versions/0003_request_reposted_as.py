"""requests.reposted_as_id: an expired or cancelled request is posted again at most once

Revision ID: 0003
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite cannot add a foreign key to an existing table in place.
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("reposted_as_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reposted_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(
            op.f("fk_requests_reposted_as_id_requests"), "requests", ["reposted_as_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_constraint(op.f("fk_requests_reposted_as_id_requests"), type_="foreignkey")
        batch.drop_column("reposted_at")
        batch.drop_column("reposted_as_id")
