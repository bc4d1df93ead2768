"""The sweeps: each asks the database what is due now, acts, and records that it ran.

Reminders are outbox rows due in the future (written when a session is scheduled), so the
`deliver` sweep sends them; `expire`, `nudge` and `complete` change state and owe messages;
`digest` owes each feed's daily digest once DIGEST_TIME has passed.
Every sweep is idempotent and safe to run in several replicas at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.runtime import Runtime
from storage import repository as repo

log = logging.getLogger(__name__)

SWEEP_ORDER = ("expire", "nudge", "complete", "withdraw_proposals", "digest", "deliver")


class Sweeps:
    def __init__(self, runtime: Runtime, *, record: bool = True) -> None:
        """`record=False` (a `--now` run at a pretend instant): nothing is written to the job
        runs that /healthz judges freshness by, so a rehearsal cannot make a dead clock look alive."""
        self.runtime = runtime
        self.record = record
        self._sweeps: dict[str, Callable[[], Awaitable[int]]] = {
            "expire": runtime.mentorship.expire_due,
            "nudge": runtime.mentorship.nudge_due,
            "complete": runtime.mentorship.complete_due,
            "withdraw_proposals": runtime.mentorship.withdraw_past_proposals,
            "digest": runtime.mentorship.digest_due,
            "deliver": self._deliver,
        }
        self._running: set[asyncio.Task[object]] = set()
        self._stopping = False

    async def _deliver(self) -> int:
        stats = await self.runtime.delivery.run_once()
        return stats.handled

    async def run(self, name: str) -> int:
        metrics = self.runtime.metrics
        started = time.perf_counter()
        try:
            count = await self._sweeps[name]()
            seconds = time.perf_counter() - started
            duration_ms = int(seconds * 1000)
            if self.record:
                async with self.runtime.db.transaction() as session:
                    await repo.record_job_run(session, name, self.runtime.clock.now(), count, duration_ms)
        except Exception:
            metrics.sweep_runs.labels(sweep=name, outcome="failed").inc()
            raise
        metrics.sweep_runs.labels(sweep=name, outcome="ok").inc()
        metrics.sweep_duration.labels(sweep=name).observe(seconds)
        if count:
            log.info("sweep %s: %d handled in %d ms", name, count, duration_ms)
        else:
            log.debug("sweep %s: nothing due (%d ms)", name, duration_ms)
        return count

    async def run_all_once(self) -> dict[str, int]:
        """Each sweep once, in an order where a sweep's messages go out in the same pass."""
        return {name: await self.run(name) for name in SWEEP_ORDER}

    async def run_safely(self, name: str) -> None:
        """For the scheduler: a failed tick is retried on a later one. A database outage is
        logged once (bot.outage) and backs off by skipping ticks; anything else in full."""
        outage = self.runtime.outage
        if self._stopping or not outage.ready():
            return
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await self.run(name)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Cut short by `stop()`: the tick is simply not done; the next start does it.
        except Exception as exc:
            if not outage.failed(exc, f"sweep {name}"):
                log.exception("sweep %s failed; it will run again on the next tick", name)
        else:
            outage.succeeded()
        finally:
            if task is not None:
                self._running.discard(task)

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let the ticks in flight finish (up to `grace_seconds`), then cut them short quietly;
        so a SIGTERM does not leave a cancelled job for the scheduler to report as an error."""
        self._stopping = True
        await asyncio.sleep(0)  # a tick handed to the loop but not started yet sees the flag
        running = list(self._running)
        if not running:
            return
        _, pending = await asyncio.wait(running, timeout=grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
