"""The upload pipeline: a chunk stream becomes a stored object, a job row and a queued
request, in that order, each step in a module of its own: receiving (recognised, counted,
hashed), storing (multipart, with resumable uploads' parts recorded), committing (durable,
deduplicated by request_id, recorded) and publishing.

Each step undoes the previous ones if it fails, so a rejected, cancelled or failed upload
leaves no object, no row and no message behind, with one exception: an upload with a
request_id keeps the parts it has stored, so that a client whose stream broke can continue
it instead of starting over. Once every byte has arrived the job is finished whatever the
client does.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from steno.common.broker import JobQueue
from steno.common.clock import Clock, utc_now
from steno.common.faults import Faults
from steno.common.jobs import Job, JobRepository, JobState
from steno.common.partial_uploads import PartialUploadRepository, UploadRequest
from steno.common.quotas import Admission, TenantQuotas
from steno.common.storage import ObjectStore
from steno.gateway.uploads.committing import ReceivedUpload, commit
from steno.gateway.uploads.multipart import MultipartWriter, PartTarget, StoreUpload
from steno.gateway.uploads.ports import UploadPorts
from steno.gateway.uploads.receiving import IncomingAudio, sniff
from steno.gateway.uploads.refusals import OVER_LIMIT
from steno.gateway.uploads.resumable import (
    UploadStatus,
    forget,
    start_recorded,
    take_over,
    upload_status,
)
from steno.gateway.uploads.slots import UploadSlots
from steno.gateway.uploads.storing import store_audio


class Uploads:
    """What the API hands an upload's stream to, and asks how far an upload has got."""

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
        quotas: TenantQuotas | None = None,
        faults: Faults | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._ports = UploadPorts(jobs, partials, store, queue, faults or Faults(), clock)
        self._quotas = quotas
        self._part_size = part_size
        self._max_bytes = max_bytes
        self._keep_partial_for = keep_partial_for
        self._slots = UploadSlots(max_concurrent)

    async def accept(
        self, request: UploadRequest, chunks: AsyncIterator[bytes], *, offset: int = 0
    ) -> Job:
        """Stores the audio, records the job as QUEUED and queues it; returns the job. With
        an ``offset``, the chunks continue the unfinished upload of ``request.request_id``
        from there."""
        self._slots.take()
        try:
            if offset:
                received = await self._continue(request, offset, chunks)
            else:
                received = await self._start(request, chunks)
        except BaseException:
            self._slots.give_back()
            raise
        return await self._slots.finish(
            commit(self._ports, received), name=f"commit {received.job.job_id}"
        )

    async def status(self, tenant: str, request_id: str) -> UploadStatus:
        """How much of the upload with ``request_id`` is stored, or the job it became."""
        return await upload_status(self._ports, tenant, request_id, keep_for=self._keep_partial_for)

    async def drain(self) -> None:
        """Waits for the uploads whose bytes have all arrived to be recorded (on shutdown)."""
        await self._slots.drain()

    async def _start(self, request: UploadRequest, chunks: AsyncIterator[bytes]) -> ReceivedUpload:
        """Receives a whole file, into a new multipart upload; with a request_id, one that
        is recorded part by part so that it can be continued."""
        content_type, chunks = await sniff(chunks)
        job = self._new_job(request, uuid.uuid4(), content_type)
        if request.request_id:
            earlier = await self._ports.jobs.find_by_request(request.tenant, request.request_id)
            if earlier is not None:
                # A retry of a finished upload: no new job, so no quota to pass.
                retry = IncomingAudio(
                    chunks, max_bytes=self._max_bytes, admission=Admission(job.tenant), hashed=True
                )
                await retry.drain()
                job.size_bytes, job.sha256 = retry.size, retry.sha256
                return ReceivedUpload(job, None, earlier)
        admission = await self._admit(request.tenant)
        audio = IncomingAudio(chunks, max_bytes=self._max_bytes, admission=admission, hashed=True)
        upload_id = await self._ports.store.start_upload(job.object_key, content_type)
        target: PartTarget = StoreUpload(self._ports.store, job.object_key, upload_id)
        replaced_key = ""
        if request.request_id:
            target, replaced_key = await start_recorded(self._ports, request, job, upload_id)
        writer = MultipartWriter(target, part_size=self._part_size)
        await self._store(job, writer, audio)
        return ReceivedUpload(job, writer, replaced_key=replaced_key, within=admission.limits)

    async def _continue(
        self, request: UploadRequest, offset: int, chunks: AsyncIterator[bytes]
    ) -> ReceivedUpload:
        """Receives the rest of an unfinished upload, from ``offset`` on; takes it over from
        the stream that wrote it so far."""
        partial, target = await take_over(self._ports, request.tenant, request.request_id, offset)
        # Refused, the stored parts stay: the upload may be continued once there is room.
        admission = await self._admit(request.tenant, continuing=partial.job_id)
        job = self._new_job(partial.request, partial.job_id, partial.content_type)
        writer = MultipartWriter(
            target,
            part_size=self._part_size,
            parts=partial.parts,
            first_number=partial.next_part + 1,
        )
        # The hash needs the whole file: it is read back once the object is complete.
        audio = IncomingAudio(
            chunks, max_bytes=self._max_bytes, admission=admission, offset=offset, hashed=False
        )
        await self._store(job, writer, audio)
        return ReceivedUpload(job, writer, within=admission.limits)

    async def _admit(self, tenant: str, *, continuing: uuid.UUID | None = None) -> Admission:
        """The tenant's quotas let a new job in (QuotaExceeded if not), before any byte is
        stored."""
        if self._quotas is None:
            return Admission(tenant)
        return await self._quotas.admit(tenant, self._ports.clock(), job_id=continuing)

    async def _store(self, job: Job, writer: MultipartWriter, audio: IncomingAudio) -> None:
        """Stores the audio; a resumable upload refused for a limit forgets its record."""
        try:
            await store_audio(writer, audio, resumable=bool(job.request_id))
        except OVER_LIMIT:
            if job.request_id:
                await forget(self._ports, job)
            raise
        job.size_bytes, job.sha256 = audio.size, audio.sha256

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
            create_time=self._ports.clock(),
            language=request.language,
            lexicon_id=request.lexicon_id,
            engine=request.engine,
            labels=request.labels,
            request_id=request.request_id,
            webhook_url=request.webhook_url,
        )
