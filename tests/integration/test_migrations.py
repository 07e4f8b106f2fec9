"""The Alembic migrations build exactly the schema the code uses, on Postgres and SQLite."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from steno.common.db import create_engine
from steno.common.db.schema import metadata


def schema_drift(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def drift_at(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(schema_drift)
    finally:
        await engine.dispose()


async def test_postgres_schema_matches_the_code(postgres_url: str) -> None:
    assert await drift_at(postgres_url) == []


async def test_steno_migrate_builds_sqlite_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'steno.db'}"
    env = {**os.environ, "STENO_DATABASE_URL": url}
    for _ in range(2):
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "steno.cli", "migrate"],
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode()
    assert await drift_at(url) == []
