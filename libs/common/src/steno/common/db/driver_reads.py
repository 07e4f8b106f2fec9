"""One-row reads on asyncpg itself, for the status read clients poll (GetJob).

Through SQLAlchemy's asyncio layer, a read of one job by its key costs about five times
the CPU asyncpg takes for the same query: the pool's checkout and return, the hop into a
greenlet and back, and the result's processing (~240 µs against ~50 µs with asyncpg's own
pool, sequentially, on 2 cores), which made the database read two thirds of a GetJob's
cost in the gateway. So on Postgres these reads go to asyncpg directly: the statement is
still written and compiled by SQLAlchemy (once), and its row comes back as a mapping of
column names to values with the JSON columns decoded, as SQLAlchemy's would. On any
other database or driver (SQLite) they go through SQLAlchemy.

The asyncpg pool is the engine's, connected as SQLAlchemy connects (the URL's options
included): made on the engine's first such read, in its event loop, and closed when the
engine is disposed of, after which the next read makes a new one, as SQLAlchemy's own pool
does.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Mapping
from typing import Any

import asyncpg
from sqlalchemy import Select, event
from sqlalchemy.ext.asyncio import AsyncEngine

from steno.common.db.transaction import brief, fetch_first
from steno.common.errors import DatabaseUnavailable

# Few connections: a read holds one for a single round trip.
_POOL_SIZE = 4
_POOLS: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Task[asyncpg.Pool]] = (
    weakref.WeakKeyDictionary()
)
# A statement compiled to asyncpg's SQL: the text, and its parameters' names in order.
_COMPILED: weakref.WeakKeyDictionary[Select[Any], tuple[str, tuple[str, ...]]] = (
    weakref.WeakKeyDictionary()
)
# What a read meets when the database is down, restarting or out of connections (OSError
# includes timeouts).
_UNAVAILABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                asyncpg.TooManyConnectionsError, asyncpg.CannotConnectNowError,
                asyncpg.exceptions.OperatorInterventionError)  # fmt: skip


async def first_row(
    engine: AsyncEngine, statement: Select[Any], values: dict[str, Any]
) -> Mapping[Any, Any] | None:
    """The first row ``statement`` selects with its bound ``values``, as a mapping of its
    columns' names to their values; DatabaseUnavailable if the database cannot be reached."""
    if engine.dialect.driver != "asyncpg":
        row = await fetch_first(engine, statement, values)
        return row._mapping if row else None
    sql, names = _compiled(engine, statement)
    try:
        pool = await _pool(engine)
        record = await pool.fetchrow(sql, *(values[name] for name in names))
    except _UNAVAILABLE as exc:
        raise DatabaseUnavailable(f"the database is unavailable: {brief(exc)}") from exc
    return dict(record.items()) if record is not None else None


def _compiled(engine: AsyncEngine, statement: Select[Any]) -> tuple[str, tuple[str, ...]]:
    if statement not in _COMPILED:
        compiled = statement.compile(dialect=engine.dialect)
        _COMPILED[statement] = (compiled.string, tuple(compiled.positiontup or ()))
    return _COMPILED[statement]


async def _pool(engine: AsyncEngine) -> asyncpg.Pool:
    """The engine's asyncpg pool, made once; a pool that could not be made is forgotten,
    so that the next read tries again."""
    if engine not in _POOLS:
        _POOLS[engine] = asyncio.ensure_future(_open_pool(engine))
    try:
        return await asyncio.shield(_POOLS[engine])
    except BaseException:
        if _POOLS.get(engine) is not None and _POOLS[engine].done():
            del _POOLS[engine]
        raise


async def _open_pool(engine: AsyncEngine) -> asyncpg.Pool:
    _, options = engine.dialect.create_connect_args(engine.url)
    # SQLAlchemy's name for asyncpg's statement cache size (0 behind PgBouncer).
    if "prepared_statement_cache_size" in options:
        options["statement_cache_size"] = options.pop("prepared_statement_cache_size")
    options.setdefault("timeout", 30)
    pool = await asyncpg.create_pool(**options, min_size=1, max_size=_POOL_SIZE, init=_decode_json)

    def close(_: object) -> None:
        _POOLS.pop(engine, None)
        pool.terminate()

    event.listen(engine.sync_engine, "engine_disposed", close, once=True)
    return pool


async def _decode_json(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "json", schema="pg_catalog", encoder=json.dumps, decoder=json.loads
    )
