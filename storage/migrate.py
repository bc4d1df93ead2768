"""Run Alembic migrations from inside the bot (CLI `migrate`, SQLite start-up, tests)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection

from storage.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")

log = logging.getLogger(__name__)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def known_revision(url: str, revision: str) -> bool:
    """Whether this code ships `revision`; one it does not know is a newer release's."""
    try:
        return ScriptDirectory.from_config(alembic_config(url)).get_revision(revision) is not None
    except CommandError:
        return False


async def upgrade(database: Database, revision: str = "head") -> str | None:
    """Upgrade to `revision`. A database a newer release has already migrated is left as it is
    (its migrations only add, so this code keeps working with it): its revision is returned."""
    config = alembic_config(database.url)

    def _upgrade(connection: Connection) -> str | None:
        current = MigrationContext.configure(connection).get_current_revision()
        if current is not None and not known_revision(database.url, current):
            return current
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        return None

    async with database.engine.begin() as conn:
        newer = await conn.run_sync(_upgrade)
    if newer is not None:
        log.warning(
            "the database is at schema revision %s, newer than this version knows; left as it is", newer
        )
    return newer


async def downgrade(database: Database, revision: str = "base") -> None:
    config = alembic_config(database.url)

    def _downgrade(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with database.engine.begin() as conn:
        await conn.run_sync(_downgrade)
