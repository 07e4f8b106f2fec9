"""An in-process gateway on a real port, over the real Postgres, RabbitMQ and S3."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from steno.common.adapters import (
    open_database,
    open_job_events,
    open_job_queue,
    open_object_store,
)
from steno.common.broker import JobQueue
from steno.common.db import SqlJobRepository, SqlLexiconRepository, SqlPartialUploadRepository
from steno.common.db.migrate import upgrade
from steno.common.db.schema import jobs as jobs_table
from steno.common.events import JobEvents
from steno.common.settings import Settings
from steno.common.storage import ObjectStore
from steno.gateway.service import build_gateway
from steno.v1 import transcription_service_pb2_grpc
from tests.conftest import S3Server


@dataclass
class Gateway:
    stub: transcription_service_pb2_grpc.TranscriptionServiceStub
    # A blocking stub too: on an early server error the asyncio client can report
    # INTERNAL instead of the server's status (grpc/grpc#36066); the blocking one cannot.
    sync_stub: transcription_service_pb2_grpc.TranscriptionServiceStub
    address: str
    database: AsyncEngine
    jobs: SqlJobRepository
    lexicons: SqlLexiconRepository
    partials: SqlPartialUploadRepository
    store: ObjectStore
    queue: JobQueue
    settings: Settings
    # The gateway's job events (through RabbitMQ): it publishes its own writes' and follows
    # everyone's for its watchers.
    events: JobEvents

    async def row_count(self) -> int:
        async with self.database.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(jobs_table))).scalar_one()
            )


@pytest.fixture(params=["postgres", "sqlite", "fake"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """A migrated database of each kind, or None for the in-memory fake: repository contract
    tests run against all three."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'steno.db'}"
        upgrade(url)
        return url
    return None


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    database = open_database(settings)
    store = open_object_store(settings)
    queue = open_job_queue(settings)
    events = open_job_events(settings)
    await store.ensure_ready()
    await queue.connect()
    await events.connect()
    jobs = SqlJobRepository(database)
    lexicons = SqlLexiconRepository(database)
    partials = SqlPartialUploadRepository(database)
    gateway = build_gateway(settings, jobs, lexicons, partials, store, queue, events)
    port = await gateway.start("127.0.0.1", 0)
    address = f"127.0.0.1:{port}"
    channel = grpc.aio.insecure_channel(address)
    sync_channel = grpc.insecure_channel(address)
    try:
        yield Gateway(
            transcription_service_pb2_grpc.TranscriptionServiceStub(channel),
            transcription_service_pb2_grpc.TranscriptionServiceStub(sync_channel),
            address,
            database,
            jobs,
            lexicons,
            partials,
            store,
            queue,
            settings,
            events,
        )
    finally:
        await channel.close()
        sync_channel.close()
        await gateway.stop(0)
        await events.close()
        await queue.close()
        await database.dispose()


@pytest.fixture
def bucket_objects(s3_server: S3Server, bucket: str):  # type: ignore[no-untyped-def]
    """Lists what is in this test's bucket: finished objects and unfinished multipart uploads."""
    client = s3_server.client()

    def listing() -> tuple[list[str], list[str]]:
        objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return [o["Key"] for o in objects], [u["Key"] for u in uploads]

    return listing
