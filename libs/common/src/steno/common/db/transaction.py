"""One short transaction, with the database's unavailability told apart from bugs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from sqlalchemy import Executable, Row
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from steno.common.errors import DatabaseUnavailable


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction; a lost or refused connection becomes DatabaseUnavailable, so callers
    can tell "try again later" from a bug."""
    with _unavailable_told_apart():
        async with engine.begin() as conn:
            yield conn


@contextlib.asynccontextmanager
async def _one_statement(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for one statement, in autocommit: a single statement is atomic and sees
    one snapshot on its own, and BEGIN and COMMIT around it would be two more round trips
    to the database for every status read."""
    if engine.dialect.name == "sqlite":
        # aiosqlite would take two trips to its thread to switch to autocommit and back,
        # where the COMMIT is one.
        async with transaction(engine) as conn:
            yield conn
        return
    with _unavailable_told_apart():
        async with engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")


@contextlib.contextmanager
def _unavailable_told_apart() -> Iterator[None]:
    try:
        yield
    except (OperationalError, InterfaceError, OSError) as exc:
        raise DatabaseUnavailable(f"the database is unavailable: {brief(exc)}") from exc
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        raise DatabaseUnavailable(f"the database connection was lost: {brief(exc)}") from exc


async def fetch_all(engine: AsyncEngine, query: Executable) -> Sequence[Row[Any]]:
    """Every row ``query`` selects."""
    async with _one_statement(engine) as conn:
        return (await conn.execute(query)).all()


async def fetch_first(
    engine: AsyncEngine, query: Executable, values: dict[str, Any] | None = None
) -> Row[Any] | None:
    """The first row ``query`` selects (with its bound ``values``), if any."""
    async with _one_statement(engine) as conn:
        return (await conn.execute(query, values)).first()


async def execute(engine: AsyncEngine, statement: Executable) -> int:
    """Runs a write in a transaction of its own; returns how many rows it matched."""
    async with transaction(engine) as conn:
        return (await conn.execute(statement)).rowcount


def brief(exc: BaseException) -> str:
    """The driver's own first line, without the SQL and parameters SQLAlchemy appends."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return (str(cause).splitlines() or [type(cause).__name__])[0][:200]
