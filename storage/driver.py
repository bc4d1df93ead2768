"""Hot-path statements sent on psycopg itself, inside the session's own transaction.

On PostgreSQL, a statement marked `on_driver(stmt)` is compiled once (per set of parameter
names), and each execution sends the compiled SQL on the session's psycopg connection, then
wraps the rows in a SQLAlchemy result. That skips the layers every `session.execute` pays: the
ORM's execution path, the execution context, the greenlet hop to the driver and back. Nothing
else changes: the same SQL, the same connection and transaction, the same bind and result
conversions (the compiled statement's own processors),
the same exceptions (psycopg's errors wrapped as SQLAlchemy's, and a connection the error
broke is invalidated, as SQLAlchemy does). See bench/README.md for what it saves.

What this path does not take, so they go through `session.execute` as before: SQLite, ORM
statements, statements that need Python-side column defaults, and several parameter sets of a
statement with expanding (IN) parameters. Several parameter sets of one INSERT go as psycopg's
`executemany`, which sends them in one round trip (its pipeline mode), where SQLAlchemy would
send one multi-row INSERT. `AppSession` (storage/db.py) decides per call.

`execute_together` sends several statements in one pipeline, the round trip they share: the
transaction's BEGIN ahead of them when they are its first (psycopg would send it in a round trip
of its own), its COMMIT after them when asked. A single statement opening a transaction goes
that way too, so its BEGIN costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

IDLE = psycopg.pq.TransactionStatus.IDLE
INTRANS = psycopg.pq.TransactionStatus.INTRANS
ON_DRIVER = "mm_on_driver"  # execution option that marks a statement for this path

E = TypeVar("E", bound=Executable)


def on_driver(stmt: E) -> E:
    """Mark a prebuilt Core statement of a hot path (see the module docstring)."""
    return stmt.execution_options(**{ON_DRIVER: True})


def wanted(stmt: Any, params: Any) -> bool:
    """A marked statement with one set of parameters, or several with the same names."""
    if not isinstance(stmt, Executable) or not stmt.get_execution_options().get(ON_DRIVER):
        return False
    if params is None or isinstance(params, Mapping):
        return True
    return (
        isinstance(params, list)
        and bool(params)
        and all(isinstance(p, Mapping) and p.keys() == params[0].keys() for p in params)
    )


class DriverResult(IteratorResult[Any]):
    """A SQLAlchemy result over rows already fetched, with the cursor's row count."""

    def __init__(self, keys: Sequence[str], rows: list[Any], rowcount: int) -> None:
        super().__init__(SimpleResultMetaData(keys), iter(rows))
        self.rowcount = rowcount


@dataclass(frozen=True)
class _Compiled:
    compiled: SQLCompiler
    keys: tuple[str, ...]
    processors: tuple[Any, ...] | None  # per result column; None when no column needs one
    usable: bool  # False: this statement needs what only SQLAlchemy's execution does


_cache: dict[tuple[int, tuple[str, ...]], tuple[Executable, _Compiled]] = {}


def _compile(stmt: Executable, names: tuple[str, ...], dialect: Dialect) -> _Compiled:
    key = (id(stmt), names)
    hit = _cache.get(key)
    if hit is not None and hit[0] is stmt:
        return hit[1]
    # column_keys as SQLAlchemy's own execution passes them (an INSERT's columns, an UPDATE's
    # SET come from the parameter names).
    compiled = stmt.compile(dialect=dialect, column_keys=list(names))  # type: ignore[attr-defined]
    assert isinstance(compiled, SQLCompiler)
    columns = compiled._result_columns
    processors = tuple(column[3]._cached_result_processor(dialect, None) for column in columns)
    usable = not (
        compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.schema_translate_map
        or compiled.returning_precedes_values
    )
    entry = _Compiled(
        compiled,
        tuple(column[0] for column in columns),
        processors if any(p is not None for p in processors) else None,
        usable,
    )
    _cache[key] = (stmt, entry)  # the statement is kept, so its id is never reused
    return entry


def _parameters(compiled: SQLCompiler, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The SQL and the driver's parameters, as SQLAlchemy's execution context makes them."""
    values = compiled.construct_params(dict(params) if params else None, escape_names=False)
    sql = compiled.string
    processors: Mapping[str, Any] = compiled._bind_processors
    if compiled.literal_execute_params or compiled.post_compile_params:
        expanded = compiled._process_parameters_for_postcompile(values)
        sql = expanded.statement
        processors = {**processors, **expanded.processors}
    escaped = compiled.escaped_bind_names
    args = {
        (escaped.get(name, name) if escaped else name): (
            processors[name](value) if name in processors else value
        )
        for name, value in values.items()
    }
    return sql, args


def _prepare(
    dialect: Dialect, stmt: Executable, params: Mapping[str, Any] | list[Mapping[str, Any]] | None
) -> tuple[_Compiled, str, dict[str, Any] | list[dict[str, Any]]] | None:
    """The compiled entry, SQL and driver parameters of one execution; None if it must take
    SQLAlchemy's path instead."""
    many = params if isinstance(params, list) else None
    first = many[0] if many else params
    assert first is None or isinstance(first, Mapping)
    entry = _compile(stmt, tuple(sorted(first)) if first else (), dialect)
    if not entry.usable or (
        many and (entry.compiled.post_compile_params or entry.compiled.literal_execute_params)
    ):
        return None
    if many:
        sets = [_parameters(entry.compiled, p) for p in many]
        return entry, sets[0][0], [a for _, a in sets]
    sql, args = _parameters(entry.compiled, first)
    return entry, sql, args


async def _send(cursor: psycopg.AsyncCursor[Any], entry: _Compiled, sql: str, args: Any) -> None:
    if isinstance(args, list):
        await cursor.executemany(sql, args, returning=bool(entry.keys))
    else:
        await cursor.execute(sql, args)


async def _fetch(cursor: psycopg.AsyncCursor[Any], entry: _Compiled, many: bool) -> tuple[list[Any], int]:
    """The cursor's rows, converted as SQLAlchemy would, and its row count."""
    rows: list[Any] = []
    if many:
        while entry.keys:
            rows += await cursor.fetchall()
            if not cursor.nextset():
                break
    elif cursor.description is not None:
        rows = await cursor.fetchall()
    if entry.processors is not None:
        procs = entry.processors
        rows = [tuple(p(v) if p else v for p, v in zip(procs, row, strict=True)) for row in rows]
    return rows, cursor.rowcount


async def _collect(cursor: psycopg.AsyncCursor[Any], entry: _Compiled, many: bool) -> DriverResult:
    rows, rowcount = await _fetch(cursor, entry, many)
    return DriverResult(entry.keys, rows, rowcount)


async def _wrapped(
    conn: AsyncConnection, pooled: PoolProxiedConnection, error: psycopg.Error, sql: str, args: Any
) -> Exception:
    """psycopg's error as SQLAlchemy raises it; a connection it broke is invalidated first.
    (psycopg.Error is the dialect's DBAPI Error: its module is psycopg itself.)"""
    dialect = conn.dialect
    disconnected = dialect.is_disconnect(error, pooled.dbapi_connection, None)  # type: ignore[arg-type]
    if disconnected:
        await conn.invalidate(error)
    return sa_exc.DBAPIError.instance(
        sql, args, error, psycopg.Error, connection_invalidated=disconnected, dialect=dialect
    )


async def execute(
    conn: AsyncConnection,
    pooled: PoolProxiedConnection,
    stmt: Executable,
    params: Mapping[str, Any] | list[Mapping[str, Any]] | None,
) -> DriverResult | None:
    """Run `stmt` on the driver under `conn` (`pooled`: its pooled connection); None if it must
    take SQLAlchemy's path instead."""
    prepared = _prepare(conn.dialect, stmt, params)
    if prepared is None:
        return None
    entry, sql, args = prepared
    raw = pooled.driver_connection
    assert isinstance(raw, psycopg.AsyncConnection)
    begin = _begin_command(raw)
    if begin is not None:
        # The transaction's first statement: its BEGIN goes in the same round trip.
        return (await _pipelined(conn, pooled, raw, [prepared], begin, commit=False))[0]
    cursor = raw.cursor()
    try:
        await _send(cursor, entry, sql, args)
        return await _collect(cursor, entry, isinstance(args, list))
    except psycopg.Error as error:
        raise await _wrapped(conn, pooled, error, sql, args) from error
    finally:
        await cursor.close()


async def execute_together(
    conn: AsyncConnection,
    pooled: PoolProxiedConnection,
    statements: Sequence[tuple[Executable, Mapping[str, Any] | list[Mapping[str, Any]] | None]],
    *,
    commit: bool = False,
) -> list[DriverResult] | None:
    """Run several statements in one round trip (psycopg's pipeline mode), in order, inside the
    session's transaction: when it is the transaction's first, its BEGIN goes with them, and
    with `commit` its COMMIT follows them. None if any of them must take SQLAlchemy's path (the
    caller then runs them one by one).

    Each statement still runs on its own on the server, in the order given, so a later one sees
    what an earlier one wrote; only the waiting is shared. If one fails, the ones after it are
    not run (the transaction is aborted, nothing committed) and the first error is raised, as
    SQLAlchemy's."""
    prepared = [_prepare(conn.dialect, stmt, params) for stmt, params in statements]
    raw = pooled.driver_connection
    assert isinstance(raw, psycopg.AsyncConnection)
    begin = _begin_command(raw)
    ready = [p for p in prepared if p is not None]
    if len(ready) < len(prepared) or (
        commit and begin is None and raw.info.transaction_status is not INTRANS
    ):
        return None
    return await _pipelined(conn, pooled, raw, ready, begin, commit=commit)


async def _pipelined(
    conn: AsyncConnection,
    pooled: PoolProxiedConnection,
    raw: psycopg.AsyncConnection[Any],
    prepared: list[tuple[_Compiled, str, dict[str, Any] | list[dict[str, Any]]]],
    begin: bytes | None,
    *,
    commit: bool,
) -> list[DriverResult]:
    """`execute_together` on statements already prepared; `begin`: the BEGIN to send first."""
    # psycopg sends a transaction's BEGIN with a sync of its own, a round trip by itself; at
    # the transaction's start this pipeline sends it instead, ahead of the statements. For
    # that, psycopg is told not to (its private flag: the public setter refuses to change it
    # back inside the transaction). Once BEGIN has run, the connection is an ordinary one in a
    # transaction, which psycopg and SQLAlchemy commit or roll back as usual (after a COMMIT
    # sent here, their commit finds nothing to do).
    # One cursor per parameter set: psycopg's executemany would open a pipeline of its own,
    # which syncs (a round trip) on the way in and out.
    sends: list[tuple[int, psycopg.AsyncCursor[Any], str, Any]] = []
    for index, (_, sql, args) in enumerate(prepared):
        for one in args if isinstance(args, list) else [args]:
            sends.append((index, raw.cursor(), sql, one))
    current: tuple[str, Any] = ("", None)
    try:
        if begin is not None:
            raw._autocommit = True
        # The pipeline's exit sends everything queued and reads every result: one round trip.
        async with raw.pipeline():
            if begin is not None:
                current = (begin.decode(), None)
                await raw.execute(begin)
            for _, cursor, sql, args in sends:
                current = (sql, args)
                await cursor.execute(sql, args)
            if commit:
                current = ("COMMIT", None)
                await raw.execute(b"COMMIT")
        rows: list[list[Any]] = [[] for _ in prepared]
        counts = [0 for _ in prepared]
        for index, cursor, sql, args in sends:
            current = (sql, args)
            found, count = await _fetch(cursor, prepared[index][0], False)
            rows[index] += found
            counts[index] += count
        return [
            DriverResult(entry.keys, found, count)
            for (entry, _, _), found, count in zip(prepared, rows, counts, strict=True)
        ]
    except psycopg.Error as error:
        raise await _wrapped(conn, pooled, error, *current) from error
    finally:
        if begin is not None:
            raw._autocommit = False
        for _, cursor, _, _ in sends:
            await cursor.close()


def _begin_command(raw: psycopg.AsyncConnection[Any]) -> bytes | None:
    """The BEGIN psycopg would send before the next statement, or None if it would send none
    (a transaction already open, autocommit) or it can't be sent ahead here."""
    if raw.autocommit or raw.info.transaction_status is not IDLE or not hasattr(raw, "_autocommit"):
        return None
    parts = ["BEGIN"]  # as psycopg builds it from the connection's settings
    if raw.isolation_level is not None:
        parts.append("ISOLATION LEVEL " + psycopg.IsolationLevel(raw.isolation_level).name.replace("_", " "))
    if raw.read_only is not None:
        parts.append("READ ONLY" if raw.read_only else "READ WRITE")
    if raw.deferrable is not None:
        parts.append("DEFERRABLE" if raw.deferrable else "NOT DEFERRABLE")
    return " ".join(parts).encode()
