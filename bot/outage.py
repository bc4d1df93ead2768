"""Database outages while running: one WARNING when one starts, one INFO when it ends, and
backoff in between, instead of a traceback on every tick.

A Runtime holds one tracker; the sweeps and the outbox worker report each attempt to it, so
one outage gives one WARNING per process however many loops notice it. Errors that are not
the database being away (a bug) are not outages: the caller logs those in full.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import exc as sa_exc

from bot.clock import Clock

log = logging.getLogger("mini_mentorship.outage")

BASE_BACKOFF = 2.0  # seconds before the first retry; doubles per failure
MAX_BACKOFF = 60.0


def is_database_outage(error: BaseException) -> bool:
    """The database (or the network to it) is away, as opposed to a bug in our code."""
    if isinstance(error, sa_exc.DBAPIError):
        # OperationalError/InterfaceError: connection refused, dropped, server restarting.
        return error.connection_invalidated or isinstance(
            error, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return isinstance(error, ConnectionError | TimeoutError | sa_exc.TimeoutError)


class OutageTracker:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.failures = 0
        self.since: datetime | None = None
        self.retry_at: datetime | None = None

    @property
    def down(self) -> bool:
        return self.since is not None

    def ready(self) -> bool:
        """Whether a scheduled attempt should run now (False while backing off)."""
        return self.retry_at is None or self.clock.now() >= self.retry_at

    def failed(self, error: BaseException, where: str) -> bool:
        """Record a failed attempt. True if it was an outage (logged once, backoff set); False
        if it was something else, which the caller must log with its traceback."""
        if not is_database_outage(error):
            return False
        now = self.clock.now()
        self.failures += 1
        delay = min(MAX_BACKOFF, BASE_BACKOFF * 2 ** (self.failures - 1))
        self.retry_at = now + timedelta(seconds=delay)
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]
        if self.since is None:
            self.since = now
            log.warning(
                "database unreachable (%s): %s; retrying with backoff, quietly until it is back",
                where,
                reason,
            )
        else:
            log.debug("database still unreachable (%s), retry in %.0f s: %s", where, delay, reason)
        return True

    def succeeded(self) -> None:
        """Record an attempt that reached the database; ends an outage with one INFO line."""
        if self.since is not None:
            seconds = (self.clock.now() - self.since).total_seconds()
            log.info("database reachable again after %.0f s (%d failed attempts)", seconds, self.failures)
        self.failures = 0
        self.since = None
        self.retry_at = None
