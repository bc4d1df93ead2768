"""Start-up checks that need no platform: can the database be reached, and is it migrated?

Each check returns None when all is well, or one message for the operator that says what is
wrong and what to run. The CLI prints it and exits with status 2, never a traceback. Passwords
never appear in a message (see `mask_url`). Platform probes (tokens, channels) live with their
adapters in `handlers/`; those that can only run inside a platform's event loop (Discord's, once
the gateway is ready) raise `StartupError`, which the CLI treats the same way.
"""

from __future__ import annotations

import logging

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from bot.config import mask_url
from storage.db import Database
from storage.migrate import alembic_config, known_revision

log = logging.getLogger(__name__)


class StartupError(Exception):
    """A start-up check failed; the message says what to fix. The CLI prints it and exits 2."""


def cannot_listen(port: int, setting: str, exc: OSError) -> StartupError:
    """A port that is taken (or not ours to take), said as what to change."""
    reason = exc.strerror or str(exc)
    return StartupError(
        f"Cannot listen on port {port} ({reason}). Choose another with {setting}, or stop what is using it."
    )


def _where(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        return f"SQLite file {parsed.database}"
    return f"database {parsed.database!r} on {parsed.host or 'localhost'}:{parsed.port or 5432}"


def describe_connection_error(url: str, exc: BaseException) -> str:
    """An operator's reading of a failed connection: missing database, server down, bad login."""
    text = str(getattr(exc, "orig", None) or exc)
    where = _where(url)
    name = make_url(url).database
    if "does not exist" in text and "database" in text:
        return (
            f"The {where} does not exist. Create it (e.g. `createdb {name}`), then run "
            "`mini-mentorship migrate`."
        )
    if "password authentication failed" in text or "no password supplied" in text or "role" in text:
        return f"The {where} refused the login: check the user and password in DATABASE_URL."
    if "Connection refused" in text or "could not connect" in text or "timeout" in text.lower():
        return (
            f"Cannot reach the {where}: is the PostgreSQL server running and DATABASE_URL's host and "
            "port right?"
        )
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"Cannot use the {where} ({mask_url(first_line)}). Check DATABASE_URL."


async def check_database(db: Database) -> str | None:
    """Connect, and compare the schema revision with the migrations this code ships."""
    head = ScriptDirectory.from_config(alembic_config(db.url)).get_current_head()

    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    try:
        async with db.connect() as conn:
            current = await conn.run_sync(_current)
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        return describe_connection_error(db.url, exc)
    if current is None:
        return f"The {_where(db.url)} has no tables yet: run `mini-mentorship migrate` first."
    if current != head:
        if not known_revision(db.url, current):
            # A newer release migrated it (a rolling upgrade): migrations only add, so this
            # version keeps working until it is replaced.
            log.warning(
                "the %s is at schema revision %s, newer than this version (%s); starting anyway",
                _where(db.url),
                current,
                head,
            )
            return None
        return (
            f"The {_where(db.url)} is at an older schema revision ({current}) than this version "
            f"needs ({head}): run `mini-mentorship migrate`."
        )
    return None
