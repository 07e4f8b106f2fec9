"""CancelJob, DeleteJob and WatchJob through a real gateway on Postgres, RabbitMQ and S3,
and job events through RabbitMQ.

A stand-in transcriber writes through its own ``EventingJobRepository`` and its own AMQP
connection, as the transcriber process does, so what a watcher sees came through the broker.
Each step of a watch must arrive well within the gateway's re-read interval: the events
drive the stream, not the periodic re-reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import grpc
import pytest

from steno.cli import main
from steno.cli.dev import DevSettings
from steno.client import StenoClient
from steno.common.broker import TranscriptionRequest
from steno.common.db import SqlJobRepository
from steno.common.errors import BrokerUnavailable
from steno.common.events import JobUpdate
from steno.common.events.amqp import MESSAGE_TYPE, AmqpJobEvents
from steno.common.events.publishing import EventingJobRepository
from steno.common.jobs import Job, JobError, JobState
from steno.gateway.rpc_errors import SOON
from steno.gateway.service import build_gateway
from steno.transcriber.pipeline import JobProcessor
from steno.v1 import events_pb2, job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb
from tests.fakes import T0, FakeEngine, make_transcript
from tests.integration.conftest import Gateway
from tests.integration.test_upload_api import chunks_of, metadata_message, upload
from tests.rpc_details import call_facts, facts
from tests.support import AUDIO

# Seconds one step of a watch may take: well under the gateway's re-read interval (5 s).
STEP = 2.5


async def uploaded(gateway: Gateway) -> job_pb2.Job:
    response = await upload(
        gateway, [metadata_message(), *chunks_of((AUDIO / "speech.wav").read_bytes())]
    )
    return response.job


def amqp_events(settings: DevSettings, exchange: str | None = None) -> AmqpJobEvents:
    assert settings.broker.url is not None
    return AmqpJobEvents(
        settings.broker.url.get_secret_value(), exchange or settings.broker.events_exchange
    )


@pytest.fixture
async def transcriber_jobs(gateway: Gateway) -> AsyncIterator[EventingJobRepository]:
    """The job repository as the transcriber process has it: the database, announcing its
    writes over a connection of its own."""
    events = amqp_events(gateway.settings)
    await events.connect()
    yield EventingJobRepository(SqlJobRepository(gateway.database), events)
    await events.close()


async def stored(gateway: Gateway, job_id: str) -> Job:
    job = await gateway.jobs.get(uuid.UUID(job_id))
    assert job is not None
    return job


async def rpc_error(call: Callable[..., Any], request: Any) -> grpc.RpcError:
    """The error a blocking unary call ends with (run in a thread)."""
    with pytest.raises(grpc.RpcError) as error:
        await asyncio.to_thread(call, request)
    return error.value


@contextlib.asynccontextmanager
async def watching(gateway: Gateway, job_id: str) -> AsyncIterator[grpc.aio.UnaryStreamCall]:
    call = gateway.stub.WatchJob(pb.WatchJobRequest(job_id=job_id))
    try:
        yield call
    finally:
        call.cancel()


async def next_job(call: grpc.aio.UnaryStreamCall) -> job_pb2.Job:
    async with asyncio.timeout(STEP):
        response = await call.read()
    assert response is not grpc.aio.EOF, "the watch ended early"
    job: job_pb2.Job = response.job
    return job


async def ended(call: grpc.aio.UnaryStreamCall) -> grpc.StatusCode:
    """How the watch ended, once it has (within a step)."""
    async with asyncio.timeout(STEP):
        with contextlib.suppress(grpc.aio.AioRpcError):
            assert await call.read() is grpc.aio.EOF, "the watch went on"
        code: grpc.StatusCode = await call.code()
    return code


# -- CancelJob ---------------------------------------------------------------------------


async def test_a_queued_job_is_cancelled_at_once_and_its_request_then_ignored(
    gateway: Gateway, bucket_objects: Callable[[], tuple[list[str], list[str]]]
) -> None:
    job = await uploaded(gateway)

    response = await asyncio.to_thread(
        gateway.sync_stub.CancelJob, pb.CancelJobRequest(job_id=job.job_id)
    )

    cancelled = response.job
    assert cancelled.state == job_pb2.JOB_STATE_CANCELLED
    retention = (await stored(gateway, job.job_id)).audio_retention
    assert (
        cancelled.audio_expire_time.ToDatetime() - cancelled.complete_time.ToDatetime() == retention
    )
    objects, _ = bucket_objects()
    assert objects == [f"audio/{job.job_id}"], "the audio stays until its retention ends"

    # The request the upload queued reaches a worker after the cancel: nothing is done.
    engine = FakeEngine()
    processor = JobProcessor(gateway.jobs, gateway.lexicons, gateway.store, {"local": engine})
    handled = asyncio.Event()

    async def handle(request: TranscriptionRequest) -> None:
        await processor.handle(request)
        handled.set()

    consumer = asyncio.create_task(gateway.queue.consume(handle))
    try:
        async with asyncio.timeout(30):
            await handled.wait()
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
    assert engine.calls == 0
    assert (await stored(gateway, job.job_id)).state is JobState.CANCELLED


async def test_a_running_job_is_cancelled_and_its_worker_loses_it(
    gateway: Gateway, transcriber_jobs: EventingJobRepository
) -> None:
    job = await stored(gateway, (await uploaded(gateway)).job_id)
    job.start(job.create_time, owner="worker-1", lease_until=job.create_time)
    assert await transcriber_jobs.update(job, expected=JobState.QUEUED)

    response = await asyncio.to_thread(
        gateway.sync_stub.CancelJob, pb.CancelJobRequest(job_id=str(job.job_id))
    )

    assert response.job.state == job_pb2.JOB_STATE_CANCELLED
    # The worker's next lease renewal is refused: that is how it learns to stop.
    job.progress = 0.5
    assert not await transcriber_jobs.update(job, expected=JobState.PROCESSING, owner="worker-1")
    assert (await stored(gateway, str(job.job_id))).state is JobState.CANCELLED


async def test_a_finished_job_cannot_be_cancelled(gateway: Gateway) -> None:
    job = await uploaded(gateway)
    processor = JobProcessor(gateway.jobs, gateway.lexicons, gateway.store, {"local": FakeEngine()})
    await processor.handle(TranscriptionRequest(uuid.UUID(job.job_id), "default"))

    error = await rpc_error(gateway.sync_stub.CancelJob, pb.CancelJobRequest(job_id=job.job_id))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == f"job {job.job_id} is COMPLETED; nothing to cancel"
    assert facts(error) == ("JOB_ALREADY_ENDED", {"job_id": job.job_id, "state": "COMPLETED"})
    assert (await stored(gateway, job.job_id)).state is JobState.COMPLETED


@pytest.mark.parametrize("rpc", ["CancelJob", "DeleteJob", "GetJob"])
async def test_unknown_and_malformed_job_ids(gateway: Gateway, rpc: str) -> None:
    call = getattr(gateway.sync_stub, rpc)
    request_type = getattr(pb, f"{rpc}Request")
    unknown = str(uuid.uuid4())

    error = await rpc_error(call, request_type(job_id=unknown))
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, f"no job {unknown}")
    assert facts(error) == ("JOB_NOT_FOUND", {"job_id": unknown})

    error = await rpc_error(call, request_type(job_id="job-1"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "job_id 'job-1' is not a UUID"
    assert facts(error) == ("INVALID_FIELD", {"field": "job_id"})


# -- DeleteJob ---------------------------------------------------------------------------


async def test_delete_removes_the_audio_and_the_job(
    gateway: Gateway, bucket_objects: Callable[[], tuple[list[str], list[str]]]
) -> None:
    job = await uploaded(gateway)
    assert bucket_objects()[0] == [f"audio/{job.job_id}"]

    await asyncio.to_thread(gateway.sync_stub.DeleteJob, pb.DeleteJobRequest(job_id=job.job_id))

    assert bucket_objects() == ([], [])
    assert await gateway.row_count() == 0
    error = await rpc_error(gateway.sync_stub.GetJob, pb.GetJobRequest(job_id=job.job_id))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await rpc_error(gateway.sync_stub.DeleteJob, pb.DeleteJobRequest(job_id=job.job_id))
    assert error.code() == grpc.StatusCode.NOT_FOUND


# -- WatchJob ----------------------------------------------------------------------------


async def test_a_watch_follows_a_job_from_its_current_state_to_its_end(
    gateway: Gateway, transcriber_jobs: EventingJobRepository
) -> None:
    uploaded_job = await uploaded(gateway)
    job = await stored(gateway, uploaded_job.job_id)

    async with watching(gateway, uploaded_job.job_id) as call:
        first = await next_job(call)
        assert (first.job_id, first.state) == (uploaded_job.job_id, job_pb2.JOB_STATE_QUEUED)

        job.start(job.create_time)
        assert await transcriber_jobs.update(job, expected=JobState.QUEUED)
        assert (await next_job(call)).state == job_pb2.JOB_STATE_PROCESSING

        job.progress = 0.4
        assert await transcriber_jobs.update(job, expected=JobState.PROCESSING)
        running = await next_job(call)
        assert running.state == job_pb2.JOB_STATE_PROCESSING
        assert running.progress == pytest.approx(0.4)
        assert not running.original_text, "the transcript comes once, at the end"

        job.complete(make_transcript(), job.create_time)
        assert await transcriber_jobs.update(job, expected=JobState.PROCESSING)
        done = await next_job(call)
        assert done.state == job_pb2.JOB_STATE_COMPLETED and done.progress == 1.0
        assert done.original_text == make_transcript().text and done.segments

        assert await ended(call) == grpc.StatusCode.OK


async def test_a_watch_of_an_ended_job_sends_it_once_and_ends(gateway: Gateway) -> None:
    job = await uploaded(gateway)
    await asyncio.to_thread(gateway.sync_stub.CancelJob, pb.CancelJobRequest(job_id=job.job_id))

    async with watching(gateway, job.job_id) as call:
        assert (await next_job(call)).state == job_pb2.JOB_STATE_CANCELLED
        assert await ended(call) == grpc.StatusCode.OK


async def test_a_watcher_sees_the_job_cancelled(gateway: Gateway) -> None:
    job = await uploaded(gateway)
    async with watching(gateway, job.job_id) as call:
        await next_job(call)
        await asyncio.to_thread(gateway.sync_stub.CancelJob, pb.CancelJobRequest(job_id=job.job_id))
        assert (await next_job(call)).state == job_pb2.JOB_STATE_CANCELLED
        assert await ended(call) == grpc.StatusCode.OK


async def test_a_watch_of_a_job_deleted_meanwhile_ends_not_found(gateway: Gateway) -> None:
    job = await uploaded(gateway)
    async with watching(gateway, job.job_id) as call:
        await next_job(call)
        await asyncio.to_thread(gateway.sync_stub.DeleteJob, pb.DeleteJobRequest(job_id=job.job_id))
        assert await ended(call) == grpc.StatusCode.NOT_FOUND
        assert await call.details() == (f"no job {job.job_id}: it was deleted while being watched")
        assert await call_facts(call) == ("JOB_NOT_FOUND", {"job_id": job.job_id}, None)


async def test_watching_an_unknown_or_malformed_job(gateway: Gateway) -> None:
    unknown = str(uuid.uuid4())
    async with watching(gateway, unknown) as call:
        assert await ended(call) == grpc.StatusCode.NOT_FOUND
        assert await call.details() == f"no job {unknown}"
    async with watching(gateway, "42") as call:
        assert await ended(call) == grpc.StatusCode.INVALID_ARGUMENT
        assert await call.details() == "job_id '42' is not a UUID"


async def test_a_stopping_gateway_ends_its_watches_at_once(gateway: Gateway) -> None:
    job = await uploaded(gateway)
    stopping = build_gateway(gateway.settings, gateway.adapters)
    port = await stopping.start("127.0.0.1", 0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
        call = stub.WatchJob(pb.WatchJobRequest(job_id=job.job_id))
        await next_job(call)

        # Well within the grace period an upload would get: a watch does not wait for it.
        async with asyncio.timeout(STEP):
            stopped = asyncio.create_task(stopping.stop(grace=30))
            assert await ended(call) == grpc.StatusCode.UNAVAILABLE
            await stopped
        assert await call.details() == "the gateway is shutting down; watch the job again"
        assert await call_facts(call) == ("GATEWAY_STOPPING", {}, SOON)


# -- Job events through RabbitMQ ---------------------------------------------------------


@pytest.fixture
def exchange() -> str:
    """An events exchange of this test's own, so no other test's events arrive."""
    return f"steno.test.events.{uuid.uuid4().hex[:12]}"


Wire = asyncio.Queue[aio_pika.abc.AbstractIncomingMessage]


@pytest.fixture
async def wire(settings: DevSettings, exchange: str) -> AsyncIterator[Wire]:
    """The test's exchange, and every message sent through it as it travels (deleted
    afterwards)."""
    assert settings.broker.url is not None
    connection = await aio_pika.connect(settings.broker.url.get_secret_value())
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_exchange(
            exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        listening = await channel.declare_queue(exclusive=True)
        await listening.bind(declared, routing_key="#")
        messages: Wire = asyncio.Queue()
        await listening.consume(messages.put, no_ack=True)
        yield messages
        await channel.exchange_delete(exchange)


def an_update(job_id: uuid.UUID, state: JobState, progress: float = 0.0) -> JobUpdate:
    return JobUpdate(job_id, "default", state, progress, T0)


async def test_job_events_reach_each_process_watching_the_job_and_no_other(
    settings: DevSettings, exchange: str, wire: Wire
) -> None:
    publisher, gateway_a, gateway_b = (amqp_events(settings, exchange) for _ in range(3))
    for events in (publisher, gateway_a, gateway_b):
        await events.connect()
    first, second = uuid.uuid4(), uuid.uuid4()
    try:
        async with (
            gateway_a.subscribe(first) as a_first,
            gateway_b.subscribe(first) as b_first,
            gateway_b.subscribe(second) as b_second,
        ):
            assert gateway_a.queue_name and gateway_a.queue_name != gateway_b.queue_name
            assert publisher.queue_name is None, "a process that only publishes has no queue"

            await publisher.publish(an_update(second, JobState.PROCESSING, 0.25))
            await publisher.publish(an_update(first, JobState.COMPLETED, 1.0))

            async with asyncio.timeout(STEP):
                got = [await a_first.next(), await b_first.next(), await b_second.next()]
            assert [(u.job_id, u.state, u.progress) for u in got] == [
                (first, JobState.COMPLETED, 1.0),
                (first, JobState.COMPLETED, 1.0),
                (second, JobState.PROCESSING, 0.25),
            ]
            assert got[0] == an_update(first, JobState.COMPLETED, 1.0)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await a_first.next()  # job two's update never reached job one's watcher

            async with asyncio.timeout(STEP):
                raw = await wire.get()
            assert raw.routing_key == str(second)
            assert (raw.content_type, raw.type) == ("application/x-protobuf", MESSAGE_TYPE)
            body = events_pb2.JobUpdated.FromString(raw.body)
            assert (body.job_id, body.state) == (str(second), job_pb2.JOB_STATE_PROCESSING)
    finally:
        for events in (publisher, gateway_a, gateway_b):
            await events.close()


async def test_an_unreadable_event_is_dropped_and_the_next_one_delivered(
    settings: DevSettings, exchange: str, wire: Wire
) -> None:
    events, publisher = amqp_events(settings, exchange), amqp_events(settings, exchange)
    await events.connect()
    await publisher.connect()
    job_id = uuid.uuid4()
    try:
        async with events.subscribe(job_id) as subscription:
            assert settings.broker.url is not None
            connection = await aio_pika.connect(settings.broker.url.get_secret_value())
            async with connection:
                channel = await connection.channel()
                target = await channel.get_exchange(exchange)
                for message in (
                    aio_pika.Message(b"\xff\xff", type=MESSAGE_TYPE),
                    aio_pika.Message(b"", type="steno.v1.SomethingElse"),
                ):
                    await target.publish(message, routing_key=str(job_id))
            await publisher.publish(an_update(job_id, JobState.FAILED))
            async with asyncio.timeout(STEP):
                assert (await subscription.next()).state is JobState.FAILED
    finally:
        await events.close()
        await publisher.close()


class BrokenEvents:
    """Job events whose broker is gone."""

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, update: JobUpdate) -> None:
        raise BrokerUnavailable("the broker did not take the job event")

    def subscribe(self, job_id: uuid.UUID) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError


async def test_a_write_whose_event_cannot_be_published_is_stored_all_the_same(
    gateway: Gateway,
) -> None:
    job = await stored(gateway, (await uploaded(gateway)).job_id)
    jobs = EventingJobRepository(SqlJobRepository(gateway.database), BrokenEvents())

    job.start(job.create_time)
    assert await jobs.update(job, expected=JobState.QUEUED)

    assert (await stored(gateway, str(job.job_id))).state is JobState.PROCESSING


# -- The SDK and the CLI -----------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STENO_API_KEY", raising=False)


async def steno(
    gateway: Gateway, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Runs ``steno ARGS`` against the gateway in a thread: exit status, stdout, stderr."""
    capsys.readouterr()
    status = await asyncio.to_thread(main, [*args, "--server", gateway.address])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


async def test_the_sdk_watches_a_job_to_its_end(
    gateway: Gateway, transcriber_jobs: EventingJobRepository
) -> None:
    job = await stored(gateway, (await uploaded(gateway)).job_id)
    seen: queue.Queue[job_pb2.Job | BaseException | None] = queue.Queue()

    def follow() -> None:
        try:
            with StenoClient(gateway.address) as client:
                for update in client.watch(str(job.job_id), timeout=30):
                    seen.put(update)
        except BaseException as exc:
            seen.put(exc)
        seen.put(None)

    async def next_seen() -> job_pb2.Job | BaseException | None:
        return await asyncio.to_thread(seen.get, timeout=STEP)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    first = await next_seen()
    assert isinstance(first, job_pb2.Job) and first.state == job_pb2.JOB_STATE_QUEUED
    job.start(job.create_time)
    assert await transcriber_jobs.update(job, expected=JobState.QUEUED)
    running = await next_seen()
    assert isinstance(running, job_pb2.Job) and running.state == job_pb2.JOB_STATE_PROCESSING
    job.fail(JobError("INVALID_ARGUMENT", "the audio could not be decoded"), job.create_time)
    assert await transcriber_jobs.update(job, expected=JobState.PROCESSING)
    failed = await next_seen()
    assert isinstance(failed, job_pb2.Job) and failed.state == job_pb2.JOB_STATE_FAILED
    assert await next_seen() is None, "the iteration ends after a terminal state"
    await asyncio.to_thread(thread.join, STEP)


async def test_the_cli_cancels_watches_and_deletes(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    job = await uploaded(gateway)

    status, out, _ = await steno(gateway, capsys, "cancel", job.job_id)
    assert (status, out) == (0, f"{job.job_id}  CANCELLED\n")

    status, out, _ = await steno(gateway, capsys, "watch", job.job_id, "--timeout", "30")
    assert (status, out) == (1, "CANCELLED     0%\n"), "only COMPLETED exits 0"

    status, _, err = await steno(gateway, capsys, "cancel", job.job_id)
    assert status == 1
    assert err == f"steno: FAILED_PRECONDITION: job {job.job_id} is CANCELLED; nothing to cancel\n"

    status, out, _ = await steno(gateway, capsys, "delete", job.job_id)
    assert (status, out) == (0, f"{job.job_id}  deleted\n")

    status, _, err = await steno(gateway, capsys, "watch", job.job_id)
    assert (status, err) == (1, f"steno: NOT_FOUND: no job {job.job_id}\n")


async def test_the_cli_watch_exits_0_for_a_completed_job(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    job = await uploaded(gateway)
    processor = JobProcessor(gateway.jobs, gateway.lexicons, gateway.store, {"local": FakeEngine()})
    await processor.handle(TranscriptionRequest(uuid.UUID(job.job_id), "default"))

    status, out, _ = await steno(gateway, capsys, "watch", job.job_id)

    assert (status, out) == (0, "COMPLETED   100%\n")
