"""The upload pipeline: a chunk stream becomes a stored object, a job row and a queued request.

Each step undoes the previous ones if it fails, so a rejected, cancelled or failed upload
leaves no object, no row and no message behind.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from steno.common.broker import JobQueue, TranscriptionRequest
from steno.common.jobs import Job, JobRepository, JobState
from steno.common.storage import ObjectStore
from steno.gateway.sniff import HEAD_BYTES, audio_content_type

log = logging.getLogger(__name__)


class InvalidUpload(Exception):
    """The client sent something Steno cannot accept; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UploadTooLarge(Exception):
    """The stream grew past the configured maximum."""


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


class Uploads:
    def __init__(
        self,
        jobs: JobRepository,
        store: ObjectStore,
        queue: JobQueue,
        *,
        max_bytes: int,
    ) -> None:
        self._jobs = jobs
        self._store = store
        self._queue = queue
        self._max_bytes = max_bytes

    async def accept(self, request: UploadRequest, chunks: AsyncIterator[bytes]) -> Job:
        """Stores the audio, records the job as QUEUED and queues it; returns the job."""
        job_id = uuid.uuid4()
        key = f"audio/{job_id}"
        head, pending = await _read_head(chunks)
        content_type = audio_content_type(head)
        if content_type is None:
            raise InvalidUpload(
                "chunk",
                "the data is not a supported audio file; "
                "send WAV, MP3, OGG/Opus, FLAC, M4A/MP4 or WebM",
            )
        size, sha256 = await self._store_object(key, content_type, pending, chunks)
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
        )
        await self._record_and_queue(job)
        log.info(
            "upload accepted",
            extra={
                "job_id": str(job_id),
                "tenant": job.tenant,
                "state": job.state.value,
                "size_bytes": size,
            },
        )
        return job

    async def _store_object(
        self,
        key: str,
        content_type: str,
        pending: list[bytes],
        rest: AsyncIterator[bytes],
    ) -> tuple[int, str]:
        digest = hashlib.sha256()
        size = 0
        writer = self._store.writer(key, content_type)
        try:
            async for chunk in _chain(pending, rest):
                size += len(chunk)
                if size > self._max_bytes:
                    raise UploadTooLarge(
                        f"the upload is larger than the {self._max_bytes}-byte limit"
                    )
                digest.update(chunk)
                await writer.write(chunk)
            await writer.commit()
        except BaseException:
            # Also on cancellation: a client that goes away leaves nothing behind.
            await writer.abort()
            raise
        return size, digest.hexdigest()

    async def _record_and_queue(self, job: Job) -> None:
        try:
            await self._jobs.add(job)
        except BaseException:
            await self._store.delete_many([job.object_key])
            raise
        try:
            await self._queue.publish(TranscriptionRequest(job.job_id, job.tenant))
        except BaseException:
            try:
                await self._jobs.delete(job.job_id)
            finally:
                await self._store.delete_many([job.object_key])
            raise


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
