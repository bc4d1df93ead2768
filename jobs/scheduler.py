"""APScheduler wiring: interval ticks of the sweeps. No per-request timers and no pickled
jobs; every tick asks the database what is due, so a restart loses nothing."""

from __future__ import annotations

import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from jobs.sweeps import Sweeps

DEFAULT_INTERVALS = {
    "expire": 60.0,
    "nudge": 60.0,
    "complete": 60.0,
    "withdraw_proposals": 60.0,
    "digest": 60.0,
    "deliver": 5.0,
}


class _SkippedTick(logging.Filter):
    """APScheduler warns when a tick comes while the last one still runs. With max_instances=1
    that skip is what we asked for (a deliver pass pacing a burst into one channel outlasts its
    5 s interval), not something to act on: logged at INFO like the runs themselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and "maximum number of running instances" in record.getMessage():
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return True


logging.getLogger("apscheduler.scheduler").addFilter(_SkippedTick())


def build_scheduler(sweeps: Sweeps, intervals: dict[str, float] | None = None) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    merged = {**DEFAULT_INTERVALS, **(intervals or {})}
    # /healthz judges this process's sweeps by these intervals, and "never run" now counts.
    sweeps.runtime.sweep_intervals = dict(merged)
    sweeps.runtime.runs_sweeps = True
    for name, seconds in merged.items():
        scheduler.add_job(
            sweeps.run_safely,
            "interval",
            args=[name],
            seconds=seconds,
            id=f"sweep:{name}",
            name=f"sweep {name}",  # what APScheduler's log lines call the job
            max_instances=1,  # a slow tick is never overlapped by the next one
            coalesce=True,  # after a pause, run once, not once per missed tick
            misfire_grace_time=None,
        )
    return scheduler
