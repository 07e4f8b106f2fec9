"""Uploads.accept: a chunk stream becomes one object, one QUEUED job and one queued request,
or, whatever goes wrong, none of them."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from steno.common.broker import TranscriptionRequest
from steno.common.errors import BrokerUnavailable, DatabaseUnavailable, StorageUnavailable
from steno.common.jobs import Job, JobState
from steno.common.partial_uploads import UploadRequest
from steno.common.storage import MIN_PART_BYTES
from steno.gateway.uploads import (
    InvalidUpload,
    RequestConflict,
    Uploads,
    UploadsBusy,
    UploadTooLarge,
)
from tests.fakes import (
    FakeJobRepository,
    FakeObjectStore,
    FakePartialUploadRepository,
    RecordingQueue,
    make_upload_request,
)
from tests.support import AUDIO

WAV = b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(range(256)) * 4
MAX_BYTES = 10_000


@dataclass
class World:
    jobs: FakeJobRepository
    store: FakeObjectStore
    queue: RecordingQueue
    uploads: Uploads

    def assert_nothing_left(self) -> None:
        assert self.store.objects == {}
        assert self.jobs.all() == []
        assert self.queue.published == []


def make_uploads(
    jobs: FakeJobRepository,
    store: FakeObjectStore,
    queue: RecordingQueue,
    *,
    max_bytes: int = MAX_BYTES,
    max_concurrent: int = 2,
) -> Uploads:
    return Uploads(
        jobs,
        FakePartialUploadRepository(),
        store,
        queue,
        part_size=MIN_PART_BYTES,
        max_bytes=max_bytes,
        max_concurrent=max_concurrent,
        keep_partial_for=timedelta(hours=24),
    )


@pytest.fixture
def world() -> World:
    jobs, store, queue = FakeJobRepository(), FakeObjectStore(), RecordingQueue()
    return World(jobs, store, queue, make_uploads(jobs, store, queue))


def request(**overrides: Any) -> UploadRequest:
    """Acme's standup, with the medical lexicon and a label; keyword arguments replace any field."""
    fields: dict[str, Any] = {
        "tenant": "acme",
        "filename": "standup.wav",
        "lexicon_id": "medical",
        "audio_retention": timedelta(hours=2),
        "labels": {"team": "blue"},
    }
    return make_upload_request(**(fields | overrides))


async def chunks_of(
    data: bytes, size: int = 100, *, then_raise: BaseException | None = None
) -> AsyncIterator[bytes]:
    """``data`` in ``size``-byte chunks, then ``then_raise`` if given."""
    for start in range(0, len(data), size):
        yield data[start : start + size]
    if then_raise is not None:
        raise then_raise


async def test_accepts_audio_and_queues_a_job(world: World) -> None:
    job = await world.uploads.accept(request(), chunks_of(WAV))

    assert job.state is JobState.QUEUED
    assert job.size_bytes == len(WAV)
    assert job.sha256 == hashlib.sha256(WAV).hexdigest()
    assert job.content_type == "audio/wav"
    assert (job.tenant, job.filename, job.language, job.lexicon_id, job.engine) == (
        "acme",
        "standup.wav",
        "en",
        "medical",
        "local",
    )
    assert job.audio_retention == timedelta(hours=2)
    assert job.labels == {"team": "blue"}
    assert job.create_time.utcoffset() == timedelta(0)
    # The object is committed with the sniffed type, byte for byte.
    assert world.store.objects == {job.object_key: WAV}
    assert world.store.content_types[job.object_key] == "audio/wav"
    assert [upload.completed for upload in world.store.uploads.values()] == [True]
    assert world.store.aborted_uploads == []
    # The row is stored as returned, and the request is queued, which the row notes.
    assert world.jobs.stored(job.job_id) == job
    assert world.queue.published == [TranscriptionRequest(job.job_id, "acme")]
    assert job.publish_time is not None


async def test_client_content_type_claims_do_not_matter(world: World) -> None:
    """A file called .mp3 that is really FLAC is stored as FLAC."""
    flac = (AUDIO / "speech.flac").read_bytes()
    uploads = make_uploads(world.jobs, world.store, world.queue, max_bytes=len(flac))

    job = await uploads.accept(request(filename="song.mp3"), chunks_of(flac, 4096))

    assert job.content_type == "audio/flac"
    assert world.store.objects[job.object_key] == flac
    assert job.sha256 == hashlib.sha256(flac).hexdigest()


@pytest.mark.parametrize("filename", ["../../etc/passwd", "/abs/path.wav", "a\\..\\b", ""])
async def test_object_key_is_server_chosen(world: World, filename: str) -> None:
    job = await world.uploads.accept(request(filename=filename), chunks_of(WAV))

    assert job.object_key == f"audio/{job.job_id}"
    assert re.fullmatch(
        r"audio/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", job.object_key
    )
    assert job.filename == filename
    assert list(world.store.objects) == [job.object_key]


async def test_each_upload_gets_its_own_job_and_key(world: World) -> None:
    first = await world.uploads.accept(request(), chunks_of(WAV))
    second = await world.uploads.accept(request(), chunks_of(WAV))

    assert first.job_id != second.job_id
    assert first.object_key != second.object_key
    assert len(world.store.objects) == 2
    assert len(world.queue.published) == 2


async def test_head_split_into_one_byte_chunks_still_sniffs(world: World) -> None:
    job = await world.uploads.accept(request(), chunks_of(WAV, size=1))

    assert job.content_type == "audio/wav"
    assert job.size_bytes == len(WAV)
    assert world.store.objects[job.object_key] == WAV


async def test_empty_chunks_are_skipped(world: World) -> None:
    async def with_gaps() -> AsyncIterator[bytes]:
        yield b""
        yield WAV[:5]
        yield b""
        yield WAV[5:]
        yield b""

    job = await world.uploads.accept(request(), with_gaps())

    assert job.content_type == "audio/wav"
    assert world.store.objects[job.object_key] == WAV


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"Good morning. Please give the report to the team.", id="text"),
        pytest.param(b"%PDF-1.7\n" + b"x" * 100, id="pdf"),
        pytest.param(b"PK\x03\x04" + b"\x00" * 100, id="zip"),
        pytest.param(b"\xff\xf1\x50\x80" + b"\x00" * 100, id="adts-aac"),
    ],
)
async def test_non_audio_is_rejected_leaving_nothing(world: World, data: bytes) -> None:
    with pytest.raises(InvalidUpload) as raised:
        await world.uploads.accept(request(), chunks_of(data))

    assert raised.value.field == "chunk"
    assert world.store.uploads == {}  # never started, so nothing to abort
    world.assert_nothing_left()


async def test_a_few_bytes_are_too_short_to_be_audio(world: World) -> None:
    """A bare MPEG sync word is no audio file: rejected before anything is stored."""
    with pytest.raises(InvalidUpload, match="too short"):
        await world.uploads.accept(request(), chunks_of(b"\xff\xfb"))

    assert world.store.uploads == {}
    world.assert_nothing_left()


@pytest.mark.parametrize("stream", [[], [b""], [b"", b"", b""]], ids=["none", "one", "many"])
async def test_stream_without_bytes_is_rejected(world: World, stream: list[bytes]) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in stream:
            yield chunk

    with pytest.raises(InvalidUpload, match="no audio") as raised:
        await world.uploads.accept(request(), chunks())

    assert raised.value.field == "chunk"
    assert world.store.uploads == {}
    world.assert_nothing_left()


async def test_upload_of_exactly_max_bytes_is_accepted(world: World) -> None:
    data = WAV + b"\x00" * (MAX_BYTES - len(WAV))

    job = await world.uploads.accept(request(), chunks_of(data, 1000))

    assert job.size_bytes == MAX_BYTES


async def test_upload_over_max_bytes_is_aborted(world: World) -> None:
    data = WAV + b"\x00" * (MAX_BYTES - len(WAV) + 1)

    with pytest.raises(UploadTooLarge):
        await world.uploads.accept(request(), chunks_of(data, 1000))

    [upload_id] = world.store.uploads
    assert world.store.aborted_uploads == [upload_id]
    world.assert_nothing_left()


async def test_stream_is_not_read_past_the_limit(world: World) -> None:
    """The upload stops at the first chunk over the limit, not at the end of the stream."""
    read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal read
        yield WAV
        while True:
            read += 1
            yield b"\x00" * 1000

    with pytest.raises(UploadTooLarge):
        await world.uploads.accept(request(), endless())

    assert read == (MAX_BYTES - len(WAV)) // 1000 + 1
    world.assert_nothing_left()


async def test_client_cancel_mid_stream_aborts_the_object(world: World) -> None:
    stream = chunks_of(WAV, 100, then_raise=asyncio.CancelledError())

    with pytest.raises(asyncio.CancelledError):
        await world.uploads.accept(request(), stream)

    [upload_id] = world.store.uploads
    assert world.store.aborted_uploads == [upload_id]
    world.assert_nothing_left()


async def test_client_cancel_before_the_head_leaves_nothing(world: World) -> None:
    stream = chunks_of(WAV[:4], 2, then_raise=asyncio.CancelledError())

    with pytest.raises(asyncio.CancelledError):
        await world.uploads.accept(request(), stream)

    assert world.store.uploads == {}
    world.assert_nothing_left()


async def test_stream_error_mid_stream_aborts_the_object(world: World) -> None:
    stream = chunks_of(WAV, 100, then_raise=ConnectionResetError("client went away"))

    with pytest.raises(ConnectionResetError):
        await world.uploads.accept(request(), stream)

    assert world.store.aborted_uploads == list(world.store.uploads)
    world.assert_nothing_left()


async def test_commit_failure_aborts_and_records_nothing(world: World) -> None:
    world.store.complete_error = StorageUnavailable("bucket is gone")

    with pytest.raises(StorageUnavailable):
        await world.uploads.accept(request(), chunks_of(WAV))

    assert world.store.aborted_uploads == list(world.store.uploads)
    world.assert_nothing_left()


async def test_failed_job_insert_deletes_the_object(world: World) -> None:
    world.jobs.add_error = DatabaseUnavailable("database is down")

    with pytest.raises(DatabaseUnavailable):
        await world.uploads.accept(request(), chunks_of(WAV))

    [upload] = world.store.uploads.values()
    assert upload.completed
    assert world.store.delete_calls == [[upload.key]]
    world.assert_nothing_left()


async def test_failed_publish_deletes_the_job_and_the_object(world: World) -> None:
    world.queue.error = BrokerUnavailable("broker did not confirm")

    with pytest.raises(BrokerUnavailable):
        await world.uploads.accept(request(), chunks_of(WAV))

    [upload] = world.store.uploads.values()
    job_id = upload.key.removeprefix("audio/")
    assert [str(deleted) for deleted in world.jobs.deleted] == [job_id]
    assert world.store.delete_calls == [[upload.key]]
    world.assert_nothing_left()


async def test_failed_publish_keeps_row_and_object_if_the_row_cannot_be_deleted(
    world: World,
) -> None:
    """A QUEUED row with its audio can still be queued later; one without could not."""
    world.queue.error = BrokerUnavailable("broker did not confirm")
    world.jobs.delete_error = DatabaseUnavailable("database is down")

    with pytest.raises(BrokerUnavailable):
        await world.uploads.accept(request(), chunks_of(WAV))

    [upload] = world.store.uploads.values()
    [job] = world.jobs.all()
    assert job.object_key == upload.key
    assert world.store.delete_calls == []
    assert list(world.store.objects) == [upload.key]


async def test_client_cancel_during_commit_still_records_and_queues_the_job(
    world: World,
) -> None:
    """Once every byte has arrived, the job is finished even if the client goes away."""
    world.store.complete_gate = asyncio.Event()
    upload = asyncio.create_task(world.uploads.accept(request(), chunks_of(WAV)))
    await world.store.complete_started.wait()

    upload.cancel()
    world.store.complete_gate.set()
    with pytest.raises(asyncio.CancelledError):
        await upload
    await asyncio.wait_for(_until(lambda: world.queue.published), timeout=5)

    [job] = world.jobs.all()
    assert list(world.store.objects) == [job.object_key]
    assert [r.job_id for r in world.queue.published] == [job.job_id]


async def test_uploads_beyond_the_concurrency_limit_are_refused(world: World) -> None:
    release = asyncio.Event()

    async def held_open() -> AsyncIterator[bytes]:
        yield WAV
        await release.wait()

    running = [asyncio.create_task(world.uploads.accept(request(), held_open())) for _ in "ab"]
    await asyncio.wait_for(_until(lambda: len(world.store.uploads) == 2), timeout=5)

    with pytest.raises(UploadsBusy, match="already taking 2 uploads"):
        await world.uploads.accept(request(), chunks_of(WAV))

    release.set()
    await asyncio.gather(*running)
    assert len(world.jobs.all()) == 2
    await world.uploads.accept(request(), chunks_of(WAV))  # a slot is free again
    assert len(world.jobs.all()) == 3


async def _until(condition: Callable[[], object]) -> None:
    while not condition():
        await asyncio.sleep(0)


async def test_a_retry_with_the_same_request_id_gets_the_same_job(world: World) -> None:
    first = await world.uploads.accept(request(request_id="r-1"), chunks_of(WAV))
    again = await world.uploads.accept(request(request_id="r-1"), chunks_of(WAV))

    assert again.job_id == first.job_id
    assert list(world.store.objects) == [first.object_key]
    assert len(world.store.uploads) == 1, "the retry's audio was hashed, not stored"
    # Still QUEUED, so the retry queues it again in case the first attempt could not.
    assert [r.job_id for r in world.queue.published] == [first.job_id, first.job_id]


async def test_the_same_request_id_with_other_audio_is_a_conflict(world: World) -> None:
    first = await world.uploads.accept(request(request_id="r-1"), chunks_of(WAV))
    with pytest.raises(RequestConflict, match=str(first.job_id)):
        await world.uploads.accept(request(request_id="r-1"), chunks_of(WAV + b"more"))

    assert list(world.store.objects) == [first.object_key]
    assert len(world.jobs.all()) == 1
    assert len(world.queue.published) == 1


async def test_request_ids_are_per_tenant(world: World) -> None:
    ours = await world.uploads.accept(request(request_id="r-1"), chunks_of(WAV))
    theirs = await world.uploads.accept(request(request_id="r-1", tenant="globex"), chunks_of(WAV))
    assert ours.job_id != theirs.job_id


async def test_two_racing_uploads_with_one_request_id_make_one_job() -> None:
    """The second upload checked before the first was recorded: the insert says duplicate."""

    class LateToSee(FakeJobRepository):
        checks = 0

        async def find_by_request(self, tenant: str, request_id: str) -> Job | None:
            self.checks += 1
            # 1, 2: the first upload's looks (as it starts, as it commits); 3: its add's
            # own uniqueness check in the fake; 4, 5: the racing upload's looks, which find
            # nothing yet.
            if self.checks in (4, 5):
                return None
            return await super().find_by_request(tenant, request_id)

    jobs, store, queue = LateToSee(), FakeObjectStore(), RecordingQueue()
    uploads = make_uploads(jobs, store, queue)
    first = await uploads.accept(request(request_id="r-1"), chunks_of(WAV))
    second = await uploads.accept(request(request_id="r-1"), chunks_of(WAV))

    assert second.job_id == first.job_id
    assert list(store.objects) == [first.object_key], "the loser's object is deleted"
    loser = [upload for upload in store.uploads.values() if upload.key != first.object_key]
    assert [upload.completed for upload in loser] == [True]
    assert store.delete_calls == [[loser[0].key]]


async def test_a_failed_request_id_lookup_abandons_the_object(world: World) -> None:
    async def unavailable(tenant: str, request_id: str) -> Job | None:
        raise DatabaseUnavailable("database is down")

    world.jobs.find_by_request = unavailable  # type: ignore[method-assign]
    with pytest.raises(DatabaseUnavailable):
        await world.uploads.accept(request(request_id="r-1"), chunks_of(WAV))

    assert world.store.uploads == {}, "looked up before anything was stored"
    world.assert_nothing_left()


async def test_a_job_with_a_request_id_that_could_not_be_queued_is_queued_by_the_retry(
    world: World,
) -> None:
    world.queue.error = BrokerUnavailable("broker did not confirm")
    with pytest.raises(BrokerUnavailable):
        await world.uploads.accept(request(request_id="r-1"), chunks_of(WAV))
    [kept] = world.jobs.all()
    assert list(world.store.objects) == [kept.object_key], "kept for the retry"

    world.queue.error = None
    again = await world.uploads.accept(request(request_id="r-1"), chunks_of(WAV))

    assert again.job_id == kept.job_id
    assert [r.job_id for r in world.queue.published] == [kept.job_id]


async def test_a_slot_is_held_until_the_upload_is_recorded_and_drain_waits_for_it(
    world: World,
) -> None:
    world.store.complete_gate = asyncio.Event()
    uploads = [asyncio.create_task(world.uploads.accept(request(), chunks_of(WAV))) for _ in "ab"]
    await asyncio.wait_for(_until(lambda: len(world.store.uploads) == 2), timeout=5)
    await world.store.complete_started.wait()
    for upload in uploads:
        upload.cancel()  # the clients leave while their uploads are being recorded

    with pytest.raises(UploadsBusy):
        await world.uploads.accept(request(), chunks_of(WAV))

    world.store.complete_gate.set()
    await world.uploads.drain()
    assert len(world.jobs.all()) == 2
    await world.uploads.accept(request(), chunks_of(WAV))  # the slots are free again
