"""Matching cost: posting a request with 10 mentor profiles against 10,000 (bar: at most 2×).

Profiles are inserted in bulk (skills drawn from 200 tags), then requests are posted through the
real use case (`Mentorship.create_request`, which ranks mentors and owes the card and the DMs),
and the median time per post is printed for each size. Delivery is not run: this measures the
core and the database, not a platform.

    .venv/bin/python bench/matching.py                    # SQLite file
    .venv/bin/python bench/matching.py --engine postgres  # PostgreSQL at TEST_POSTGRES_URL
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text

from bench.common import postgres_scratch_url
from bot.clock import ManualClock
from bot.config import Settings
from bot.domain import Actor, Ok
from bot.runtime import Runtime
from storage import migrate
from storage.mentor_profiles import NEVER
from storage.models import Member, MentorProfile, MentorSkill

TAGS = [f"tag{i}" for i in range(200)]
NOW = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


async def seed(runtime: Runtime, profiles: int) -> None:
    rnd = random.Random(profiles)
    async with runtime.db.transaction() as session:
        await session.execute(
            insert(Member),
            [
                {
                    "platform": "slack",
                    "workspace": "T1",
                    "external_id": f"UM{i}",
                    "display_name": f"M{i}",
                    "timezone": "UTC",
                    "created_at": NOW,
                }
                for i in range(profiles)
            ],
        )
    async with runtime.db.transaction() as session:
        await session.execute(
            insert(MentorProfile),
            [
                {
                    "member_id": i + 1,
                    "platform": "slack",
                    "workspace": "T1",
                    "skills": [],
                    "capacity": 3,
                    "away_until": None,
                    "last_suggested_at": NEVER,
                    "updated_at": NOW,
                }
                for i in range(profiles)
            ],
        )
        skills = []
        for i in range(profiles):
            for tag in rnd.sample(TAGS, 3):
                skills.append({"member_id": i + 1, "tag": tag, "platform": "slack", "workspace": "T1"})
        await session.execute(insert(MentorSkill), skills)


async def measure(url: str, profiles: int, posts: int) -> float:
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    runtime = Runtime(settings, clock=ManualClock(NOW))
    await migrate.upgrade(runtime.db)
    await seed(runtime, profiles)
    if runtime.db.engine.dialect.name == "postgresql":
        # A live database has planner statistics (autovacuum analyzes it); a bulk seed does not yet.
        async with runtime.db.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    form = {
        "title": "Mock interview for a backend role",
        "session_type": "interview_prep",
        "description": "I have an interview on Friday and want to practise system design questions.",
        "duration": "30",
        "available_from": "2030-01-08",
        "available_until": "2030-01-12",
        "urgency": "normal",
    }
    rnd = random.Random(7)
    timings = []
    for n in range(posts + 5):
        values = {**form, "tags": ", ".join(rnd.sample(TAGS, 2))}
        started = time.perf_counter()
        student = Actor("slack", "T1", f"U_S{n}", f"Student {n}", "UTC")
        result = await runtime.mentorship.create_request(student, values)
        elapsed = time.perf_counter() - started
        assert isinstance(result, Ok), result
        if n >= 5:  # warm-up posts are not counted
            timings.append(elapsed)
    await runtime.close()
    return statistics.median(timings)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--posts", type=int, default=50)
    args = parser.parse_args()
    results = {}
    for profiles in (10, 10_000):
        if args.engine == "postgres":
            url = postgres_scratch_url(f"mm_bench_matching_{profiles}")
        else:
            url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
        results[profiles] = await measure(url, profiles, args.posts)
        print(f"{args.engine}: {profiles:>6} profiles: median post {results[profiles] * 1000:.1f} ms")
    ratio = results[10_000] / results[10]
    print(f"{args.engine}: 10,000 / 10 = {ratio:.2f}× (bar: ≤ 2×) {'OK' if ratio <= 2 else 'OVER'}")


if __name__ == "__main__":
    asyncio.run(main())
