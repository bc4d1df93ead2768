"""The core, wired: one database, one clock, the use cases and the outbox worker.

Platform adapters and the CLI build on a Runtime; tests build one per database with a
ManualClock. Nothing here knows Slack or Discord.
"""

from __future__ import annotations

from typing import Any

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.metrics import Metrics
from bot.outage import OutageTracker
from bot.stats import Stats
from bot.workflow import Mentorship
from jobs.delivery import Delivery
from storage import migrate
from storage.db import Database


class Runtime:
    def __init__(self, settings: Settings, *, clock: Clock | None = None, db: Database | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.db = db or Database(settings.database_url)
        self.started_at = self.clock.now()
        self.metrics = Metrics()
        self.outage = OutageTracker(self.clock)
        from jobs.scheduler import DEFAULT_INTERVALS  # here: jobs.scheduler imports this module

        # What /healthz checks; build_scheduler sets both when this process runs the sweeps.
        self.sweep_intervals: dict[str, float] = dict(DEFAULT_INTERVALS)
        self.runs_sweeps = False
        self.mentorship = Mentorship(self.db, settings, self.clock)
        self.stats = Stats(self.db, settings, self.clock, self.mentorship.directories)
        self.delivery = Delivery(self.db, self.clock, metrics=self.metrics, outage=self.outage)
        self.mentorship.on_owed(self.delivery.wake)
        self.mentorship.target_missed = self._target_missed

    def _target_missed(self, urgency: str) -> None:
        self.metrics.claim_target_missed.labels(urgency=urgency).inc()

    async def prepare(self) -> None:
        """SQLite is migrated on start (it is the zero-setup default); PostgreSQL deployments
        run `mini-mentorship migrate` as a release step instead."""
        if self.db.is_sqlite:
            await migrate.upgrade(self.db)

    async def health(self) -> dict[str, Any]:
        """The /healthz report (bot.health has the rule); "ok" is False when it should be 503."""
        from bot.health import check

        return await check(self)

    async def close(self) -> None:
        await self.db.dispose()
