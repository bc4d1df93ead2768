"""Sweep scaling: a sweep's cost must grow with the due work, not with the table.

Seeds N requests (with sessions and sent notifications) of which 100 of each kind are due, then
times each sweep over them, for N = 10,000 and N = 1,000,000, and prints the ratio (bar: ≤ 2×).
On PostgreSQL it also prints the query plans of the due-work queries.

    .venv/bin/python bench/sweep_scaling.py                 # PostgreSQL at TEST_POSTGRES_URL
    .venv/bin/python bench/sweep_scaling.py --engine sqlite
    .venv/bin/python bench/sweep_scaling.py --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text

from bench.common import CountingSender, postgres_scratch_url
from bot.clock import ManualClock
from bot.config import Settings
from bot.runtime import Runtime
from storage import migrate
from storage.db import Database

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
DUE = 100
REPEATS = 5


def _seed_sql(n: int, postgres: bool) -> list[str]:
    """Bulk-insert with the engine's own row generator: seconds, not minutes, for a million."""
    series = (
        f"SELECT g AS i FROM generate_series(1, {n}) AS g"
        if postgres
        else f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s"
    )
    ts = "TIMESTAMPTZ " if postgres else ""
    old, now = f"{ts}'2030-01-01 00:00:00+00:00'", f"{ts}'2030-06-01 11:00:00+00:00'"
    future = f"{ts}'2030-07-01 00:00:00+00:00'"
    if not postgres:
        old, now, future = (
            "'2030-01-01 00:00:00.000000'",
            "'2030-06-01 11:00:00.000000'",
            "'2030-07-01 00:00:00.000000'",
        )
    json_tags = "'[]'::json" if postgres else "'[]'"
    json_payload = "'{}'::json" if postgres else "'{}'"
    due = DUE
    return [
        "INSERT INTO members (id, platform, workspace, external_id, display_name, timezone, created_at) "
        f"VALUES (1, 'slack', 'T1', 'U_STUDENT', 'Student', 'UTC', {old}), "
        f"(2, 'slack', 'T1', 'U_MENTOR', 'Mentor', 'UTC', {old})",
        # Requests: the first `due` open and expired-by-now, the next `due` open and nudge-due,
        # the next `due` scheduled (their sessions ended), the rest long finished.
        "INSERT INTO requests (id, platform, workspace, student_id, title, session_type, description, "
        "duration_minutes, available_from, available_until, urgency, tags, status, version, created_at, "
        "expires_at, nudge_due_at, claimed_by_id, claimed_at, cancelled_at, expired_at, completed_at) "
        f"SELECT i, 'slack', 'T1', 1, 'Request ' || i, 'code_review', 'A description of the request', 30, "
        f"'2030-01-01', '2030-01-05', 'normal', {json_tags}, "
        f"CASE WHEN i <= {2 * due} THEN 'open' WHEN i <= {3 * due} THEN 'scheduled' ELSE 'completed' END, 1, "
        f"{old}, CASE WHEN i <= {due} THEN {now} ELSE {future} END, "
        f"CASE WHEN i > {due} AND i <= {2 * due} THEN {now} ELSE NULL END, "
        f"CASE WHEN i > {2 * due} THEN 2 ELSE NULL END, NULL, NULL, NULL, NULL FROM ({series}) AS s",
        "INSERT INTO sessions (id, request_id, mentor_id, student_id, starts_at, ends_at, meeting_url, note, "
        "status, schedule_version, rating, review, rated_at, created_at, updated_at, completed_at) "
        f"SELECT i, i, 2, 1, {old}, {old}, 'https://meet.example/x', '', "
        f"CASE WHEN i <= {3 * due} THEN 'scheduled' ELSE 'completed' END, 1, NULL, NULL, NULL, {old}, {old}, NULL "
        f"FROM ({series}) AS s WHERE i > {2 * due}",
        "INSERT INTO notifications (id, platform, workspace, audience, member_id, request_id, session_id, kind, "
        "payload, dedupe_key, status, due_at, next_attempt_at, attempts, lease_until, claim_token, sent_at, "
        "failed_reason, last_error, created_at) "
        f"SELECT i, 'slack', 'T1', 'dm', 1, i, NULL, 'request_posted', {json_payload}, 'seed:' || i, "
        f"CASE WHEN i <= {due} THEN 'pending' ELSE 'sent' END, {old}, {old}, 0, NULL, NULL, NULL, NULL, NULL, "
        f"{old} FROM ({series}) AS s",
    ]


async def _prepare(db: Database, n: int) -> None:
    if db.is_postgres:
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    await migrate.upgrade(db)
    started = time.perf_counter()
    async with db.engine.begin() as conn:
        for statement in _seed_sql(n, db.is_postgres):
            await conn.execute(text(statement))
        if db.is_postgres:
            for table in ("members", "requests", "sessions", "notifications"):
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT MAX(id) FROM {table}))"
                    )
                )
    async with db.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
    print(f"  seeded {n:,} requests in {time.perf_counter() - started:.1f} s")


async def _time_sweeps(db: Database) -> dict[str, float]:
    """Run each sweep REPEATS times from the same state (rolled forward each time); median ms."""
    timings: dict[str, list[float]] = {"expire": [], "nudge": [], "complete": [], "deliver": []}
    for repeat in range(REPEATS):
        clock = ManualClock(NOW + timedelta(seconds=repeat))
        settings = Settings(_env_file=None, database_url=db.url)  # type: ignore[call-arg]
        runtime = Runtime(settings, clock=clock, db=db)
        runtime.delivery.add_sender(CountingSender("slack"))
        for name, sweep in (
            ("expire", runtime.mentorship.expire_due),
            ("nudge", runtime.mentorship.nudge_due),
            ("complete", runtime.mentorship.complete_due),
        ):
            started = time.perf_counter()
            count = await sweep()
            timings[name].append((time.perf_counter() - started) * 1000)
            if repeat == 0:
                assert count == DUE, (name, count)
        started = time.perf_counter()
        stats = await runtime.delivery.run_once()
        timings["deliver"].append((time.perf_counter() - started) * 1000)
        if repeat == 0:
            # 100 seeded + what the three sweeps just owed (cards, DMs, nudges).
            assert stats.sent >= DUE, stats
        await _reset_due(db)
    return {name: statistics.median(values) for name, values in timings.items()}


async def _reset_due(db: Database) -> None:
    """Put the due rows back, so every repeat sweeps the same amount of work."""
    due = DUE
    async with db.engine.begin() as conn:
        await conn.execute(text(f"UPDATE requests SET status = 'open', expired_at = NULL WHERE id <= {due}"))
        await conn.execute(
            text(
                f"UPDATE requests SET status = 'open', nudge_due_at = created_at, escalation_step = 0 "
                f"WHERE id > {due} AND id <= {2 * due}"
            )
        )
        await conn.execute(
            text(
                f"UPDATE requests SET status = 'scheduled', completed_at = NULL "
                f"WHERE id > {2 * due} AND id <= {3 * due}"
            )
        )
        await conn.execute(
            text(
                f"UPDATE sessions SET status = 'scheduled' WHERE request_id > {2 * due} "
                f"AND request_id <= {3 * due}"
            )
        )
        await conn.execute(text("DELETE FROM notifications WHERE dedupe_key NOT LIKE 'seed:%'"))
        await conn.execute(text("DELETE FROM feed_posts"))
        await conn.execute(
            text(
                f"UPDATE notifications SET status = 'pending', claim_token = NULL, "
                f"lease_until = NULL WHERE id <= {due}"
            )
        )


async def _explain(db: Database) -> None:
    queries = {
        "expire (requests due)": "SELECT id FROM requests WHERE status = 'open' AND expires_at <= now() "
        "ORDER BY expires_at LIMIT 200 FOR UPDATE SKIP LOCKED",
        "nudge (requests due)": "SELECT id FROM requests WHERE status = 'open' AND nudge_due_at <= now() "
        "ORDER BY nudge_due_at LIMIT 200 FOR UPDATE SKIP LOCKED",
        "complete (sessions ended)": "SELECT id FROM sessions WHERE status = 'scheduled' AND ends_at <= now() "
        "ORDER BY ends_at LIMIT 200 FOR UPDATE SKIP LOCKED",
        "deliver (outbox due)": "SELECT id FROM notifications WHERE platform IN ('slack') AND "
        "((status = 'pending' AND next_attempt_at <= now()) OR (status = 'sending' AND lease_until <= now())) "
        "ORDER BY next_attempt_at LIMIT 100 FOR UPDATE SKIP LOCKED",
    }
    async with db.engine.connect() as conn:
        for name, query in queries.items():
            plan = (await conn.execute(text("EXPLAIN " + query))).scalars().all()
            print(f"\n  EXPLAIN {name}:")
            for line in plan:
                print(f"    {line}")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--sizes", default="10000,1000000", help="comma-separated table sizes")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        url = (
            postgres_scratch_url() if args.engine == "postgres" else f"sqlite+aiosqlite:///{folder}/bench.db"
        )
        for n in sizes:
            if args.engine == "sqlite":
                Path(f"{folder}/bench.db").unlink(missing_ok=True)
            db = Database(url)
            print(f"{args.engine}: {n:,} requests, {DUE} due of each kind")
            await _prepare(db, n)
            results[n] = await _time_sweeps(db)
            for name, ms in results[n].items():
                print(f"  {name:<9} {ms:8.1f} ms (median of {REPEATS})")
            if db.is_postgres and n == sizes[-1]:
                await _explain(db)
            await db.dispose()
    small, large = results[sizes[0]], results[sizes[-1]]
    print(f"\nratio {sizes[-1]:,} / {sizes[0]:,} (bar: ≤ 2.0×)")
    for name in small:
        ratio = large[name] / small[name]
        print(f"  {name:<9} {ratio:5.2f}×  {'ok' if ratio <= 2.0 else 'MISSES THE BAR'}")


if __name__ == "__main__":
    asyncio.run(main())
