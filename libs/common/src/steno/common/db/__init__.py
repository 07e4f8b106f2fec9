"""The database adapter: schema, repository and migrations, on Postgres or SQLite."""

from steno.common.db.connection import create_engine
from steno.common.db.repository import SqlJobRepository

__all__ = ["SqlJobRepository", "create_engine"]
