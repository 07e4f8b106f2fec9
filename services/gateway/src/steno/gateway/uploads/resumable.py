"""Resumable uploads' bookkeeping: an upload with a request_id is recorded from its first
byte, with every part stored so far, so that a client whose stream broke can continue it
(in another stream, on any gateway) from the bytes committed.

Only one stream writes an upload at a time: a stream that starts or continues it takes it
over, and every part the replaced stream records from then on is refused.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from steno.common.broker.queueing import publish_job
from steno.common.clock import Clock
from steno.common.errors import DependencyUnavailable
from steno.common.jobs import Job, JobState
from steno.common.partial_uploads import PartialUpload, PartialUploadRepository, UploadRequest
from steno.common.storage import StoredPart
from steno.gateway.uploads.multipart import StoreUpload
from steno.gateway.uploads.ports import UploadPorts
from steno.gateway.uploads.refusals import (
    UploadFinished,
    UploadNotFound,
    UploadTakenOver,
    WrongOffset,
)
from steno.gateway.uploads.storing import abort_quietly

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordedUpload(StoreUpload):
    """A multipart upload whose every stored part is recorded, while ``stream`` has it."""

    partials: PartialUploadRepository
    tenant: str
    request_id: str
    stream: str
    clock: Clock

    async def put_part(self, number: int, data: bytes, before: Sequence[StoredPart]) -> StoredPart:
        part = await super().put_part(number, data, before)
        if not await self.partials.record_parts(
            self.tenant,
            self.request_id,
            stream=self.stream,
            parts=[*before, part],
            now=self.clock(),
        ):
            raise UploadTakenOver(
                self.request_id,
                f"another stream took over the upload with request_id {self.request_id!r}; "
                "this one stopped",
            )
        return part


@dataclass(frozen=True, slots=True)
class UploadStatus:
    """How far an upload has got: its stored bytes, and its job once it has one."""

    committed_bytes: int
    job: Job | None = None
    # When the stored bytes of an unfinished upload are discarded.
    expire_time: datetime | None = None


async def start_recorded(
    ports: UploadPorts, request: UploadRequest, job: Job, upload_id: str
) -> tuple[RecordedUpload, str]:
    """Records a resumable upload before its first part; returns where its parts go, and
    the object key of the unfinished upload it replaced (a client starting again from the
    first byte replaces it), or ""."""
    now = ports.clock()
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
        replaced = await ports.partials.get(job.tenant, job.request_id)
        await ports.partials.save(partial)
    except BaseException:
        await abort_quietly(ports.store, job.object_key, upload_id)
        raise
    target = _recorded(ports, partial)
    if replaced is None:
        return target, ""
    await abort_quietly(ports.store, replaced.object_key, replaced.store_upload_id)
    return target, replaced.object_key


async def take_over(
    ports: UploadPorts, tenant: str, request_id: str, offset: int
) -> tuple[PartialUpload, RecordedUpload]:
    """The unfinished upload a stream continues from ``offset``, handed over to that stream;
    refuses one that is finished, gone, at another offset or taken by a stream just now."""
    await refuse_finished(ports, tenant, request_id)
    partial = await ports.partials.get(tenant, request_id)
    if partial is None:
        # The upload may have become a job (and dropped its record) in between.
        await refuse_finished(ports, tenant, request_id)
        raise UploadNotFound(
            request_id,
            f"there is no unfinished upload with request_id {request_id!r} (it may have "
            "been discarded after no stream continued it); start it again from offset 0",
        )
    if offset != partial.committed_bytes:
        raise WrongOffset(request_id, partial.committed_bytes)
    stream = uuid.uuid4().hex
    if not await ports.partials.take_over(partial, stream=stream, now=ports.clock()):
        raise UploadTakenOver(
            request_id,
            f"another stream took over the upload with request_id {request_id!r} just "
            "now; ask GetUploadStatus where it stands",
        )
    partial.stream = stream
    return partial, _recorded(ports, partial)


async def refuse_finished(ports: UploadPorts, tenant: str, request_id: str) -> None:
    """UploadFinished if the upload with ``request_id`` has become a job."""
    earlier = await ports.jobs.find_by_request(tenant, request_id)
    if earlier is not None:
        raise UploadFinished(request_id, earlier.job_id)


async def forget(ports: UploadPorts, job: Job) -> None:
    """Drops the record of a resumable upload that is finished or refused. Best effort: a
    record left behind is discarded by the janitor."""
    try:
        await ports.partials.delete(job.tenant, job.request_id)
    except DependencyUnavailable as exc:
        log.warning(
            "could not drop the record of a finished upload",
            extra={"job_id": str(job.job_id), "error": str(exc)},
        )


async def upload_status(
    ports: UploadPorts, tenant: str, request_id: str, *, keep_for: timedelta
) -> UploadStatus:
    """How much of the upload with ``request_id`` is stored, or the job it became."""
    job = await ports.jobs.find_by_request(tenant, request_id)
    if job is not None:
        return await _job_status(ports, job)
    partial = await ports.partials.get(tenant, request_id)
    if partial is None:
        # The upload may have become a job (and dropped its record) in between.
        job = await ports.jobs.find_by_request(tenant, request_id)
        if job is not None:
            return await _job_status(ports, job)
        raise UploadNotFound(
            request_id,
            f"there is no upload with request_id {request_id!r}: it was never started, "
            "or it was discarded after no stream continued it",
        )
    return UploadStatus(partial.committed_bytes, expire_time=partial.update_time + keep_for)


async def _job_status(ports: UploadPorts, job: Job) -> UploadStatus:
    if job.state is JobState.QUEUED and job.publish_time is None:
        # Its upload failed to queue it: like a retried upload, this queues it now, so
        # that a job the client is told about is on its way.
        await publish_job(ports.queue, ports.jobs, job, now=ports.clock())
    return UploadStatus(job.size_bytes, job=job)


def _recorded(ports: UploadPorts, partial: PartialUpload) -> RecordedUpload:
    return RecordedUpload(
        ports.store,
        partial.object_key,
        partial.store_upload_id,
        partials=ports.partials,
        tenant=partial.tenant,
        request_id=partial.request_id,
        stream=partial.stream,
        clock=ports.clock,
    )
