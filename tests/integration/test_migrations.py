"""The Alembic migrations build exactly the schema the code uses, on Postgres and SQLite;
``steno migrate --wait`` waits for them to have run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from steno.common.db import create_engine, migrate
from steno.common.db.migrate import (
    SchemaNotReady,
    alembic_config,
    head_revision,
    upgrade,
    wait_for_head,
)
from steno.common.db.schema import metadata
from tests.support import free_port, outer_env


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


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'steno.db'}"


def steno_migrate(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = outer_env()
    return subprocess.run(
        [sys.executable, "-m", "steno.cli", "migrate", *args],
        env={**env, "STENO_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_wait_for_head_returns_at_once_on_a_migrated_database(postgres_url: str) -> None:
    assert await wait_for_head(postgres_url, 0) == head_revision()


async def test_wait_for_head_gives_up_saying_where_the_database_is(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    head = head_revision()
    with pytest.raises(
        SchemaNotReady, match=f"has not been migrated after 0.2 s; it must be at {head}"
    ):
        await wait_for_head(url, 0.2, interval=0.05)

    behind = ScriptDirectory.from_config(alembic_config(url)).get_revision(head).down_revision
    assert isinstance(behind, str)
    await asyncio.to_thread(upgrade, url, behind)
    with pytest.raises(SchemaNotReady, match=f"is at revision {behind} after 0 s"):
        await wait_for_head(url, 0)


async def test_wait_for_head_counts_an_unreachable_database_as_not_there() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/steno"
    with pytest.raises(SchemaNotReady, match=r"cannot be read \(ConnectionRefusedError"):
        await wait_for_head(url, 0.3, interval=0.05)


async def test_wait_for_head_returns_once_someone_migrates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite_url(tmp_path)
    looked = asyncio.Event()
    read_revision = migrate.current_revision

    async def spy(database_url: str) -> str | None:
        revision = await read_revision(database_url)
        looked.set()
        return revision

    monkeypatch.setattr(migrate, "current_revision", spy)
    waiting = asyncio.create_task(wait_for_head(url, 60, interval=0.05))
    await asyncio.wait_for(looked.wait(), 30)
    assert not waiting.done()

    await asyncio.to_thread(upgrade, url)

    assert await asyncio.wait_for(waiting, 30) == head_revision()


def test_steno_migrate_wait_exits_non_zero_until_migrated(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    before = steno_migrate("--wait", "0", url=url)
    assert before.returncode != 0
    assert "steno migrate --wait: the database has not been migrated after 0 s" in before.stderr

    assert steno_migrate(url=url).returncode == 0

    after = steno_migrate("--wait", "5", url=url)
    assert after.returncode == 0, after.stderr
    assert f"the database schema is at {head_revision()}" in after.stdout


def test_steno_migrate_wait_takes_only_seconds(tmp_path: Path) -> None:
    done = steno_migrate("--wait", "-1", url=sqlite_url(tmp_path))
    assert done.returncode == 2
    assert "not a number of seconds >= 0" in done.stderr
