"""UploadAudio, GetJob and ListJobs against the real Postgres, RabbitMQ and S3.

Every rejected upload is checked for what it leaves behind: no job row, no object, no
unfinished multipart upload and no queued message.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import aio_pika
import grpc
import pytest
from google.rpc import error_details_pb2

from steno.cli.dev import DevSettings
from steno.v1 import job_pb2
from steno.v1 import transcription_service_pb2 as pb
from tests.integration.conftest import Gateway
from tests.rpc_details import details_of, facts, field_violations
from tests.support import AUDIO

CHUNK = 64 * 1024
WAV_HEAD = b"RIFF\x00\x00\x00\x00WAVEfmt "


def metadata_message(**fields: object) -> pb.UploadAudioRequest:
    return pb.UploadAudioRequest(metadata=pb.UploadMetadata(filename="speech.wav", **fields))


def chunks_of(data: bytes, size: int = CHUNK) -> list[pb.UploadAudioRequest]:
    return [pb.UploadAudioRequest(chunk=data[i : i + size]) for i in range(0, len(data), size)]


async def upload(
    gateway: Gateway, messages: Iterable[pb.UploadAudioRequest]
) -> pb.UploadAudioResponse:
    """Streams ``messages`` with the blocking client, in a thread."""
    return await asyncio.to_thread(gateway.sync_stub.UploadAudio, iter(messages))


def zeros_wav(size: int) -> Iterable[pb.UploadAudioRequest]:
    """A WAV header followed by silence, ``size`` bytes in all, generated chunk by chunk."""
    yield pb.UploadAudioRequest(chunk=WAV_HEAD)
    sent = len(WAV_HEAD)
    block = bytes(CHUNK)
    while sent < size:
        piece = block[: min(CHUNK, size - sent)]
        sent += len(piece)
        yield pb.UploadAudioRequest(chunk=piece)


async def then_silence(size: int, hold: asyncio.Event) -> AsyncIterator[pb.UploadAudioRequest]:
    """Metadata and ``size`` bytes of WAV, then nothing until ``hold`` is set."""
    yield metadata_message()
    for message in zeros_wav(size):
        yield message
    await hold.wait()


async def queued_messages(settings: DevSettings, queue_name: str | None = None) -> int:
    """Messages ready in the test's queue (or in ``queue_name``)."""
    assert settings.broker.url is not None
    connection = await aio_pika.connect(settings.broker.url.get_secret_value())
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name or settings.broker.queue, passive=True)
        count = queue.declaration_result.message_count
        assert count is not None
        return count


async def assert_nothing_left(gateway: Gateway, rows_before: int, bucket_objects: Callable) -> None:
    assert await gateway.row_count() == rows_before, "a rejected upload left a job row"
    objects, uploads = bucket_objects()
    assert objects == [], "a rejected upload left an object"
    assert uploads == [], "a rejected upload left an unfinished multipart upload"
    assert await queued_messages(gateway.settings) == 0, "a rejected upload queued a message"


async def test_upload_stores_object_records_job_and_queues_it(
    gateway: Gateway, s3_server, bucket: str
) -> None:
    audio = (AUDIO / "speech.wav").read_bytes()
    response = await upload(gateway, [metadata_message(labels={"team": "qa"}), *chunks_of(audio)])
    job = response.job
    assert job.state == job_pb2.JOB_STATE_QUEUED
    assert job.size_bytes == len(audio)
    assert job.sha256 == hashlib.sha256(audio).hexdigest()
    assert job.content_type == "audio/wav"
    assert job.engine == "local"
    assert dict(job.labels) == {"team": "qa"}

    stored = await gateway.jobs.get(uuid.UUID(job.job_id))
    assert stored is not None
    assert stored.object_key == f"audio/{job.job_id}"
    body = s3_server.client().get_object(Bucket=bucket, Key=stored.object_key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == job.sha256

    assert await queued_messages(gateway.settings) == 1


async def test_upload_streams_large_files_as_multipart(gateway: Gateway, s3_server, bucket) -> None:
    """20 MB crosses the 8 MiB part size: the object is assembled from parts, intact."""
    size = 20 * 1024 * 1024
    digest = hashlib.sha256()
    messages = list(zeros_wav(size))
    for message in messages:
        digest.update(message.chunk)
    response = await upload(gateway, [metadata_message(), *messages])
    assert response.job.size_bytes == size
    assert response.job.sha256 == digest.hexdigest()
    head = s3_server.client().head_object(Bucket=bucket, Key=f"audio/{response.job.job_id}")
    assert head["ContentLength"] == size
    assert "-" in head["ETag"], "expected a multipart ETag"


@pytest.mark.parametrize(
    ("messages", "field", "phrase"),
    [
        pytest.param([], "metadata", "empty", id="empty-stream"),
        pytest.param(
            chunks_of(b"RIFF0000WAVE" * 10), "metadata", "first message", id="no-metadata"
        ),
        pytest.param(
            [metadata_message(), *chunks_of(b"RIFF0000WAVE" * 10), metadata_message()],
            "metadata",
            "only be sent once",
            id="metadata-twice",
        ),
        pytest.param([metadata_message()], "chunk", "no audio", id="metadata-only"),
        pytest.param(
            [metadata_message(), *chunks_of(WAV_HEAD), pb.UploadAudioRequest()],
            "chunk",
            "must carry a chunk",
            id="message-without-payload",
        ),
        pytest.param(
            [metadata_message(), *chunks_of(b"%PDF-1.7\n" + b"x" * 300_000)],
            "chunk",
            "not a supported audio",
            id="not-audio",
        ),
        pytest.param(
            [metadata_message(language="english!"), *chunks_of(WAV_HEAD)],
            "metadata.language",
            "BCP-47",
            id="bad-language",
        ),
        pytest.param(
            [metadata_message(lexicon_id="platform-team"), *chunks_of(WAV_HEAD)],
            "metadata.lexicon_id",
            "must be the UUID",
            id="lexicon-id-not-a-uuid",
        ),
        pytest.param(
            [metadata_message(language="en-" + "-".join(["abcdefgh"] * 6)), *chunks_of(WAV_HEAD)],
            "metadata.language",
            "BCP-47",
            id="long-language",
        ),
        pytest.param(
            [
                pb.UploadAudioRequest(metadata=pb.UploadMetadata(filename="a\x00b.wav")),
                *chunks_of(WAV_HEAD),
            ],
            "metadata.filename",
            "without NUL",
            id="nul-in-filename",
        ),
        pytest.param(
            [metadata_message(engine="nonesuch"), *chunks_of(WAV_HEAD)],
            "metadata.engine",
            "engine must be one of",
            id="unknown-engine",
        ),
    ],
)
async def test_bad_upload_is_invalid_argument_and_leaves_nothing(
    gateway: Gateway,
    bucket_objects: Callable,
    messages: list[pb.UploadAudioRequest],
    field: str,
    phrase: str,
) -> None:
    rows_before = await gateway.row_count()
    with pytest.raises(grpc.RpcError) as caught:
        await upload(gateway, messages)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert phrase in (caught.value.details() or "")
    assert field_violations(caught.value) == [field]
    await assert_nothing_left(gateway, rows_before, bucket_objects)


async def test_an_unknown_lexicon_is_not_found_and_leaves_nothing(
    gateway: Gateway, bucket_objects: Callable
) -> None:
    missing = str(uuid.uuid4())
    rows_before = await gateway.row_count()
    with pytest.raises(grpc.RpcError) as caught:
        await upload(gateway, [metadata_message(lexicon_id=missing), *chunks_of(WAV_HEAD)])
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"no lexicon {missing}" in (caught.value.details() or "")
    assert facts(caught.value) == ("LEXICON_NOT_FOUND", {"lexicon_id": missing})
    await assert_nothing_left(gateway, rows_before, bucket_objects)


async def test_negative_retention_is_rejected(gateway: Gateway, bucket_objects: Callable) -> None:
    message = metadata_message()
    message.metadata.audio_retention.FromSeconds(-1)
    rows_before = await gateway.row_count()
    with pytest.raises(grpc.RpcError) as caught:
        await upload(gateway, [message, *chunks_of(WAV_HEAD)])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == ["metadata.audio_retention"]
    await assert_nothing_left(gateway, rows_before, bucket_objects)


class TestSizeLimit:
    LIMIT = 12 * 1024 * 1024

    @pytest.fixture
    def settings(self, settings: DevSettings) -> DevSettings:
        uploads = settings.uploads.model_copy(update={"max_upload_bytes": self.LIMIT})
        return settings.model_copy(update={"uploads": uploads})

    async def test_over_the_limit_is_resource_exhausted_and_leaves_nothing(
        self, gateway: Gateway, bucket_objects: Callable
    ) -> None:
        """20 MB against a 12 MiB limit: a multipart upload was under way and is aborted."""
        rows_before = await gateway.row_count()
        with pytest.raises(grpc.RpcError) as caught:
            await upload(gateway, [metadata_message(), *zeros_wav(20 << 20)])
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert str(self.LIMIT) in (caught.value.details() or "")
        assert facts(caught.value) == ("UPLOAD_TOO_LARGE", {"limit": str(self.LIMIT)})
        assert details_of(caught.value, error_details_pb2.RetryInfo) == [], "waiting cannot help"
        await assert_nothing_left(gateway, rows_before, bucket_objects)

    async def test_exactly_the_limit_is_accepted(self, gateway: Gateway) -> None:
        response = await upload(gateway, [metadata_message(), *zeros_wav(self.LIMIT)])
        assert response.job.size_bytes == self.LIMIT


class TestIdleClient:
    @pytest.fixture
    def settings(self, settings: DevSettings) -> DevSettings:
        uploads = settings.uploads.model_copy(update={"upload_idle_timeout_seconds": 0.5})
        return settings.model_copy(update={"uploads": uploads})

    async def test_a_client_that_goes_quiet_is_cut_off_and_leaves_nothing(
        self, gateway: Gateway, bucket_objects: Callable
    ) -> None:
        """10 MB (a multipart upload is open), then silence: DEADLINE_EXCEEDED, all undone."""
        rows_before = await gateway.row_count()
        hold = asyncio.Event()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await gateway.stub.UploadAudio(then_silence(10 << 20, hold))
        hold.set()
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "sent nothing for 0.5 s" in (caught.value.details() or "")
        assert facts(caught.value) == ("UPLOAD_STALLED", {})
        await assert_nothing_left(gateway, rows_before, bucket_objects)


async def test_client_cancelling_mid_stream_leaves_nothing(
    gateway: Gateway, bucket_objects: Callable
) -> None:
    """The client sends 10 MB (so a multipart upload is open in S3), then goes away."""
    rows_before = await gateway.row_count()
    hold = asyncio.Event()
    call = gateway.stub.UploadAudio(then_silence(10 << 20, hold))
    await wait_async(lambda: bucket_objects()[1] != [], "the multipart upload to start")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await wait_async(lambda: bucket_objects()[1] == [], "the multipart upload to be aborted")
    await assert_nothing_left(gateway, rows_before, bucket_objects)


async def wait_async(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Awaits ``condition`` (checked in a thread: it may block) with a timeout."""

    async def poll() -> None:
        while not await asyncio.to_thread(condition):
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


async def test_get_job_reads_an_uploaded_job(gateway: Gateway) -> None:
    uploaded = await upload(
        gateway, ([metadata_message(), *chunks_of((AUDIO / "speech.ogg").read_bytes())])
    )
    got = await gateway.stub.GetJob(pb.GetJobRequest(job_id=uploaded.job.job_id))
    assert got.job == uploaded.job
    assert got.job.content_type == "audio/ogg"


async def test_get_unknown_job_is_not_found(gateway: Gateway) -> None:
    job_id = str(uuid.uuid4())
    with pytest.raises(grpc.RpcError) as caught:
        await gateway.stub.GetJob(pb.GetJobRequest(job_id=job_id))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert job_id in (caught.value.details() or "")
    assert facts(caught.value) == ("JOB_NOT_FOUND", {"job_id": job_id})


async def test_get_malformed_job_id_is_invalid_argument(gateway: Gateway) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        await gateway.stub.GetJob(pb.GetJobRequest(job_id="not-a-uuid"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == ["job_id"]


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"page_size": -1}, "page_size"),
        ({"page_token": "garbage!"}, "page_token"),
    ],
)
async def test_list_jobs_rejects_bad_paging(
    gateway: Gateway, request_fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        await gateway.stub.ListJobs(pb.ListJobsRequest(**request_fields))  # type: ignore[arg-type]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == [field]


async def test_list_jobs_pages_newest_first_and_filters_by_state(gateway: Gateway) -> None:
    audio = (AUDIO / "speech.flac").read_bytes()
    uploaded = []
    for _ in range(3):
        response = await upload(gateway, [metadata_message(), *chunks_of(audio)])
        uploaded.append(response.job.job_id)

    seen: list[str] = []
    token = ""
    while True:
        page = await gateway.stub.ListJobs(pb.ListJobsRequest(page_size=2, page_token=token))
        assert len(page.jobs) <= 2
        assert all(not job.original_text and not job.segments for job in page.jobs), "BASIC view"
        seen += [job.job_id for job in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert seen[:3] == list(reversed(uploaded)), "newest first"
    assert len(seen) == len(set(seen)), "no job twice across pages"

    completed = await gateway.stub.ListJobs(
        pb.ListJobsRequest(states=[job_pb2.JOB_STATE_COMPLETED])
    )
    assert [j.job_id for j in completed.jobs if j.job_id in uploaded] == []


async def test_a_retried_upload_with_a_request_id_gets_its_job_back(
    gateway: Gateway, bucket_objects: Callable
) -> None:
    audio = (AUDIO / "speech.ogg").read_bytes()
    first = await upload(gateway, [metadata_message(request_id="up-1"), *chunks_of(audio)])
    again = await upload(gateway, [metadata_message(request_id="up-1"), *chunks_of(audio)])
    assert again.job == first.job

    with pytest.raises(grpc.RpcError) as caught:
        await upload(gateway, [metadata_message(request_id="up-1"), *chunks_of(audio + b"x")])
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert first.job.job_id in (caught.value.details() or "")
    assert facts(caught.value) == (
        "REQUEST_ID_REUSED",
        {"request_id": "up-1", "job_id": first.job.job_id},
    )

    assert bucket_objects() == ([f"audio/{first.job.job_id}"], [])
    assert await gateway.row_count() == 1
    # The retry queued the still-QUEUED job once more; a worker claims it only once.
    assert await queued_messages(gateway.settings) == 2


async def upload_status(gateway: Gateway, request_id: str) -> pb.GetUploadStatusResponse:
    response: pb.GetUploadStatusResponse = await gateway.stub.GetUploadStatus(
        pb.GetUploadStatusRequest(request_id=request_id)
    )
    return response


async def committed(gateway: Gateway, request_id: str) -> int:
    """The upload's committed bytes; 0 before the server has recorded it."""
    try:
        return (await upload_status(gateway, request_id)).committed_bytes
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return 0


async def test_a_broken_upload_is_continued_from_the_offset_get_upload_status_gives(
    gateway: Gateway, bucket_objects: Callable, s3_server, bucket: str
) -> None:
    """20 MB with a request_id; the client goes away after 10 MB, when one 8 MiB part is
    stored; the rest, sent from the committed offset, completes one job of the whole file."""
    audio = WAV_HEAD + random.randbytes(20 * 1024 * 1024 - len(WAV_HEAD))
    hold = asyncio.Event()

    async def first_ten_mb() -> AsyncIterator[pb.UploadAudioRequest]:
        yield metadata_message(request_id="big-1", labels={"take": "one"})
        for message in chunks_of(audio[: 10 * 1024 * 1024]):
            yield message
        await hold.wait()

    call = gateway.stub.UploadAudio(first_ten_mb())
    part = gateway.settings.uploads.upload_part_bytes

    async def one_part_stored() -> bool:
        return await committed(gateway, "big-1") == part

    await wait_until(one_part_stored, "the first part to be recorded")
    call.cancel()
    hold.set()
    status = await upload_status(gateway, "big-1")
    assert not status.HasField("job")
    assert status.expire_time.ToDatetime().year >= 2026

    rest = [metadata_message(request_id="big-1", offset=part), *chunks_of(audio[part:])]
    job = (await upload(gateway, rest)).job

    assert job.size_bytes == len(audio)
    assert job.sha256 == hashlib.sha256(audio).hexdigest()
    assert dict(job.labels) == {"take": "one"}, "the first stream's metadata stands"
    body = s3_server.client().get_object(Bucket=bucket, Key=f"audio/{job.job_id}")["Body"]
    assert hashlib.sha256(body.read()).hexdigest() == job.sha256
    assert bucket_objects() == ([f"audio/{job.job_id}"], [])
    done = await upload_status(gateway, "big-1")
    assert (done.committed_bytes, done.job.job_id) == (len(audio), job.job_id)
    assert await gateway.row_count() == 1


async def test_continuing_from_the_wrong_place_is_refused_with_the_right_offset(
    gateway: Gateway,
) -> None:
    hold = asyncio.Event()

    async def nine_mb() -> AsyncIterator[pb.UploadAudioRequest]:
        yield metadata_message(request_id="big-2")
        for message in zeros_wav(9 * 1024 * 1024):
            yield message
        await hold.wait()

    call = gateway.stub.UploadAudio(nine_mb())
    part = gateway.settings.uploads.upload_part_bytes

    async def one_part_stored() -> bool:
        return await committed(gateway, "big-2") == part

    await wait_until(one_part_stored, "the first part to be recorded")
    call.cancel()
    hold.set()

    with pytest.raises(grpc.RpcError) as caught:
        await upload(gateway, [metadata_message(request_id="big-2", offset=100), *chunks_of(b"x")])
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"continue it from offset {part}" in (caught.value.details() or "")
    assert facts(caught.value) == (
        "WRONG_OFFSET",
        {"request_id": "big-2", "committed_bytes": str(part)},
    )
    assert (await upload_status(gateway, "big-2")).committed_bytes == part


@pytest.mark.parametrize(
    ("metadata", "code", "phrase"),
    [
        pytest.param(
            {"offset": 10}, grpc.StatusCode.INVALID_ARGUMENT, "only an upload with a request_id"
        ),
        pytest.param(
            {"offset": -1, "request_id": "r"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "must not be negative",
        ),
        pytest.param(
            {"offset": 10, "request_id": "never-started"},
            grpc.StatusCode.NOT_FOUND,
            "start it again from offset 0",
        ),
    ],
)
async def test_a_continuing_stream_that_cannot_continue_is_refused(
    gateway: Gateway,
    bucket_objects: Callable,
    metadata: dict[str, object],
    code: grpc.StatusCode,
    phrase: str,
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        await upload(gateway, [metadata_message(**metadata), *chunks_of(bytes(1000))])
    assert caught.value.code() == code
    assert phrase in (caught.value.details() or "")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert field_violations(caught.value) == ["metadata.offset"]
    await assert_nothing_left(gateway, 0, bucket_objects)


async def test_continuing_a_finished_upload_names_its_job(gateway: Gateway) -> None:
    audio = (AUDIO / "speech.ogg").read_bytes()
    job = (await upload(gateway, [metadata_message(request_id="up-2"), *chunks_of(audio)])).job

    with pytest.raises(grpc.RpcError) as caught:
        await upload(gateway, [metadata_message(request_id="up-2", offset=5), *chunks_of(b"x")])
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert job.job_id in (caught.value.details() or "")
    assert facts(caught.value) == (
        "UPLOAD_ALREADY_COMPLETE",
        {"request_id": "up-2", "job_id": job.job_id},
    )


async def test_get_upload_status_of_nothing_is_not_found_and_needs_a_request_id(
    gateway: Gateway,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await upload_status(gateway, "no-such-upload")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert facts(caught.value) == ("UPLOAD_NOT_FOUND", {"request_id": "no-such-upload"})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await upload_status(gateway, "")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id is required" in (caught.value.details() or "")


async def wait_until(
    condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 30
) -> None:
    """Awaits an async ``condition``, polling, with a timeout."""
    try:
        async with asyncio.timeout(timeout):
            while not await condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None
