"""Engine construction for the two supported backends."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

# The pool does not ping a connection before it hands it out (a round trip on every
# statement, a third of a status read's time): a connection found dead fails its statement
# as DatabaseUnavailable, for the caller to retry, and the pool then replaces every
# connection it holds.
_POOL = {"pool_pre_ping": False}


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL and a busy timeout so that the
    embedded stack's tasks (and a separate janitor process) can share the file."""
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    # Looked up on its module at each call: tracing's SQLAlchemy instrumentation wraps it
    # there, after this module was imported (see steno.common.tracing).
    create_async_engine = sqlalchemy_asyncio.create_async_engine
    if not url.startswith("sqlite"):
        return create_async_engine(url, **_POOL)
    engine = create_async_engine(url, connect_args={"timeout": 30}, **_POOL)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine
