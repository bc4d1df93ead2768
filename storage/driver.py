"""Hot-path statements sent on psycopg itself, inside the session's own transaction.

On PostgreSQL, a statement marked `on_driver(stmt)` is compiled once (per set of parameter
names), and each execution sends the compiled SQL on the session's psycopg connection, then
wraps the rows in a SQLAlchemy result. That skips the layers every `session.execute` pays: the
ORM's execution path, the execution context, the greenlet hop to the driver and back. Nothing
else changes: the same SQL, the same connection and transaction (BEGIN and COMMIT are still the
session's), the same bind and result conversions (the compiled statement's own processors),
the same exceptions (psycopg's errors wrapped as SQLAlchemy's, and a connection the error
broke is invalidated, as SQLAlchemy does). See bench/README.md for what it saves.

What this path does not take, so they go through `session.execute` as before: SQLite, ORM
statements, statements that need Python-side column defaults, and several parameter sets of a
statement with expanding (IN) parameters. Several parameter sets of one INSERT go as psycopg's
`executemany`, which sends them in one round trip (its pipeline mode), where SQLAlchemy would
send one multi-row INSERT. `AppSession` (storage/db.py) decides per call.
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


async def execute(
    conn: AsyncConnection,
    pooled: PoolProxiedConnection,
    stmt: Executable,
    params: Mapping[str, Any] | list[Mapping[str, Any]] | None,
) -> DriverResult | None:
    """Run `stmt` on the driver under `conn` (`pooled`: its pooled connection); None if it must
    take SQLAlchemy's path instead."""
    dialect = conn.dialect
    many = params if isinstance(params, list) else None
    first = many[0] if many else params
    assert first is None or isinstance(first, Mapping)
    entry = _compile(stmt, tuple(sorted(first)) if first else (), dialect)
    if not entry.usable or (
        many and (entry.compiled.post_compile_params or entry.compiled.literal_execute_params)
    ):
        return None
    args: dict[str, Any] | list[dict[str, Any]]
    if many:
        sets = [_parameters(entry.compiled, p) for p in many]
        sql, args = sets[0][0], [a for _, a in sets]
    else:
        sql, args = _parameters(entry.compiled, first)
    raw = pooled.driver_connection
    assert isinstance(raw, psycopg.AsyncConnection)
    cursor = raw.cursor()
    try:
        rows: list[Any] = []
        if isinstance(args, list):
            await cursor.executemany(sql, args, returning=bool(entry.keys))
            while entry.keys:
                rows += await cursor.fetchall()
                if not cursor.nextset():
                    break
        else:
            await cursor.execute(sql, args)
            rows = await cursor.fetchall() if cursor.description is not None else []
        rowcount = cursor.rowcount
    except psycopg.Error as error:
        # psycopg.Error is the dialect's DBAPI Error (its module is psycopg itself).
        disconnected = dialect.is_disconnect(error, pooled.dbapi_connection, None)  # type: ignore[arg-type]
        if disconnected:
            await conn.invalidate(error)
        raise sa_exc.DBAPIError.instance(
            sql, args, error, psycopg.Error, connection_invalidated=disconnected, dialect=dialect
        ) from error
    finally:
        await cursor.close()
    if entry.processors is not None:
        procs = entry.processors
        rows = [tuple(p(v) if p else v for p, v in zip(procs, row, strict=True)) for row in rows]
    return DriverResult(entry.keys, rows, rowcount)
