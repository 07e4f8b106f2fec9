"""The upload pipeline: a chunk stream becomes a stored object, a job row and a queued request.

Each step undoes the previous ones if it fails, so a rejected, cancelled or failed upload
leaves no object, no row and no message behind, with one exception: an upload with a
request_id keeps the parts it has stored, so that a client whose stream broke can continue
it (in another stream, on any gateway) instead of starting over; the janitor discards those
nobody continues. Once every byte has arrived the job is finished whatever the client does.
A recorded job that could not be queued is the one thing that may stay, always with its
audio: with a request_id it waits for the client's retry to queue it; without one it stays
only if its row could not be deleted either.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from steno.common.broker import JobQueue, TranscriptionRequest
from steno.common.errors import DependencyUnavailable
from steno.common.faults import GATEWAY_BEFORE_PUBLISH, Faults
from steno.common.jobs import DuplicateRequest, Job, JobRepository, JobState
from steno.common.storage import DeleteFailure, ObjectStore, StoredPart
from steno.common.storage.multipart import MultipartWriter, PartsListener
from steno.common.uploads import PartialUpload, PartialUploadRepository, UploadRequest
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


class UploadNotFound(Exception):
    """No unfinished upload and no job has the request_id."""


class UploadFinished(Exception):
    """A stream tried to continue an upload that has already become a job."""


class WrongOffset(Exception):
    """A stream tried to continue an upload from somewhere other than its stored end."""


class UploadTakenOver(Exception):
    """Another stream started or continued the same upload; this one may write no more."""


@dataclass(frozen=True, slots=True)
class UploadStatus:
    """How far an upload has got: its stored bytes, and its job once it has one."""

    committed_bytes: int
    job: Job | None = None
    # When the stored bytes of an unfinished upload are discarded.
    expire_time: datetime | None = None


@dataclass(slots=True)
class _Received:
    """An upload whose bytes have all arrived, before it is made durable and recorded."""

    job: Job
    # None when an earlier upload with the same request_id already became a job: the bytes
    # were only counted and hashed, to tell a retry from a conflicting reuse of the key.
    writer: MultipartWriter | None
    # The earlier job, in that case.
    earlier: Job | None = None
    # The object of an unfinished upload this one replaced (started again from the first
    # byte), which may have been completed without becoming a job: deleted once this upload
    # is a job, when no job can have it any more.
    replaced_key: str = ""

    @property
    def resumable(self) -> bool:
        """Whether the stored parts outlive a failure, for a later stream to continue."""
        return bool(self.job.request_id)


class Uploads:
    def __init__(
        self,
        jobs: JobRepository,
        partials: PartialUploadRepository,
        store: ObjectStore,
        queue: JobQueue,
        *,
        part_size: int,
        max_bytes: int,
        max_concurrent: int,
        keep_partial_for: timedelta,
        faults: Faults | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._jobs = jobs
        self._partials = partials
        self._store = store
        self._queue = queue
        self._part_size = part_size
        self._max_bytes = max_bytes
        self._max_concurrent = max_concurrent
        self._keep_partial_for = keep_partial_for
        self._faults = faults or Faults()
        self._clock = clock
        # Uploads taking a slot: streaming, or committing after their client has sent all.
        self._active = 0
        self._commits: set[asyncio.Task[Job]] = set()

    async def accept(
        self, request: UploadRequest, chunks: AsyncIterator[bytes], *, offset: int = 0
    ) -> Job:
        """Stores the audio, records the job as QUEUED and queues it; returns the job. With
        an ``offset``, the chunks continue the unfinished upload of ``request.request_id``
        from there."""
        if self._active >= self._max_concurrent:
            raise UploadsBusy(
                f"the server is already taking {self._max_concurrent} uploads; retry shortly"
            )
        self._active += 1
        try:
            if offset:
                received = await self._continue(request, offset, chunks)
            else:
                received = await self._start(request, chunks)
        except BaseException:
            self._active -= 1
            raise
        # Every byte has arrived. The rest runs as a task of its own, so that a client going
        # away now cannot split the object from its row; it frees the slot when it ends.
        job = received.job
        commit = asyncio.create_task(self._commit(received), name=f"commit {job.job_id}")
        self._commits.add(commit)
        commit.add_done_callback(self._committed)
        return await asyncio.shield(commit)

    async def status(self, tenant: str, request_id: str) -> UploadStatus:
        """How much of the upload with ``request_id`` is stored, or the job it became."""
        job = await self._jobs.find_by_request(tenant, request_id)
        if job is not None:
            return await self._job_status(job)
        partial = await self._partials.get(tenant, request_id)
        if partial is None:
            # The upload may have become a job (and dropped its record) in between.
            job = await self._jobs.find_by_request(tenant, request_id)
            if job is not None:
                return await self._job_status(job)
            raise UploadNotFound(
                f"there is no upload with request_id {request_id!r}: it was never started, "
                "or it was discarded after no stream continued it"
            )
        return UploadStatus(
            partial.committed_bytes, expire_time=partial.update_time + self._keep_partial_for
        )

    async def _job_status(self, job: Job) -> UploadStatus:
        if job.state is JobState.QUEUED and job.publish_time is None:
            # Its upload failed to queue it: like a retried upload, this queues it now,
            # so that a job the client is told about is on its way.
            await self._queue.publish(TranscriptionRequest(job.job_id, job.tenant))
            await self._note_published(job)
        return UploadStatus(job.size_bytes, job=job)

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

    async def _start(self, request: UploadRequest, chunks: AsyncIterator[bytes]) -> _Received:
        """Receives a whole file, into a new multipart upload; with a request_id, one that
        is recorded part by part so that it can be continued."""
        head, pending = await _read_head(chunks)
        content_type = audio_content_type(head)
        if content_type is None:
            raise InvalidUpload(
                "chunk",
                "the data is not a supported audio file; "
                "send WAV, MP3, OGG/Opus, FLAC, M4A/MP4 or WebM",
            )
        job = self._new_job(request, uuid.uuid4(), content_type)
        audio = _chain(pending, chunks)
        if request.request_id:
            earlier = await self._jobs.find_by_request(request.tenant, request.request_id)
            if earlier is not None:
                job.size_bytes, job.sha256 = await self._hash(audio)
                return _Received(job, None, earlier)
        upload_id = await self._store.start_upload(job.object_key, content_type)
        on_parts, replaced_key = None, ""
        if request.request_id:
            on_parts, replaced_key = await self._record_start(request, job, upload_id)
        writer = self._writer(job, upload_id, on_parts=on_parts)
        digest = hashlib.sha256()
        job.size_bytes = await self._fill(writer, job, audio, offset=0, digest=digest)
        job.sha256 = digest.hexdigest()
        return _Received(job, writer, replaced_key=replaced_key)

    async def _continue(
        self, request: UploadRequest, offset: int, chunks: AsyncIterator[bytes]
    ) -> _Received:
        """Receives the rest of an unfinished upload, from ``offset`` on; takes it over from
        the stream that wrote it so far."""
        tenant, request_id = request.tenant, request.request_id
        await self._refuse_finished(tenant, request_id)
        partial = await self._partials.get(tenant, request_id)
        if partial is None:
            # The upload may have become a job (and dropped its record) in between.
            await self._refuse_finished(tenant, request_id)
            raise UploadNotFound(
                f"there is no unfinished upload with request_id {request_id!r} (it may have "
                "been discarded after no stream continued it); start it again from offset 0"
            )
        if offset != partial.committed_bytes:
            raise WrongOffset(
                f"the upload with request_id {request_id!r} has {partial.committed_bytes} "
                f"bytes stored; continue it from offset {partial.committed_bytes}"
            )
        stream = uuid.uuid4().hex
        if not await self._partials.take_over(
            tenant,
            request_id,
            stream=stream,
            previous=partial.stream,
            next_part=partial.next_part,
            now=self._clock(),
        ):
            raise UploadTakenOver(
                f"another stream took over the upload with request_id {request_id!r} just "
                "now; ask GetUploadStatus where it stands"
            )
        job = self._new_job(partial.request, partial.job_id, partial.content_type)
        writer = self._writer(
            job,
            partial.store_upload_id,
            parts=partial.parts,
            first_number=partial.next_part + 1,
            on_parts=self._recorder(tenant, request_id, stream),
        )
        # The hash needs the whole file: it is read back once the object is complete.
        job.size_bytes = await self._fill(writer, job, chunks, offset=offset, digest=None)
        return _Received(job, writer)

    async def _refuse_finished(self, tenant: str, request_id: str) -> None:
        """UploadFinished if the upload with ``request_id`` has become a job."""
        earlier = await self._jobs.find_by_request(tenant, request_id)
        if earlier is not None:
            raise UploadFinished(
                f"the upload with request_id {request_id!r} is already complete: it is job "
                f"{earlier.job_id}"
            )

    def _new_job(self, request: UploadRequest, job_id: uuid.UUID, content_type: str) -> Job:
        """The QUEUED job an upload becomes; its size and hash are filled in as it arrives."""
        return Job(
            job_id=job_id,
            tenant=request.tenant,
            state=JobState.QUEUED,
            object_key=f"audio/{job_id}",
            filename=request.filename,
            content_type=content_type,
            size_bytes=0,
            sha256="",
            audio_retention=request.audio_retention,
            create_time=self._clock(),
            language=request.language,
            lexicon_id=request.lexicon_id,
            engine=request.engine,
            labels=request.labels,
            request_id=request.request_id,
        )

    def _writer(
        self,
        job: Job,
        upload_id: str,
        *,
        parts: Sequence[StoredPart] = (),
        first_number: int = 1,
        on_parts: PartsListener | None = None,
    ) -> MultipartWriter:
        return MultipartWriter(
            self._store,
            job.object_key,
            upload_id,
            part_size=self._part_size,
            parts=parts,
            first_number=first_number,
            on_parts=on_parts,
        )

    async def _record_start(
        self, request: UploadRequest, job: Job, upload_id: str
    ) -> tuple[PartsListener, str]:
        """Records a resumable upload before its first part; returns what records each part,
        and the object key of the unfinished upload it replaced (a client starting again from
        the first byte replaces it), if any."""
        now = self._clock()
        stream = uuid.uuid4().hex
        partial = PartialUpload(
            request=request,
            job_id=job.job_id,
            object_key=job.object_key,
            store_upload_id=upload_id,
            content_type=job.content_type,
            stream=stream,
            create_time=now,
            update_time=now,
        )
        try:
            replaced = await self._partials.get(job.tenant, job.request_id)
            await self._partials.save(partial)
        except BaseException:
            await self._abort_quietly(job.object_key, upload_id)
            raise
        if replaced is None:
            return self._recorder(job.tenant, job.request_id, stream), ""
        await self._abort_quietly(replaced.object_key, replaced.store_upload_id)
        return self._recorder(job.tenant, job.request_id, stream), replaced.object_key

    def _recorder(self, tenant: str, request_id: str, stream: str) -> PartsListener:
        async def record(parts: Sequence[StoredPart]) -> None:
            if not await self._partials.record_parts(
                tenant, request_id, stream=stream, parts=parts, now=self._clock()
            ):
                raise UploadTakenOver(
                    f"another stream took over the upload with request_id {request_id!r}; "
                    "this one stopped"
                )

        return record

    async def _fill(
        self,
        writer: MultipartWriter,
        job: Job,
        chunks: AsyncIterator[bytes],
        *,
        offset: int,
        digest: hashlib._Hash | None,
    ) -> int:
        """Writes the chunks after ``offset``, counting (and hashing); returns the size.
        A refused upload is discarded whole; a broken resumable one keeps its parts."""
        size = offset
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > self._max_bytes:
                    raise UploadTooLarge(
                        f"the upload is larger than the {self._max_bytes}-byte limit"
                    )
                if digest is not None:
                    digest.update(chunk)
                await writer.write(chunk)
        except UploadTooLarge:
            await writer.abort()
            if job.request_id:
                await self._forget(job)
            raise
        except UploadTakenOver:
            raise  # the parts are the other stream's now
        except BaseException:
            # Also on cancellation: a client that goes away leaves nothing behind, or, if
            # the upload can be continued, what it has stored.
            if job.request_id:
                await writer.pause()
            else:
                await writer.abort()
            raise
        return size

    async def _hash(self, chunks: AsyncIterator[bytes]) -> tuple[int, str]:
        """The size and hex SHA-256 of a stream that is not stored."""
        digest = hashlib.sha256()
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > self._max_bytes:
                raise UploadTooLarge(f"the upload is larger than the {self._max_bytes}-byte limit")
            digest.update(chunk)
        return size, digest.hexdigest()

    async def _commit(self, received: _Received) -> Job:
        """Makes the object durable, records the job and queues it, undoing on failure.
        A request_id seen before gives back that request's job instead."""
        job, writer = received.job, received.writer
        if writer is None:
            assert received.earlier is not None
            return await self._answer_retry(received.earlier, job)
        try:
            earlier = None
            if job.request_id:
                earlier = await self._jobs.find_by_request(job.tenant, job.request_id)
            if earlier is None:
                await writer.commit()
                if not job.sha256:
                    job.sha256 = await self._store.sha256(job.object_key)
        except BaseException:
            await self._stop(received)
            raise
        if earlier is not None:
            return await self._lost_race(received, earlier)
        try:
            await self._jobs.add(job)
        except DuplicateRequest:
            earlier = await self._jobs.find_by_request(job.tenant, job.request_id)
            if earlier is None:
                await self._discard(job.object_key)
                raise UploadRaced(
                    f"a concurrent upload with request_id {job.request_id!r} did not finish; retry"
                ) from None
            return await self._lost_race(received, earlier)
        except BaseException:
            # A resumable upload keeps its complete object: the client's retry (from the
            # file's end) records it, or the janitor discards it.
            if not received.resumable:
                await self._discard(job.object_key)
            raise
        if job.request_id:
            await self._forget(job)
        if received.replaced_key:
            # Its job, if it had become one, would have made this one's a DuplicateRequest.
            await self._discard(received.replaced_key)
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

    async def _stop(self, received: _Received) -> None:
        """Undoes an upload that could not be made durable, keeping what a later stream can
        continue from if it is resumable."""
        assert received.writer is not None
        if received.resumable:
            await received.writer.pause()
        else:
            await received.writer.abort()

    async def _lost_race(self, received: _Received, earlier: Job) -> Job:
        """Another stream with the same request_id became a job first: this very upload,
        continued elsewhere, or another file under the same key."""
        if earlier.job_id == received.job.job_id:
            return await self._answer_retry(earlier, earlier)
        # Found before completing, the upload is still open with its parts: abort it.
        assert received.writer is not None
        await received.writer.abort()
        await self._discard(received.job.object_key)
        return await self._answer_retry(earlier, received.job)

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

    async def _forget(self, job: Job) -> None:
        """Drops the record of a resumable upload that is finished or refused. Best effort:
        a record left behind is discarded by the janitor."""
        try:
            await self._partials.delete(job.tenant, job.request_id)
        except DependencyUnavailable as exc:
            log.warning(
                "could not drop the record of a finished upload",
                extra={"job_id": str(job.job_id), "error": str(exc)},
            )

    async def _abort_quietly(self, key: str, upload_id: str) -> None:
        """Aborts a multipart upload nobody will continue; logs, never raises."""
        try:
            await self._store.abort_upload(key, upload_id)
        except DependencyUnavailable as exc:
            log.warning(
                "could not abort an abandoned upload",
                extra={"key": key, "upload_id": upload_id, "error": str(exc)},
            )

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
