"""One short transaction, with the database's unavailability told apart from bugs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import Executable, Row
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from steno.common.errors import DatabaseUnavailable


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction; a lost or refused connection becomes DatabaseUnavailable, so callers
    can tell "try again later" from a bug."""
    try:
        async with engine.begin() as conn:
            yield conn
    except (OperationalError, InterfaceError, OSError) as exc:
        raise DatabaseUnavailable(f"the database is unavailable: {_brief(exc)}") from exc
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        raise DatabaseUnavailable(f"the database connection was lost: {_brief(exc)}") from exc


async def fetch_all(engine: AsyncEngine, query: Executable) -> Sequence[Row[Any]]:
    """Every row ``query`` selects, in a transaction of its own."""
    async with transaction(engine) as conn:
        return (await conn.execute(query)).all()


async def fetch_first(engine: AsyncEngine, query: Executable) -> Row[Any] | None:
    """The first row ``query`` selects, if any, in a transaction of its own."""
    async with transaction(engine) as conn:
        return (await conn.execute(query)).first()


async def execute(engine: AsyncEngine, statement: Executable) -> int:
    """Runs a write in a transaction of its own; returns how many rows it matched."""
    async with transaction(engine) as conn:
        return (await conn.execute(statement)).rowcount


def _brief(exc: BaseException) -> str:
    """The driver's own first line, without the SQL and parameters SQLAlchemy appends."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return (str(cause).splitlines() or [type(cause).__name__])[0][:200]
