"""Status reads on asyncpg itself (steno.common.db.driver_reads): the same rows as through
SQLAlchemy, the engine's pool made once and closed with the engine, an unreachable
database told apart as unavailable, and a pool that could not be made tried again."""

from __future__ import annotations

import uuid

import pytest

from steno.common.db import SqlJobRepository, create_engine, driver_reads
from steno.common.db.jobs import _BY_ID
from steno.common.db.transaction import fetch_first
from steno.common.errors import DatabaseUnavailable
from steno.common.jobs import Segment
from steno.common.lexicons import Replacement
from tests.fakes import make_job
from tests.support import free_port


async def test_a_row_reads_as_sqlalchemy_reads_it(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        jobs = SqlJobRepository(engine)
        job = make_job(
            labels={"team": "blue"},
            segments=[Segment(0.0, 1.5, "good morning")],
            replacements=[Replacement("cooper netties", "Kubernetes", 5)],
            warnings=["the audio was short"],
        )
        await jobs.add(job)

        read = await driver_reads.first_row(engine, _BY_ID, {"job_id": job.job_id})
        through_sqlalchemy = await fetch_first(engine, _BY_ID, {"job_id": job.job_id})

        assert through_sqlalchemy is not None
        assert read == dict(through_sqlalchemy._mapping)
        assert await jobs.get(job.job_id) == job
        assert await driver_reads.first_row(engine, _BY_ID, {"job_id": uuid.uuid4()}) is None
    finally:
        await engine.dispose()


async def test_the_pool_is_made_once_and_closed_with_the_engine(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    await driver_reads.first_row(engine, _BY_ID, {"job_id": uuid.uuid4()})
    made = driver_reads._POOLS[engine]
    await driver_reads.first_row(engine, _BY_ID, {"job_id": uuid.uuid4()})
    assert driver_reads._POOLS[engine] is made
    pool = made.result()

    await engine.dispose()

    assert pool.is_closing()
    # A disposed engine is still usable, as SQLAlchemy's own pool is: a new pool is made.
    assert await driver_reads.first_row(engine, _BY_ID, {"job_id": uuid.uuid4()}) is None
    assert driver_reads._POOLS[engine] is not made
    await engine.dispose()


async def test_the_urls_options_connect_as_through_sqlalchemy(postgres_url: str) -> None:
    """asyncpg would take an option it does not know for a server setting and fail."""
    engine = create_engine(f"{postgres_url}?ssl=disable&prepared_statement_cache_size=0")
    try:
        assert await driver_reads.first_row(engine, _BY_ID, {"job_id": uuid.uuid4()}) is None
    finally:
        await engine.dispose()


async def test_an_unreachable_database_is_unavailable_and_tried_again() -> None:
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/steno")
    try:
        for _ in range(2):  # the pool that failed is not kept: each read tries to connect
            with pytest.raises(DatabaseUnavailable, match="the database is unavailable"):
                await SqlJobRepository(engine).get(uuid.uuid4())
        assert engine not in driver_reads._POOLS
    finally:
        await engine.dispose()
