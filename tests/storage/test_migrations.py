"""Alembic: upgrade head, downgrade base, upgrade head again, on both engines; models match."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from storage import migrate
from storage.db import Database
from storage.models import Base

TABLES = {
    "members",
    "requests",
    "sessions",
    "availability",
    "feed_posts",
    "notifications",
    "job_runs",
    "submissions",
    "proposals",
    "mentor_profiles",
    "mentor_skills",
    "request_suggestions",
    "conversations",
    "reschedule_asks",
}


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - {"alembic_version"}


def _indexes(conn: Connection) -> set[str]:
    inspector = inspect(conn)
    return {ix["name"] or "" for table in TABLES for ix in inspector.get_indexes(table)}


async def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate.upgrade(db)
        async with db.connect() as conn:
            assert await conn.run_sync(_tables) == TABLES
            indexes = await conn.run_sync(_indexes)
        # Every sweep's filter has its index.
        assert {
            "ix_requests_status_expires_at",
            "ix_requests_status_nudge_due_at",
            "ix_sessions_status_ends_at",
            "ix_proposals_status_last_starts_at",
            "ix_notifications_status_next_attempt",
        } <= indexes
        await migrate.downgrade(db)
        async with db.connect() as conn:
            assert await conn.run_sync(_tables) == set()
        await migrate.upgrade(db)
        async with db.connect() as conn:
            assert await conn.run_sync(_tables) == TABLES
    finally:
        await db.dispose()


async def test_models_match_migrations(database_url: str) -> None:
    """No drift: autogenerate against the migrated database finds nothing to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    db = Database(database_url)
    try:
        await migrate.upgrade(db)

        def diff(conn: Connection) -> list[object]:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))

        async with db.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await db.dispose()
