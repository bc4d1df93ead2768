"""Engines and sessions for SQLite (the embedded default) and PostgreSQL (psycopg 3).

PostgreSQL: a pool sized for one process's concurrency (the Slack app runs at most 20
interactions at once, plus the outbox and the sweeps), so a burst reuses its connections instead
of opening and closing overflow ones (a backend fork each). A connection is pinged before use only
when it has been idle a while (see `_configure_postgres`), not on every checkout.

On PostgreSQL the sessions are `AppSession`s: the statements of the hot paths marked with
`storage.driver.on_driver` are sent on psycopg itself, inside the same transaction (see
storage/driver.py); every other statement goes through SQLAlchemy as usual.

SQLite: WAL so readers never block the writer, foreign keys on, a busy timeout, and every
transaction opened with BEGIN IMMEDIATE. Taking the write lock up front means two writers queue
on the busy timeout instead of one failing with "database is locked" when it upgrades a read.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage import driver

SQLITE_BUSY_TIMEOUT_MS = 15_000
POOL_SIZE = 30
MAX_OVERFLOW = 10
IDLE_PING_AFTER = 10.0  # seconds a pooled connection may rest before it is pinged on checkout


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.is_postgres = url.startswith("postgresql")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            _ensure_sqlite_folder(url)
        else:
            # LIFO: the connections in steady use are the most recently returned ones, so a quiet
            # spell leaves a few connections warm (their prepared statements reused) and the rest
            # resting, instead of every transaction taking the coldest of thirty.
            kwargs.update(pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, pool_timeout=10, pool_use_lifo=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        else:
            _configure_postgres(self.engine)
        session_class = AppSession if self.is_postgres else AsyncSession
        self._sessions = async_sessionmaker(self.engine, class_=session_class, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any exception."""
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()


class AppSession(AsyncSession):
    """A PostgreSQL session whose `execute` sends statements marked `driver.on_driver` on the
    driver (storage/driver.py); `scalar` and `scalars` follow, since they call `execute`."""

    _DRIVER = "driver_connection"  # info key: (transaction, its AsyncConnection, pooled connection)

    async def execute(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        if not kw and driver.wanted(statement, params):
            transaction = self.sync_session.get_transaction()
            held = self.info.get(self._DRIVER)
            if held is None or held[0] is not transaction or held[1].invalidated:
                conn = await self.connection()
                held = (transaction, conn, await conn.get_raw_connection())
                self.info[self._DRIVER] = held
            result = await driver.execute(held[1], held[2], statement, params)
            if result is not None:
                return result
        return await super().execute(statement, params, **kw)

    async def scalar(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        if not kw and driver.wanted(statement, params):
            return (await self.execute(statement, params)).scalar()
        return await super().scalar(statement, params, **kw)

    async def scalars(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        if not kw and driver.wanted(statement, params):
            return (await self.execute(statement, params)).scalars()
        return await super().scalars(statement, params, **kw)


def _ensure_sqlite_folder(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _configure_postgres(engine: AsyncEngine) -> None:
    """Ping a connection on checkout only if it rested IDLE_PING_AFTER or longer: after a quiet
    spell (a server restart, a proxy's idle cut) the ping finds it dead and the pool quietly
    reconnects. A connection in steady use is not pinged: if the server went away since, the
    statement fails as an outage, SQLAlchemy invalidates every older pooled connection, and the
    caller's retry path (the outbox's backoff, the sweeps', the person told to try again) applies."""
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_AFTER:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool drops this connection and checks out (or opens) another.
            raise sa_exc.DisconnectionError(str(exc)) from exc


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
