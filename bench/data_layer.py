"""Data layer: the CPU one small transaction costs through each layer the hot path could use.

One transaction = BEGIN, a select by primary key, two guarded `UPDATE … RETURNING`, COMMIT
(the shape of a click's work), on a scratch PostgreSQL database, on uvloop as the app runs, at 1
and 10 transactions at once. Four ways to run it:

  orm      the app's way: `Database.transaction()` (an ORM AsyncSession), prebuilt Core statements
  core     SQLAlchemy Core: `AsyncEngine.begin()`, the same statements
  driver   psycopg's own AsyncConnection (the pooled one under SQLAlchemy), SQL text
  driver-in-session  the driver's cursor inside the app's session transaction

It prints CPU per transaction (user + system of this process; PostgreSQL's own CPU is not
counted, as in bench/interaction_latency.py). What it answers: how much of a click's database
cost is SQLAlchemy's and how much the round trips themselves.

    .venv/bin/python bench/data_layer.py
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvloop
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select, update

from bench.common import postgres_scratch_url
from storage.db import Database

ROWS = 100
TRANSACTIONS = 1000  # per measurement
ROUNDS = 2  # every way measured twice, interleaved, to show the spread

metadata = MetaData()
table = Table(
    "bench_rows", metadata, Column("id", Integer, primary_key=True), Column("v", Integer), Column("s", String)
)
SELECT = select(table.c.id, table.c.v, table.c.s).where(table.c.id == bindparam("i"))
UPDATE = update(table).where(table.c.id == bindparam("i")).values(v=table.c.v + 1).returning(table.c.v)
SELECT_SQL = "SELECT id, v, s FROM bench_rows WHERE id = %s"
UPDATE_SQL = "UPDATE bench_rows SET v = v + 1 WHERE id = %s RETURNING v"


def ways(db: Database) -> dict[str, Callable[[int], Awaitable[None]]]:
    async def orm(i: int) -> None:
        async with db.transaction() as session:
            (await session.execute(SELECT, {"i": i})).one()
            (await session.execute(UPDATE, {"i": i})).scalar_one()
            (await session.execute(UPDATE, {"i": i})).scalar_one()

    async def core(i: int) -> None:
        async with db.engine.begin() as conn:
            (await conn.execute(SELECT, {"i": i})).one()
            (await conn.execute(UPDATE, {"i": i})).scalar_one()
            (await conn.execute(UPDATE, {"i": i})).scalar_one()

    async def driver(i: int) -> None:
        async with db.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            async with raw.transaction():
                await (await raw.execute(SELECT_SQL, (i,))).fetchone()
                await (await raw.execute(UPDATE_SQL, (i,))).fetchone()
                await (await raw.execute(UPDATE_SQL, (i,))).fetchone()

    async def driver_in_session(i: int) -> None:
        async with db.transaction() as session:
            conn = await session.connection()
            cursor = (await conn.get_raw_connection()).driver_connection.cursor()
            for sql in (SELECT_SQL, UPDATE_SQL, UPDATE_SQL):
                await cursor.execute(sql, (i,))
                await cursor.fetchone()

    return {"orm": orm, "core": core, "driver": driver, "driver-in-session": driver_in_session}


def cpu() -> float:
    times = os.times()
    return times.user + times.system


async def measure(run: Callable[[int], Awaitable[None]], concurrency: int) -> float:
    """CPU milliseconds per transaction, after one unmeasured warm-up of the same size."""

    async def worker(k: int) -> None:
        for j in range(TRANSACTIONS // concurrency):
            await run((k * 7 + j) % ROWS + 1)

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    before = cpu()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return (cpu() - before) / TRANSACTIONS * 1000


async def main() -> None:
    db = Database(postgres_scratch_url("mm_bench_data_layer"))
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(table.insert(), [{"id": i, "v": 0, "s": "x" * 20} for i in range(1, ROWS + 1)])
        figures: dict[tuple[str, int], list[float]] = {}
        for _ in range(ROUNDS):
            for name, run in ways(db).items():
                for concurrency in (1, 10):
                    figures.setdefault((name, concurrency), []).append(await measure(run, concurrency))
        print(f"CPU per transaction (BEGIN, 1 select, 2 updates, COMMIT); {os.cpu_count()} CPUs, uvloop")
        for (name, concurrency), values in figures.items():
            shown = " / ".join(f"{v:.2f}" for v in values)
            print(f"  {name:18} c={concurrency:<3} {shown} ms")
    finally:
        await db.dispose()


if __name__ == "__main__":
    uvloop.run(main())
