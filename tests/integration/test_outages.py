"""Dependencies that go away mid-operation, through a TCP proxy cut under one process: the
object store during an upload, the database during a worker's final write."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest

from steno.cli.dev import DevSettings
from steno.common.adapters import (
    Adapters,
    open_adapters,
    open_database,
    open_job_queue,
    open_object_store,
)
from steno.common.api_keys import Role, new_api_key
from steno.common.broker import FailurePause, TranscriptionRequest
from steno.common.broker.memory import InProcessJobQueue
from steno.common.db import (
    SqlJobRepository,
    create_engine,
)
from steno.common.errors import DependencyUnavailable
from steno.common.events.memory import InProcessJobEvents
from steno.common.jobs import Job, JobState, Transcript
from steno.common.settings import DatabaseSettings
from steno.gateway.rpc_errors import SOON
from steno.gateway.service import build_gateway
from steno.gateway.settings import AccessSettings
from steno.transcriber.engines.port import TranscriptionOptions
from steno.transcriber.pipeline import JobProcessor
from steno.v1 import transcription_service_pb2 as pb
from steno.v1 import transcription_service_pb2_grpc
from tests.fakes import FakeEngine, FakeLexiconRepository, FakeObjectStore, make_job
from tests.integration.test_upload_api import queued_messages
from tests.proxy import TcpProxy
from tests.rpc_details import error_info, retry_delay

CHUNK = 64 * 1024


@contextlib.asynccontextmanager
async def proxied(address: str) -> AsyncIterator[TcpProxy]:
    host, port = address.rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        yield proxy
    finally:
        await proxy.stop()


async def test_an_object_store_outage_mid_upload_is_unavailable_and_records_nothing(
    settings: DevSettings,
) -> None:
    assert settings.store.endpoint is not None
    async with proxied(settings.store.endpoint) as proxy:
        through_proxy = settings.model_copy(
            update={
                "store": settings.store.model_copy(update={"endpoint": f"127.0.0.1:{proxy.port}"})
            }
        )
        database, store = open_database(settings), open_object_store(through_proxy)
        queue = open_job_queue(settings)
        await store.ensure_ready()
        await queue.connect()
        jobs = SqlJobRepository(database)
        adapters = Adapters(
            database, store, queue=queue, events=InProcessJobEvents(), webhooks=InProcessJobQueue()
        )
        gateway = build_gateway(through_proxy, adapters)
        port = await gateway.start("127.0.0.1", 0)
        loop = asyncio.get_running_loop()

        def upload() -> Iterator[pb.UploadAudioRequest]:
            yield pb.UploadAudioRequest(metadata=pb.UploadMetadata(filename="big.wav"))
            yield pb.UploadAudioRequest(chunk=b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(CHUNK))
            for index in range(200):  # 12.5 MB: more than one part
                if index == 40:
                    loop.call_soon_threadsafe(proxy.cut)
                yield pb.UploadAudioRequest(chunk=bytes(CHUNK))

        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
                with pytest.raises(grpc.RpcError) as caught:
                    await asyncio.to_thread(stub.UploadAudio, upload(), timeout=120)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "object store" in (caught.value.details() or "")
            assert "retry the upload later" in (caught.value.details() or "")
            assert dict(error_info(caught.value).metadata) == {"dependency": "object_store"}
            assert retry_delay(caught.value) == SOON
            assert await jobs.list_jobs(None, states=[], limit=10, after=None) == []
            assert await queued_messages(settings) == 0
        finally:
            await gateway.stop(0)
            await queue.close()
            await database.dispose()


@pytest.mark.parametrize("auth", ["disabled", "enabled"])
async def test_a_database_outage_is_unavailable_and_says_when_to_try_again(
    settings: DevSettings, postgres_url: str, auth: str
) -> None:
    """Whether the read fails in its servicer, or first in the interceptor looking up its
    key, the client gets the same status."""
    database = urlsplit(postgres_url)
    async with proxied(f"{database.hostname}:{database.port or 5432}") as proxy:
        via_proxy = database._replace(netloc=f"{database.username}@127.0.0.1:{proxy.port}")
        through_proxy = settings.model_copy(
            update={
                "database": DatabaseSettings(url=via_proxy.geturl()),
                "access": AccessSettings(auth=auth),
            }
        )
        key = new_api_key("acme", "never stored", Role.USER, now=datetime.now(UTC)).key
        async with open_adapters(through_proxy) as adapters:
            gateway = build_gateway(through_proxy, adapters)
            port = await gateway.start("127.0.0.1", 0)
            proxy.cut()
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await stub.GetJob(
                            pb.GetJobRequest(job_id=str(uuid.uuid4())),
                            metadata=[("authorization", f"Bearer {key}")],
                            timeout=60,
                        )
            finally:
                await gateway.stop(0)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
    assert "database" in (caught.value.details() or "")
    info = error_info(caught.value)
    assert (info.reason, dict(info.metadata)) == (
        "DEPENDENCY_UNAVAILABLE",
        {"dependency": "database"},
    )
    assert retry_delay(caught.value) == SOON


class WatchedRepository(SqlJobRepository):
    """Counts the reads that failed because the database was unreachable."""

    failed_reads = 0

    async def get(self, job_id: uuid.UUID, tenant: str | None = None) -> Job | None:
        try:
            return await super().get(job_id, tenant)
        except DependencyUnavailable:
            self.failed_reads += 1
            raise


class GatedEngine(FakeEngine):
    """Transcribes once ``go`` is set; ``started`` says it is running."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()
        self.started = asyncio.Event()

    async def transcribe(self, audio: Path, options: TranscriptionOptions) -> Transcript:
        self.started.set()
        await self.go.wait()
        return await super().transcribe(audio, options)


async def test_a_database_outage_at_the_final_write_delays_the_job_but_loses_nothing(
    settings: DevSettings, postgres_url: str
) -> None:
    database = urlsplit(postgres_url)
    async with proxied(f"{database.hostname}:{database.port or 5432}") as proxy:
        via_proxy = database._replace(netloc=f"{database.username}@127.0.0.1:{proxy.port}")
        direct, flaky = create_engine(postgres_url), create_engine(via_proxy.geturl())
        jobs = SqlJobRepository(direct)
        job = make_job(publish_time=None)
        await jobs.add(job)
        engine = GatedEngine()
        watched = WatchedRepository(flaky)
        processor = JobProcessor(
            watched,
            FakeLexiconRepository(),
            FakeObjectStore({job.object_key: b"RIFF\x00\x00\x00\x00WAVEfmt "}),
            {"local": engine},
            new_pause=lambda: FailurePause(0.05, 0.1),
            commit_attempts=3,
        )
        queue = open_job_queue(settings)
        await queue.connect()
        consumer = asyncio.create_task(queue.consume(processor.handle))
        try:
            await queue.publish(TranscriptionRequest(job.job_id, job.tenant))
            async with asyncio.timeout(30):
                await engine.started.wait()
            proxy.cut()
            engine.go.set()
            # The result cannot be stored: the request is not acknowledged, and comes back
            # (to find the database still down).
            async with asyncio.timeout(30):
                while not watched.failed_reads:
                    await asyncio.sleep(0.05)
            stranded = await jobs.get(job.job_id)
            assert stranded is not None and stranded.state is JobState.PROCESSING

            proxy.restore()
            async with asyncio.timeout(60):
                while (done := await jobs.get(job.job_id)) and done.state is not JobState.COMPLETED:
                    await asyncio.sleep(0.1)
            assert done is not None and done.attempts == 2
            assert done.original_text == engine.transcript.text
            assert engine.calls == 2, "run again once the database was back"
            async with asyncio.timeout(10):
                while await queued_messages(settings):
                    await asyncio.sleep(0.1)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
            await queue.close()
            await direct.dispose()
            await flaky.dispose()
