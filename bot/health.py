"""GET /healthz: is the database reachable, and has every sweep succeeded recently?

The rule (docs/operations.md repeats it for operators):
- the database answers `SELECT 1` within DB_TIMEOUT seconds, else unhealthy;
- a sweep whose last success is older than STALE_INTERVALS of its intervals is unhealthy, in
  every process: the sweeps record their runs in the database, so any process can tell (a
  process that runs the sweeps itself counts an old record only once it has been up for
  STALE_INTERVALS intervals, as for a sweep that never ran);
- a sweep that has never run is reported as "never run", and counts as unhealthy only in a
  process that runs the sweeps itself, once it has been up for STALE_INTERVALS intervals (a
  web-only process started before the first `jobs` process is not failing).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from storage import repository as repo

if TYPE_CHECKING:
    from bot.runtime import Runtime

DB_TIMEOUT = 2.0
STALE_INTERVALS = 3


async def _ping(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        await session.execute(text("SELECT 1"))


async def check(runtime: Runtime) -> dict[str, Any]:
    now = runtime.clock.now()
    problems: list[str] = []
    try:
        await asyncio.wait_for(_ping(runtime), DB_TIMEOUT)
        runs = {run.name: run for run in await asyncio.wait_for(_runs(runtime), DB_TIMEOUT)}
        database: dict[str, Any] = {"ok": True}
    except Exception as exc:
        runs = {}
        reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        database = {"ok": False, "error": f"database unreachable ({reason})"}
        problems.append(database["error"])
    sweeps: dict[str, Any] = {}
    for name, seconds in runtime.sweep_intervals.items():
        interval = timedelta(seconds=seconds)
        run = runs.get(name)
        entry: dict[str, Any] = {"interval_seconds": seconds}
        if not database["ok"]:
            entry.update(ok=False, status="unknown (database unreachable)")
        elif run is None:
            late = runtime.runs_sweeps and now - runtime.started_at > STALE_INTERVALS * interval
            entry.update(ok=not late, status="never run")
            if late:
                problems.append(f"sweep {name} has never run")
        else:
            last = _aware(run.last_success_at)
            # A process that runs the sweeps itself is judged from its start at the earliest:
            # restarted after a while, its first tick is still an interval away.
            since = max(last, runtime.started_at) if runtime.runs_sweeps else last
            stale = now - since > STALE_INTERVALS * interval
            entry.update(
                ok=not stale,
                status="stale" if stale else "ok",
                last_success_at=last.isoformat(),
                last_count=run.last_count,
                last_duration_ms=run.last_duration_ms,
            )
            if stale:
                ago = int((now - last).total_seconds())
                problems.append(f"sweep {name} has not succeeded for {ago} s (interval {seconds:g} s)")
        sweeps[name] = entry
    return {"ok": not problems, "problems": problems, "database": database, "sweeps": sweeps}


async def _runs(runtime: Runtime) -> list[Any]:
    async with runtime.db.transaction() as session:
        return list(await repo.job_runs(session))


def _aware(instant: datetime) -> datetime:
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant
