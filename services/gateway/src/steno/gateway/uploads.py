"""The upload pipeline: a chunk stream becomes a stored object, a job row and a queued request.

Each step undoes the previous ones if it fails, so a rejected, cancelled or failed upload
leaves no object, no row and no message behind. Once every byte has arrived the job is
finished whatever the client does. A recorded job that could not be queued is the one thing
that may stay, always with its audio: with a request_id it waits for the client's retry to
queue it; without one it stays only if its row could not be deleted either.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from steno.common.broker import JobQueue, TranscriptionRequest
from steno.common.errors import DependencyUnavailable
from steno.common.faults import GATEWAY_BEFORE_PUBLISH, Faults
from steno.common.jobs import DuplicateRequest, Job, JobRepository, JobState
from steno.common.storage import DeleteFailure, ObjectStore, ObjectWriter
from steno.gateway.sniff import HEAD_BYTES, audio_content_type

log = logging.getLogger(__name__)


class InvalidUpload(Exception):
    """The client sent something Steno cannot accept; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UploadTooLarge(Exception):
    """The stream grew past the configured maximum."""


class RequestConflict(Exception):
    """The request_id was used before for different audio."""


class UploadRaced(Exception):
    """A concurrent upload with the same request_id held the key and then gave it up."""


class UploadStalled(Exception):
    """The client stopped sending before the end of the stream."""


class UploadsBusy(Exception):
    """The gateway is taking as many uploads at once as it is configured for."""


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """What the client said about the audio, already validated."""

    tenant: str
    filename: str
    language: str
    lexicon_id: str
    engine: str
    audio_retention: timedelta
    labels: dict[str, str] = field(default_factory=dict)
    # Idempotency key: the same key with the same audio gives back the same job.
    request_id: str = ""


class Uploads:
    def __init__(
        self,
        jobs: JobRepository,
        store: ObjectStore,
        queue: JobQueue,
        *,
        max_bytes: int,
        max_concurrent: int,
        faults: Faults | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._jobs = jobs
        self._faults = faults or Faults()
        self._clock = clock
        self._store = store
        self._queue = queue
        self._max_bytes = max_bytes
        self._max_concurrent = max_concurrent
        # Uploads taking a slot: streaming, or committing after their client has sent all.
        self._active = 0
        self._commits: set[asyncio.Task[Job]] = set()

    async def accept(self, request: UploadRequest, chunks: AsyncIterator[bytes]) -> Job:
        """Stores the audio, records the job as QUEUED and queues it; returns the job."""
        if self._active >= self._max_concurrent:
            raise UploadsBusy(
                f"the server is already taking {self._max_concurrent} uploads; retry shortly"
            )
        self._active += 1
        try:
            writer, job = await self._receive(request, chunks)
        except BaseException:
            self._active -= 1
            raise
        # Every byte has arrived. The rest runs as a task of its own, so that a client going
        # away now cannot split the object from its row; it frees the slot when it ends.
        commit = asyncio.create_task(self._commit(writer, job), name=f"commit {job.job_id}")
        self._commits.add(commit)
        commit.add_done_callback(self._committed)
        return await asyncio.shield(commit)

    async def drain(self) -> None:
        """Waits for the uploads whose bytes have all arrived to be recorded (on shutdown)."""
        await asyncio.gather(*self._commits, return_exceptions=True)

    def _committed(self, commit: asyncio.Task[Job]) -> None:
        self._commits.discard(commit)
        self._active -= 1
        if not commit.cancelled() and (error := commit.exception()) is not None:
            log.warning(
                "upload not recorded", extra={"task": commit.get_name(), "error": str(error)}
            )

    async def _receive(
        self, request: UploadRequest, chunks: AsyncIterator[bytes]
    ) -> tuple[ObjectWriter, Job]:
        """Streams the audio into a new object, not yet committed; returns it and its job."""
        job_id = uuid.uuid4()
        head, pending = await _read_head(chunks)
        content_type = audio_content_type(head)
        if content_type is None:
            raise InvalidUpload(
                "chunk",
                "the data is not a supported audio file; "
                "send WAV, MP3, OGG/Opus, FLAC, M4A/MP4 or WebM",
            )
        key = f"audio/{job_id}"
        writer = self._store.writer(key, content_type)
        try:
            size, sha256 = await self._stream(writer, _chain(pending, chunks))
        except BaseException:
            # Also on cancellation: a client that goes away leaves nothing behind.
            await writer.abort()
            raise
        job = Job(
            job_id=job_id,
            tenant=request.tenant,
            state=JobState.QUEUED,
            object_key=key,
            filename=request.filename,
            content_type=content_type,
            size_bytes=size,
            sha256=sha256,
            audio_retention=request.audio_retention,
            create_time=datetime.now(UTC),
            language=request.language,
            lexicon_id=request.lexicon_id,
            engine=request.engine,
            labels=request.labels,
            request_id=request.request_id,
        )
        return writer, job

    async def _stream(self, writer: ObjectWriter, chunks: AsyncIterator[bytes]) -> tuple[int, str]:
        """Writes every chunk, counting and hashing; returns the size and the hex SHA-256."""
        digest = hashlib.sha256()
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > self._max_bytes:
                raise UploadTooLarge(f"the upload is larger than the {self._max_bytes}-byte limit")
            digest.update(chunk)
            await writer.write(chunk)
        return size, digest.hexdigest()

    async def _commit(self, writer: ObjectWriter, job: Job) -> Job:
        """Makes the object durable, records the job and queues it, undoing on failure.
        A request_id seen before gives back that request's job instead."""
        earlier = None
        try:
            if job.request_id:
                earlier = await self._jobs.find_by_request(job.tenant, job.request_id)
            if earlier is None:
                await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        if earlier is not None:
            await writer.abort()
            return await self._answer_retry(earlier, job)
        try:
            await self._jobs.add(job)
        except DuplicateRequest:
            # A concurrent upload with the same request_id got there first.
            await self._discard(job.object_key)
            earlier = await self._jobs.find_by_request(job.tenant, job.request_id)
            if earlier is None:
                raise UploadRaced(
                    f"a concurrent upload with request_id {job.request_id!r} did not finish; retry"
                ) from None
            return await self._answer_retry(earlier, job)
        except BaseException:
            await self._discard(job.object_key)
            raise
        self._faults.hit(GATEWAY_BEFORE_PUBLISH)
        try:
            await self._queue.publish(TranscriptionRequest(job.job_id, job.tenant))
        except BaseException:
            # With a request_id the job stays: the client's retry finds it and queues it
            # (and if it never comes, the janitor's reconciler does).
            if not job.request_id:
                await self._withdraw(job)
            raise
        await self._note_published(job)
        log.info(
            "upload accepted",
            extra={
                "job_id": str(job.job_id),
                "tenant": job.tenant,
                "state": job.state.value,
                "size_bytes": job.size_bytes,
            },
        )
        return job

    async def _answer_retry(self, earlier: Job, retry: Job) -> Job:
        """The earlier job if the retry sent the same audio, queued again while it is still
        QUEUED (its first attempt may have failed to queue it); RequestConflict if not."""
        if (earlier.sha256, earlier.size_bytes) != (retry.sha256, retry.size_bytes):
            raise RequestConflict(
                f"request_id {retry.request_id!r} was already used for different audio "
                f"(job {earlier.job_id}); use a new request_id for a new file"
            )
        if earlier.state is JobState.QUEUED:
            await self._queue.publish(TranscriptionRequest(earlier.job_id, earlier.tenant))
            await self._note_published(earlier)
        log.info(
            "upload retry answered with its earlier job",
            extra={
                "job_id": str(earlier.job_id),
                "tenant": earlier.tenant,
                "state": earlier.state.value,
            },
        )
        return earlier

    async def _note_published(self, job: Job) -> None:
        """Records that the broker has the job's request. Best effort: a job left looking
        unpublished is published again by the reconciler, and a duplicate request is
        harmless."""
        now = self._clock()
        try:
            await self._jobs.mark_published(job.job_id, now)
        except DependencyUnavailable:
            log.warning("could not record the publish", extra={"job_id": str(job.job_id)})
            return
        job.publish_time = job.publish_time or now

    async def _withdraw(self, job: Job) -> None:
        """Undoes a recorded job that could not be queued. If its row cannot be deleted, the
        object stays too: a QUEUED job with its audio can still be queued later, one
        without could not."""
        try:
            await self._jobs.delete(job.job_id)
        except DependencyUnavailable:
            log.exception(
                "job recorded but not queued",
                extra={"job_id": str(job.job_id), "tenant": job.tenant, "state": "QUEUED"},
            )
            return
        await self._discard(job.object_key)

    async def _discard(self, key: str) -> None:
        """Deletes the object of an upload that did not become a job; logs, never raises."""
        try:
            failures = await self._store.delete_many([key])
        except DependencyUnavailable as exc:
            failures = [DeleteFailure(key, str(exc))]
        for failure in failures:
            log.error(
                "could not delete the object of a failed upload",
                extra={"key": failure.key, "reason": failure.reason},
            )


async def _read_head(chunks: AsyncIterator[bytes]) -> tuple[bytes, list[bytes]]:
    """Reads just enough chunks to recognise the format; returns the head and those chunks."""
    pending: list[bytes] = []
    buffered = 0
    async for chunk in chunks:
        if not chunk:
            continue
        pending.append(chunk)
        buffered += len(chunk)
        if buffered >= HEAD_BYTES:
            break
    if not pending:
        raise InvalidUpload("chunk", "the upload has no audio: send chunks after the metadata")
    if buffered < HEAD_BYTES:
        raise InvalidUpload("chunk", f"{buffered} bytes is too short to be an audio file")
    return b"".join(pending)[:HEAD_BYTES], pending


async def _chain(first: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in first:
        yield chunk
    async for chunk in rest:
        if chunk:
            yield chunk
