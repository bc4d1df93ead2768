"""The sweeps: each asks the database what is due now, acts, and records that it ran.

Reminders are outbox rows due in the future (written when a session is scheduled), so the
`deliver` sweep sends them; `expire`, `nudge` and `complete` change state and owe messages.
Every sweep is idempotent and safe to run in several replicas at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from bot.runtime import Runtime
from storage import repository as repo

log = logging.getLogger(__name__)

SWEEP_ORDER = ("expire", "nudge", "complete", "withdraw_proposals", "deliver")


class Sweeps:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._sweeps: dict[str, Callable[[], Awaitable[int]]] = {
            "expire": runtime.mentorship.expire_due,
            "nudge": runtime.mentorship.nudge_due,
            "complete": runtime.mentorship.complete_due,
            "withdraw_proposals": runtime.mentorship.withdraw_past_proposals,
            "deliver": self._deliver,
        }

    async def _deliver(self) -> int:
        stats = await self.runtime.delivery.run_once()
        return stats.handled

    async def run(self, name: str) -> int:
        started = time.perf_counter()
        count = await self._sweeps[name]()
        duration_ms = int((time.perf_counter() - started) * 1000)
        async with self.runtime.db.transaction() as session:
            await repo.record_job_run(session, name, self.runtime.clock.now(), count, duration_ms)
        if count:
            log.info("sweep %s: %d handled in %d ms", name, count, duration_ms)
        else:
            log.debug("sweep %s: nothing due (%d ms)", name, duration_ms)
        return count

    async def run_all_once(self) -> dict[str, int]:
        """Each sweep once, in an order where a sweep's messages go out in the same pass."""
        return {name: await self.run(name) for name in SWEEP_ORDER}

    async def run_safely(self, name: str) -> None:
        """For the scheduler: a failed tick (database away) is logged and retried next tick."""
        try:
            await self.run(name)
        except Exception:
            log.exception("sweep %s failed; it will run again on the next tick", name)
