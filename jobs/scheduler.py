"""APScheduler wiring: interval ticks of the sweeps. No per-request timers and no pickled
jobs; every tick asks the database what is due, so a restart loses nothing."""

from __future__ import annotations

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
