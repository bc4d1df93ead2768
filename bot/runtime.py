"""The core, wired: one database, one clock, the use cases and the outbox worker.

Platform adapters and the CLI build on a Runtime; tests build one per database with a
ManualClock. Nothing here knows Slack or Discord.
"""

from __future__ import annotations

from typing import Any

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.stats import Stats
from bot.workflow import Mentorship
from jobs.delivery import Delivery
from storage import migrate
from storage import repository as repo
from storage.db import Database


class Runtime:
    def __init__(self, settings: Settings, *, clock: Clock | None = None, db: Database | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.db = db or Database(settings.database_url)
        self.mentorship = Mentorship(self.db, settings, self.clock)
        self.stats = Stats(self.db, settings, self.clock)
        self.delivery = Delivery(self.db, self.clock)
        self.mentorship.on_owed(self.delivery.wake)

    async def prepare(self) -> None:
        """SQLite is migrated on start (it is the zero-setup default); PostgreSQL deployments
        run `mini-mentorship migrate` as a release step instead."""
        if self.db.is_sqlite:
            await migrate.upgrade(self.db)

    async def health(self) -> dict[str, Any]:
        async with self.db.transaction() as session:
            runs = await repo.job_runs(session)
        return {
            "ok": True,
            "sweeps": {
                run.name: {
                    "last_success_at": run.last_success_at.isoformat(),
                    "last_count": run.last_count,
                    "last_duration_ms": run.last_duration_ms,
                }
                for run in runs
            },
        }

    async def close(self) -> None:
        await self.db.dispose()
