"""An in-process gateway on a real port, over the real Postgres, RabbitMQ and S3."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from steno.cli.dev import DevSettings
from steno.common.adapters import Adapters, open_adapters
from steno.common.broker import JobQueue
from steno.common.db import SqlJobRepository, SqlLexiconRepository, SqlPartialUploadRepository
from steno.common.db.migrate import upgrade
from steno.common.db.schema import jobs as jobs_table
from steno.common.events import JobEvents
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
    # The gateway's adapters; its job events go through RabbitMQ: it publishes its own
    # writes' and follows everyone's for its watchers.
    adapters: Adapters
    jobs: SqlJobRepository
    lexicons: SqlLexiconRepository
    partials: SqlPartialUploadRepository
    settings: DevSettings

    @property
    def database(self) -> AsyncEngine:
        return self.adapters.database

    @property
    def store(self) -> ObjectStore:
        return self.adapters.store

    @property
    def queue(self) -> JobQueue:
        return self.adapters.queue

    @property
    def events(self) -> JobEvents:
        return self.adapters.events

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


@pytest.fixture(params=["postgres", "sqlite"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database of each SQL kind (asyncpg or aiosqlite URL)."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    url = f"sqlite+aiosqlite:///{tmp_path / 'steno.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def gateway(settings: DevSettings) -> AsyncIterator[Gateway]:
    async with open_adapters(settings) as adapters:
        service = build_gateway(settings, adapters)
        port = await service.start("127.0.0.1", 0)
        address = f"127.0.0.1:{port}"
        channel = grpc.aio.insecure_channel(address)
        sync_channel = grpc.insecure_channel(address)
        try:
            yield Gateway(
                transcription_service_pb2_grpc.TranscriptionServiceStub(channel),
                transcription_service_pb2_grpc.TranscriptionServiceStub(sync_channel),
                address,
                adapters,
                adapters.jobs(),
                adapters.lexicons(),
                adapters.partial_uploads(),
                settings,
            )
        finally:
            await channel.close()
            sync_channel.close()
            await service.stop(0)


@pytest.fixture
def bucket_objects(s3_server: S3Server, bucket: str):  # type: ignore[no-untyped-def]
    """Lists what is in this test's bucket: finished objects and unfinished multipart uploads."""
    client = s3_server.client()

    def listing() -> tuple[list[str], list[str]]:
        objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return [o["Key"] for o in objects], [u["Key"] for u in uploads]

    return listing
