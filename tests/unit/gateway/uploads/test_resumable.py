"""Uploads with a request_id survive a broken stream: the parts stored so far are recorded,
and a new stream (on any gateway) continues from the last of them."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from steno.common.errors import BrokerUnavailable, DatabaseUnavailable, StorageUnavailable
from steno.common.jobs import Job, JobState
from steno.common.partial_uploads import UploadRequest
from steno.common.storage import MIN_PART_BYTES, StoredPart
from steno.gateway.uploads import (
    InvalidUpload,
    RequestConflict,
    UploadFinished,
    UploadNotFound,
    Uploads,
    UploadTakenOver,
    UploadTooLarge,
    WrongOffset,
)
from tests.fakes import (
    FakeJobRepository,
    FakeObjectStore,
    FakePartialUploadRepository,
    RecordingQueue,
    make_job,
    make_upload_request,
)

PART = MIN_PART_BYTES
NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
KEEP = timedelta(hours=24)
# A WAV header, then bytes that tell every part apart.
AUDIO = b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(i % 253 for i in range(3 * PART + 4321))
TOTAL = len(AUDIO)


class Broken(Exception):
    """The client's stream broke."""


@dataclass
class World:
    jobs: FakeJobRepository
    partials: FakePartialUploadRepository
    store: FakeObjectStore
    queue: RecordingQueue
    uploads: Uploads

    def gateway(self, *, max_bytes: int = 10 * PART, part_size: int = PART) -> Uploads:
        """Another gateway over the same database, store and broker."""
        return Uploads(
            self.jobs,
            self.partials,
            self.store,
            self.queue,
            part_size=part_size,
            max_bytes=max_bytes,
            max_concurrent=4,
            keep_partial_for=KEEP,
            clock=lambda: NOW,
        )


@pytest.fixture
def world() -> World:
    jobs, partials = FakeJobRepository(), FakePartialUploadRepository()
    store, queue = FakeObjectStore(), RecordingQueue()
    world = World(jobs, partials, store, queue, uploads=None)  # type: ignore[arg-type]
    world.uploads = world.gateway()
    return world


def request(**overrides: Any) -> UploadRequest:
    """Acme's all-hands recording, resumable as upload-1; keyword arguments replace any field."""
    fields: dict[str, Any] = {
        "tenant": "acme",
        "filename": "all-hands.wav",
        "audio_retention": timedelta(hours=2),
        "request_id": "upload-1",
    }
    return make_upload_request(**(fields | overrides))


async def stream(data: bytes, *, break_after: int | None = None) -> AsyncIterator[bytes]:
    """``data`` in 64 KiB chunks; breaks once ``break_after`` bytes have been sent."""
    sent = 0
    for start in range(0, len(data), 64 * 1024):
        if break_after is not None and sent >= break_after:
            raise Broken()
        chunk = data[start : start + 64 * 1024]
        sent += len(chunk)
        yield chunk


async def broken_upload(world: World, break_after: int) -> None:
    with pytest.raises(Broken):
        await world.uploads.accept(request(), stream(AUDIO, break_after=break_after))


async def test_a_broken_upload_continued_from_its_committed_offset_makes_one_whole_job(
    world: World,
) -> None:
    await broken_upload(world, break_after=int(TOTAL * 0.7))

    status = await world.uploads.status("acme", "upload-1")
    assert status.job is None
    assert status.committed_bytes == 2 * PART, "two whole parts had been stored"
    assert status.expire_time == NOW + KEEP

    other_gateway = world.gateway()
    job = await other_gateway.accept(
        request(), stream(AUDIO[status.committed_bytes :]), offset=status.committed_bytes
    )

    assert job.state is JobState.QUEUED
    assert job.size_bytes == TOTAL
    assert job.sha256 == hashlib.sha256(AUDIO).hexdigest()
    assert job.content_type == "audio/wav", "known from the first stream's head"
    assert world.store.objects == {job.object_key: AUDIO}
    assert world.store.open_uploads() == []
    assert [j.job_id for j in world.jobs.all()] == [job.job_id]
    assert await world.partials.get("acme", "upload-1") is None, "the record is dropped"
    done = await world.uploads.status("acme", "upload-1")
    assert (done.committed_bytes, done.job) == (TOTAL, world.jobs.stored(job.job_id))


async def test_a_continuing_stream_keeps_the_metadata_the_upload_started_with(
    world: World,
) -> None:
    await broken_upload(world, break_after=PART + 1)

    job = await world.uploads.accept(
        request(filename="other.wav", language="de", audio_retention=timedelta(0)),
        stream(AUDIO[PART:]),
        offset=PART,
    )

    assert (job.filename, job.language, job.audio_retention) == (
        "all-hands.wav",
        "en",
        timedelta(hours=2),
    )


async def test_continuing_from_anywhere_but_the_committed_offset_is_refused(
    world: World,
) -> None:
    await broken_upload(world, break_after=2 * PART + 1)

    for offset in (PART, 2 * PART + 10):
        with pytest.raises(WrongOffset, match=f"continue it from offset {2 * PART}"):
            await world.uploads.accept(request(), stream(AUDIO[offset:]), offset=offset)

    assert (await world.uploads.status("acme", "upload-1")).committed_bytes == 2 * PART
    assert world.jobs.all() == []


async def test_continuing_an_unknown_upload_is_not_found(world: World) -> None:
    with pytest.raises(UploadNotFound, match="start it again from offset 0"):
        await world.uploads.accept(request(), stream(AUDIO[PART:]), offset=PART)
    with pytest.raises(UploadNotFound):
        await world.uploads.status("acme", "upload-1")
    assert world.store.open_uploads() == []


async def test_uploads_are_per_tenant(world: World) -> None:
    await broken_upload(world, break_after=PART + 1)

    with pytest.raises(UploadNotFound):
        await world.uploads.status("globex", "upload-1")
    with pytest.raises(UploadNotFound):
        await world.uploads.accept(request(tenant="globex"), stream(AUDIO[PART:]), offset=PART)


async def test_continuing_a_finished_upload_names_its_job(world: World) -> None:
    job = await world.uploads.accept(request(), stream(AUDIO))

    with pytest.raises(UploadFinished, match=str(job.job_id)):
        await world.uploads.accept(request(), stream(AUDIO[PART:]), offset=PART)
    assert len(world.jobs.all()) == 1


async def test_the_status_of_a_job_its_upload_could_not_queue_queues_it(world: World) -> None:
    """The client is told about a job only once it is on its way to a worker."""
    world.queue.error = BrokerUnavailable("the broker did not confirm")
    with pytest.raises(BrokerUnavailable):
        await world.uploads.accept(request(), stream(AUDIO))
    with pytest.raises(BrokerUnavailable):
        await world.uploads.status("acme", "upload-1")

    world.queue.error = None
    status = await world.uploads.status("acme", "upload-1")
    assert status.job is not None
    assert [r.job_id for r in world.queue.published] == [status.job.job_id]
    assert world.jobs.stored(status.job.job_id).publish_time is not None

    await world.uploads.status("acme", "upload-1")
    assert len(world.queue.published) == 1, "a queued job is not queued again"


async def test_a_retry_of_a_finished_upload_is_hashed_not_stored(world: World) -> None:
    job = await world.uploads.accept(request(), stream(AUDIO))
    uploads_started = len(world.store.uploads)

    again = await world.uploads.accept(request(), stream(AUDIO))

    assert again.job_id == job.job_id
    assert len(world.store.uploads) == uploads_started, "the retry stored nothing"


async def test_a_stream_taken_over_stops_and_leaves_the_parts_to_the_new_one(
    world: World,
) -> None:
    """A client that gave up on a slow stream and continued it in another: the old
    stream's next part is refused, and it neither aborts nor completes the upload."""
    old_may_go_on, new_may_go_on = asyncio.Event(), asyncio.Event()

    async def old_stream() -> AsyncIterator[bytes]:
        async for chunk in stream(AUDIO[: 2 * PART]):
            yield chunk
        await old_may_go_on.wait()
        yield AUDIO[2 * PART : 3 * PART]  # a whole part: stored, then refused when recorded
        while True:  # trickles on; the refusal surfaces at the next write after it
            await asyncio.sleep(0.01)
            yield bytes(10)

    async def new_stream() -> AsyncIterator[bytes]:
        yield AUDIO[2 * PART : 2 * PART + 1000]
        await new_may_go_on.wait()
        yield AUDIO[2 * PART + 1000 :]

    old = asyncio.create_task(world.uploads.accept(request(), old_stream()))
    await _until(lambda: _committed(world) == 2 * PART)
    first_stream = _stream_of(world)
    new = asyncio.create_task(world.gateway().accept(request(), new_stream(), offset=2 * PART))
    await _until(lambda: _stream_of(world) != first_stream)

    old_may_go_on.set()
    with pytest.raises(UploadTakenOver):
        await asyncio.wait_for(old, timeout=10)
    assert world.store.open_uploads(), "the old stream left the upload open"
    new_may_go_on.set()
    job = await asyncio.wait_for(new, timeout=10)

    assert world.store.objects == {job.object_key: AUDIO}
    assert len(world.jobs.all()) == 1


async def test_starting_again_from_the_first_byte_replaces_the_unfinished_upload(
    world: World,
) -> None:
    await broken_upload(world, break_after=PART + 1)
    (abandoned,) = world.store.open_uploads()

    job = await world.uploads.accept(request(), stream(AUDIO))

    assert abandoned in world.store.aborted_uploads
    assert world.store.open_uploads() == []
    assert world.store.objects == {job.object_key: AUDIO}


async def test_a_continuing_stream_over_the_limit_discards_the_whole_upload(
    world: World,
) -> None:
    await broken_upload(world, break_after=PART + 1)

    with pytest.raises(UploadTooLarge):
        await world.gateway(max_bytes=TOTAL - 1).accept(
            request(), stream(AUDIO[PART:]), offset=PART
        )

    assert world.store.open_uploads() == []
    assert await world.partials.get("acme", "upload-1") is None
    assert world.jobs.all() == []


async def test_non_audio_with_a_request_id_leaves_no_record(world: World) -> None:
    with pytest.raises(InvalidUpload):
        await world.uploads.accept(request(), stream(b"<html>" + bytes(PART)))

    assert await world.partials.get("acme", "upload-1") is None
    assert world.store.open_uploads() == []


async def test_a_store_outage_while_completing_keeps_the_parts_for_a_retry(
    world: World,
) -> None:
    world.store.complete_error = StorageUnavailable("the object store is unreachable")
    with pytest.raises(StorageUnavailable):
        await world.uploads.accept(request(), stream(AUDIO))
    status = await world.uploads.status("acme", "upload-1")
    assert status.committed_bytes == TOTAL, "every part, the short last one too, is stored"
    assert world.jobs.all() == []

    world.store.complete_error = None
    job = await world.uploads.accept(request(), stream(b""), offset=TOTAL)

    assert job.sha256 == hashlib.sha256(AUDIO).hexdigest()
    assert world.store.objects == {job.object_key: AUDIO}


async def test_a_database_outage_after_completing_keeps_the_object_for_a_retry(
    world: World,
) -> None:
    world.jobs.add_error = DatabaseUnavailable("the database is unavailable")
    with pytest.raises(DatabaseUnavailable):
        await world.uploads.accept(request(), stream(AUDIO))
    assert len(world.store.objects) == 1, "the complete object waits for the retry"

    world.jobs.add_error = None
    job = await world.uploads.accept(request(), stream(b""), offset=TOTAL)

    assert world.store.objects == {job.object_key: AUDIO}
    assert [j.job_id for j in world.jobs.all()] == [job.job_id]


async def test_an_upload_without_request_id_is_not_recorded_and_aborted_when_broken(
    world: World,
) -> None:
    with pytest.raises(Broken):
        await world.uploads.accept(request(request_id=""), stream(AUDIO, break_after=2 * PART + 1))

    assert await world.partials.store_upload_ids() == set()
    assert world.store.open_uploads() == []
    assert world.store.objects == {}


async def test_a_part_still_in_flight_from_a_taken_over_stream_spoils_no_part(
    world: World,
) -> None:
    """The old stream's part 3 lands after the new stream (on a gateway with another part
    size) stored its own part 3: the completed object is still the file."""
    held = asyncio.Event()
    world.store = HeldPartStore(hold={3: held})
    world.uploads = world.gateway()
    stalled = asyncio.Event()

    async def old_stream() -> AsyncIterator[bytes]:
        async for chunk in stream(AUDIO[: 3 * PART]):
            yield chunk
        await stalled.wait()  # the client gave up on this stream; the server has not noticed

    old = asyncio.create_task(world.uploads.accept(request(), old_stream()))
    await _until(lambda: _committed(world) == 2 * PART and world.store.holding)
    world.store.complete_gate = asyncio.Event()
    other = world.gateway(part_size=PART + 1024 * 1024)
    new = asyncio.create_task(other.accept(request(), stream(AUDIO[2 * PART :]), offset=2 * PART))
    await asyncio.wait_for(world.store.complete_started.wait(), timeout=10)
    held.set()  # the old part 3 lands now, over the new one
    stalled.set()
    with pytest.raises(UploadTakenOver):
        await asyncio.wait_for(old, timeout=10)
    world.store.complete_gate.set()
    job = await asyncio.wait_for(new, timeout=10)

    assert world.store.objects == {job.object_key: AUDIO}


async def test_a_stream_that_loses_to_another_file_under_its_key_leaves_no_open_upload(
    world: World,
) -> None:
    """Another file became a job under the same request_id while this one was arriving:
    this upload is refused, and its stored parts are discarded, not left open."""
    may_finish = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        async for chunk in stream(AUDIO[: PART + 10]):
            yield chunk
        await may_finish.wait()

    first = asyncio.create_task(world.uploads.accept(request(), slow()))
    await _until(lambda: _committed(world) == PART)
    await world.jobs.add(make_job(tenant="acme", request_id="upload-1", sha256="other"))
    may_finish.set()

    with pytest.raises(RequestConflict):
        await asyncio.wait_for(first, timeout=10)
    assert world.store.open_uploads() == []


async def test_continuing_an_upload_that_just_became_a_job_names_the_job(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job is recorded, and the record dropped, between the continuing stream's two
    look-ups (and GetUploadStatus's): it is told of the job, not that there is none."""
    await broken_upload(world, break_after=PART + 1)
    job = await world.gateway().accept(request(), stream(AUDIO[PART:]), offset=PART)
    find_by_request = world.jobs.find_by_request
    misses = 0

    async def just_before_the_job(tenant: str, request_id: str) -> Job | None:
        nonlocal misses
        if misses == 0:
            misses += 1
            return None
        return await find_by_request(tenant, request_id)

    monkeypatch.setattr(world.jobs, "find_by_request", just_before_the_job)
    with pytest.raises(UploadFinished, match=str(job.job_id)):
        await world.uploads.accept(request(), stream(b""), offset=TOTAL)
    misses = 0
    status = await world.uploads.status("acme", "upload-1")
    assert status.job is not None and status.job.job_id == job.job_id


async def test_starting_again_over_a_complete_unrecorded_object_discards_it(
    world: World,
) -> None:
    """The first stream completed the object but could not record the job; the client
    starts again from the first byte: the first object is nobody's, and is deleted."""
    world.jobs.add_error = DatabaseUnavailable("the database is unavailable")
    with pytest.raises(DatabaseUnavailable):
        await world.uploads.accept(request(), stream(AUDIO))
    world.jobs.add_error = None

    job = await world.uploads.accept(request(), stream(AUDIO))

    assert world.store.objects == {job.object_key: AUDIO}


class HeldPartStore(FakeObjectStore):
    """Holds the first put of each part number in ``hold`` until its event is set."""

    def __init__(self, hold: dict[int, asyncio.Event]) -> None:
        super().__init__()
        self._hold = dict(hold)
        self.holding = False

    async def put_part(self, key: str, upload_id: str, number: int, data: bytes) -> StoredPart:
        gate = self._hold.pop(number, None)
        if gate is not None:
            self.holding = True
            await gate.wait()
        return await super().put_part(key, upload_id, number, data)


def _committed(world: World) -> int:
    try:
        return world.partials.stored("acme", "upload-1").committed_bytes
    except KeyError:  # not started yet
        return 0


def _stream_of(world: World) -> str:
    return world.partials.stored("acme", "upload-1").stream


async def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Waits for a condition, polling."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
