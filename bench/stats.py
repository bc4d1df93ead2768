"""Stats and charts over 100,000 requests: the bar is under 2 s.

Seeds N requests (default 100,000) spread over a year in one workspace, with claims, sessions,
ratings, no-shows and tags, then times, for an admin: the figures alone (SQL aggregation), the
charts cold (figures + drawing the four PNGs), the charts again (from the cache: the change stamp
only), the stats report with its CSV of every request, and the whole `/mini-session stats`
answer (report and charts together, as the platforms ask for it, charts not cached).

    .venv/bin/python bench/stats.py                   # SQLite (a temporary file)
    .venv/bin/python bench/stats.py --engine postgres # PostgreSQL at TEST_POSTGRES_URL
    .venv/bin/python bench/stats.py --requests 10000
    .venv/bin/python bench/stats.py --engine postgres --reuse   # keep an earlier run's data
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from bench.common import PG_URL, postgres_scratch_url
from bot.clock import ManualClock
from bot.config import Settings
from bot.domain import Actor, Ok
from bot.runtime import Runtime
from storage import migrate
from storage.db import Database
from storage.models import Member, MentorSession, Request

START = datetime(2030, 1, 1, tzinfo=UTC)
TAGS = [
    "python",
    "career",
    "sql",
    "react",
    "interviews",
    "go",
    "rust",
    "design",
    "devops",
    "ml",
    "java",
    "css",
]
ADMIN = Actor("slack", "T1", "U_ADMIN", "Ada", "UTC", is_admin=True)
MENTORS = 20
CHUNK = 10_000


def _rows(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    step = timedelta(days=360) / n
    requests, sessions = [], []
    for i in range(1, n + 1):
        created = START + step * i
        kind = i % 10  # 0-5 completed, 6 no-show, 7 claimed, 8 open, 9 expired
        claimed = created + timedelta(minutes=7 * (i % 400)) if kind <= 7 else None
        mentor = 2 + i % MENTORS if claimed else None
        status = {6: "completed", 7: "claimed", 8: "open", 9: "expired"}.get(kind, "completed")
        requests.append(
            {
                "id": i,
                "platform": "slack",
                "workspace": "T1",
                "student_id": 1,
                "title": f"Request {i}",
                "session_type": "code_review",
                "description": "A description",
                "duration_minutes": 30,
                "available_from": created.date(),
                "available_until": created.date() + timedelta(days=4),
                "urgency": ("low", "normal", "normal", "high")[i % 4],
                "tags": [TAGS[i % len(TAGS)], TAGS[(i * 7) % len(TAGS)]],
                "status": status,
                "version": 1 + (kind <= 7) + (kind <= 6),
                "created_at": created,
                "expires_at": created + timedelta(days=7),
                "claimed_by_id": mentor,
                "claimed_at": claimed,
                "completed_at": claimed + timedelta(days=2) if kind <= 5 and claimed else None,
                "expired_at": created + timedelta(days=7) if kind == 9 else None,
            }
        )
        if kind <= 6 and claimed and mentor:
            starts = claimed + timedelta(days=1)
            sessions.append(
                {
                    "id": i,
                    "request_id": i,
                    "mentor_id": mentor,
                    "student_id": 1,
                    "starts_at": starts,
                    "ends_at": starts + timedelta(minutes=30),
                    "meeting_url": "https://meet.example/x",
                    "note": "",
                    "status": "no_show" if kind == 6 else "completed",
                    "schedule_version": 1,
                    "rating": None if kind == 6 or i % 3 == 0 else 1 + i % 5,
                    "created_at": starts,
                    "updated_at": starts,
                }
            )
    return requests, sessions


async def seed(db: Database, n: int) -> None:
    members = [
        {
            "id": 1,
            "platform": "slack",
            "workspace": "T1",
            "external_id": "U_STUDENT",
            "display_name": "Sam",
            "timezone": "UTC",
            "created_at": START,
        }
    ]
    members += [
        {
            "id": 2 + m,
            "platform": "slack",
            "workspace": "T1",
            "external_id": f"U_M{m}",
            "display_name": f"Mentor {m}",
            "timezone": "UTC",
            "created_at": START,
        }
        for m in range(MENTORS)
    ]
    requests, sessions = _rows(n)
    async with db.transaction() as session:
        await session.execute(insert(Member), members)
        for table, rows in ((Request, requests), (MentorSession, sessions)):
            for at in range(0, len(rows), CHUNK):
                await session.execute(insert(table), rows[at : at + CHUNK])
    if db.is_postgres:
        async with db.connect() as conn:
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()


def reused_url(name: str) -> str:
    """The scratch database of an earlier run, as it is (created empty if missing)."""
    try:
        admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise SystemExit(f"PostgreSQL not reachable at {PG_URL}: {exc}") from None
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


async def timed(label: str, work: Any) -> Any:
    began = time.perf_counter()
    result = await work
    print(f"  {label:<44} {(time.perf_counter() - began) * 1000:8.0f} ms")
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="PostgreSQL: keep the data an earlier run seeded (seeding is slow)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of the whole reply (a shared machine is noisy)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = (
            (reused_url("mm_bench_stats") if args.reuse else postgres_scratch_url("mm_bench_stats"))
            if args.engine == "postgres"
            else f"sqlite+aiosqlite:///{folder}/stats.db"
        )
        settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
        db = Database(url)
        await migrate.upgrade(db)
        async with db.transaction() as session:
            present = await session.scalar(select(func.count()).select_from(Request))
        if args.reuse and present == args.requests:
            print(f"{args.engine}: reusing the {present:,} requests seeded by an earlier run")
        else:
            began = time.perf_counter()
            await seed(db, args.requests)
            print(f"{args.engine}: seeded {args.requests:,} requests in {time.perf_counter() - began:.1f} s")
        clock = ManualClock(START + timedelta(days=362))
        runtime = Runtime(settings, clock=clock, db=db)
        for weeks in (12, 52):
            print(f"range {weeks} weeks:")
            figures = await timed("figures (SQL aggregation)", runtime.stats.figures(ADMIN, weeks))
            assert isinstance(figures, Ok)
            print(f"    {figures.value.posted:,} requests in range, {len(figures.value.weekly)} weeks")
            charts = await timed("charts, cold (figures + 4 PNGs drawn)", runtime.stats.charts(ADMIN, weeks))
            assert isinstance(charts, Ok) and len(charts.value.charts) == 4
            await timed("charts, cached (change stamp only)", runtime.stats.charts(ADMIN, weeks))
        report = await timed("report with the CSV of every request", runtime.stats.report(ADMIN))
        assert isinstance(report, Ok)
        print(f"    CSV {len(report.value.csv) / 1e6:.1f} MB, {report.value.total:,} requests")
        # What an admin waits for: summary, both CSVs and the charts, nothing cached (a fresh
        # process each time would also pay matplotlib's import, measured above).
        for weeks in (12, 52):
            for attempt in range(1, args.repeat + 1):
                runtime.stats.forget_charts()
                reply = await timed(
                    f"whole reply, {weeks} weeks, cold (run {attempt})", runtime.stats.reply(ADMIN, weeks)
                )
                assert isinstance(reply, Ok) and len(reply.value[1].charts) == 4
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main())
