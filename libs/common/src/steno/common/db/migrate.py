"""Runs the Alembic migrations that ship inside this package (``steno migrate``), and waits
for someone else to have run them (``steno migrate --wait``, a Kubernetes init container)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from steno.common.db.connection import create_engine

_MIGRATIONS = Path(__file__).with_name("migrations")
# Seconds between two looks at the database while waiting for its schema.
WAIT_INTERVAL = 1.0
# The least time one look may take, however little of the wait is left.
_MIN_ATTEMPT_SECONDS = 2.0


class SchemaNotReady(Exception):
    """The database did not reach the newest revision in the time given."""


def alembic_config(database_url: str) -> Config:
    """An Alembic config for ``database_url`` that needs no alembic.ini on disk."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Brings the database at ``database_url`` up to ``revision``; a no-op when it is there."""
    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    """The newest revision this code ships."""
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations in {_MIGRATIONS}")
    return head


async def current_revision(database_url: str) -> str | None:
    """The revision the database at ``database_url`` is at; None if it was never migrated."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revision_of)
    finally:
        await engine.dispose()


def _revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def wait_for_head(
    database_url: str, seconds: float, *, interval: float = WAIT_INTERVAL
) -> str:
    """Returns the head revision once the database is at it, looking every ``interval``
    seconds; a database that cannot be read yet counts as not there. Raises
    :class:`SchemaNotReady`, saying what the database is at, after ``seconds``."""
    head = head_revision()
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        try:
            async with asyncio.timeout(max(remaining, _MIN_ATTEMPT_SECONDS)):
                current = await current_revision(database_url)
        except Exception as exc:  # not up yet, not created yet, refusing us yet: look again
            state = f"cannot be read ({type(exc).__name__}: {exc or 'no answer'})"
        else:
            if current == head:
                return head
            state = f"is at revision {current}" if current else "has not been migrated"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SchemaNotReady(
                f"the database {state} after {seconds:g} s; it must be at {head}, the newest "
                "revision this code ships: run `steno migrate` (the steno-migrate Job) first"
            )
        await asyncio.sleep(min(interval, remaining))
