"""the fair pool's index ends with its tie-break (member_id)

Revision ID: 0009
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_mentor_profiles_workspace_suggested", table_name="mentor_profiles")
    op.create_index(
        "ix_mentor_profiles_workspace_suggested",
        "mentor_profiles",
        ["platform", "workspace", "last_suggested_at", "member_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_mentor_profiles_workspace_suggested", table_name="mentor_profiles")
    op.create_index(
        "ix_mentor_profiles_workspace_suggested",
        "mentor_profiles",
        ["platform", "workspace", "last_suggested_at"],
        unique=False,
    )
