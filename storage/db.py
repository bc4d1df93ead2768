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

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, overload

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
from sqlalchemy.util import await_only

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
            if isinstance(session, AppSession):
                await session.commit_later()

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()


A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")


@overload
async def together(session: AsyncSession, a: Awaitable[A], b: Awaitable[B], /) -> tuple[A, B]: ...
@overload
async def together(
    session: AsyncSession, a: Awaitable[A], b: Awaitable[B], c: Awaitable[C], /
) -> tuple[A, B, C]: ...
@overload
async def together(
    session: AsyncSession, a: Awaitable[A], b: Awaitable[B], c: Awaitable[C], d: Awaitable[D], /
) -> tuple[A, B, C, D]: ...
async def together(session: AsyncSession, *calls: Awaitable[Any]) -> tuple[Any, ...]:
    """Await several repository calls of one transaction, their statements sent together where
    the engine allows: on PostgreSQL the statements they issue at the same point go in one
    round trip (`AppSession`), on SQLite the calls simply run one after the other. The first
    statements are sent in the order of `calls`; use it for calls that do not depend on each
    other's results. Raises the first call's error, after every call has finished."""
    if not isinstance(session, AppSession):
        return tuple([await call for call in calls])
    return tuple(await session.together(calls))


async def send_later(session: AsyncSession, statement: Any, params: Any) -> None:
    """Run a statement whose result nobody needs: on PostgreSQL it goes with the transaction's
    next statement or its COMMIT (no round trip of its own); elsewhere it runs now. Its error,
    if any, is raised there, and the transaction fails as it would have."""
    if isinstance(session, AppSession) and session.send_later(statement, params):
        return
    await session.execute(statement, params)


class AppSession(AsyncSession):
    """A PostgreSQL session whose `execute` sends statements marked `driver.on_driver` on the
    driver (storage/driver.py); `scalar` and `scalars` follow, since they call `execute`.

    Inside `together`, marked statements are queued instead, and sent in one pipeline once
    every call has issued its next statement (the way a data loader batches on one tick of the
    loop); any other statement first waits for what is queued, and they all take turns on the
    one connection. A statement sent later (`send_later`) goes with the next one, or with the
    COMMIT of `Database.transaction`."""

    _DRIVER = "driver_connection"  # info key: (transaction, its AsyncConnection, pooled connection)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued: list[tuple[Any, Any, asyncio.Future[Any]]] | None = None
        self._flush: asyncio.Task[None] | None = None
        self._turn = asyncio.Lock()
        self._later: list[tuple[Any, Any]] = []  # see send_later

    async def together(self, calls: Sequence[Awaitable[Any]]) -> list[Any]:
        if self._queued is not None:  # already batching: the calls join the same batches
            return list(await asyncio.gather(*calls))
        self._queued = []
        try:
            results = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            self._queued = None
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return list(results)

    async def _held(self) -> tuple[Any, AsyncConnection, Any]:
        transaction = self.sync_session.get_transaction()
        held = self.info.get(self._DRIVER)
        if held is None or held[0] is not transaction or held[1].invalidated:
            conn = await self.connection()
            held = (transaction, conn, await conn.get_raw_connection())
            self.info[self._DRIVER] = held
        return held  # type: ignore[no-any-return]

    async def execute(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        on_driver = not kw and driver.wanted(statement, params)
        if self._queued is not None and on_driver:
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._queued.append((statement, params, done))
            if self._flush is None:
                self._flush = asyncio.ensure_future(self._send_queued())
            return await done
        async with self._taking_turns():
            return await self._execute(statement, params, on_driver, **kw)

    def _taking_turns(self) -> AbstractAsyncContextManager[Any]:
        """Inside `together`, a statement off the queue waits for the connection's turn."""
        return self._turn if self._queued is not None else contextlib.nullcontext()

    async def _execute(self, statement: Any, params: Any, on_driver: bool, **kw: Any) -> Any:
        if on_driver:
            return (await self._run([(statement, params)]))[0]
        if self._later:
            await self._run([])  # what was sent later goes first, as it was written first
        return await super().execute(statement, params, **kw)

    async def _run(self, statements: list[tuple[Any, Any]], *, commit: bool = False) -> list[Any]:
        """Marked statements, after those sent later, in one round trip where the driver can
        (with COMMIT at the end if `commit`); their results, without the later ones'."""
        later, self._later = self._later, []
        todo = [*later, *statements]
        if not todo:
            return []
        held = await self._held()
        results: list[Any] | None = None
        if len(todo) > 1 or commit:
            results = await driver.execute_together(held[1], held[2], todo, commit=commit)
        if results is None:
            results = [await self._one(held, statement, params) for statement, params in todo]
        return results[len(later) :]

    async def _one(self, held: tuple[Any, AsyncConnection, Any], statement: Any, params: Any) -> Any:
        result = await driver.execute(held[1], held[2], statement, params)
        return result if result is not None else await super().execute(statement, params)

    def send_later(self, statement: Any, params: Any) -> bool:
        """Queue a marked statement whose result nobody needs: it goes ahead of the next
        statement, or with the COMMIT. False if it is not one for the driver, or the
        transaction has no connection yet (then it simply runs now)."""
        held = self.info.get(self._DRIVER)
        if (
            not driver.wanted(statement, params)
            or held is None
            or held[0] is not self.sync_session.get_transaction()
            or held[1].invalidated
        ):
            return False
        if not event.contains(self.sync_session, "do_orm_execute", self._send_waiting):
            # SQLAlchemy's own statements (ORM reads, a flush) run inside its greenlet: these
            # hooks send what waits ahead of them there, so they see it as written.
            event.listen(self.sync_session, "do_orm_execute", self._send_waiting)
            event.listen(self.sync_session, "before_flush", self._send_waiting)
        self._later.append((statement, params))
        return True

    def _send_waiting(self, *_event: Any) -> None:
        if self._later:
            await_only(self._run([]))

    async def commit_later(self) -> None:
        """At the end of a unit of work: what was sent later goes with the COMMIT, one round
        trip. Not when ORM changes are pending: SQLAlchemy's commit must flush them first."""
        if not self._later:
            return
        if self.new or self.dirty or self.deleted:
            await self._run([])
            return
        await self._run([], commit=True)

    async def rollback(self) -> None:
        self._later = []  # never sent: they belonged to the transaction rolled back
        await super().rollback()

    async def _send_queued(self) -> None:
        async with self._turn:
            self._flush = None
            assert self._queued is not None
            batch, self._queued[:] = list(self._queued), []
            try:
                results = await self._run([(s, p) for s, p, _ in batch])
            except Exception as error:
                for _, _, done in batch:
                    if not done.done():  # its caller may have been cancelled meanwhile
                        done.set_exception(error)
                return
            except BaseException:  # cancelled: so are the calls waiting on it
                for _, _, done in batch:
                    done.cancel()
                raise
            for (_, _, done), result in zip(batch, results, strict=True):
                if not done.done():
                    done.set_result(result)

    async def scalar(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        if not kw and driver.wanted(statement, params):
            return (await self.execute(statement, params)).scalar()
        async with self._taking_turns():
            return await super().scalar(statement, params, **kw)

    async def scalars(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        if not kw and driver.wanted(statement, params):
            return (await self.execute(statement, params)).scalars()
        async with self._taking_turns():
            return await super().scalars(statement, params, **kw)

    async def get(self, *args: Any, **kw: Any) -> Any:
        async with self._taking_turns():
            return await super().get(*args, **kw)


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
