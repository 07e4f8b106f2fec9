"""The last steps of an upload, once every byte has arrived: the object made durable, the
job recorded and then queued, each undone if a later one fails.

A recorded job that could not be queued is the one thing that may stay, always with its
audio: with a request_id it waits for the client's retry (or the janitor's reconciler) to
queue it; without one it stays only if its row could not be deleted either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from steno.common.broker.queueing import publish_job
from steno.common.errors import DependencyUnavailable
from steno.common.faults import GATEWAY_BEFORE_PUBLISH
from steno.common.jobs import DuplicateRequest, Job
from steno.common.logs import Stopwatch
from steno.common.quotas import UNLIMITED, QuotaExceeded, QuotaLimits
from steno.gateway.uploads.idempotency import answer_retry, lose_race
from steno.gateway.uploads.multipart import MultipartWriter
from steno.gateway.uploads.ports import UploadPorts
from steno.gateway.uploads.refusals import UploadRaced
from steno.gateway.uploads.resumable import forget
from steno.gateway.uploads.storing import discard, put_aside

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReceivedUpload:
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
    # The tenant's quotas, checked once more as the job is recorded.
    within: QuotaLimits = UNLIMITED

    @property
    def resumable(self) -> bool:
        """Whether the stored parts outlive a failure, for a later stream to continue."""
        return bool(self.job.request_id)


async def commit(ports: UploadPorts, received: ReceivedUpload) -> Job:
    """Makes the object durable, records the job and queues it, undoing on failure. A
    request_id seen before gives back that request's job instead."""
    stopwatch = Stopwatch()
    job, writer = received.job, received.writer
    if writer is None:
        assert received.earlier is not None
        return await answer_retry(ports, received.earlier, job)
    try:
        earlier = None
        if job.request_id:
            earlier = await ports.jobs.find_by_request(job.tenant, job.request_id)
        if earlier is None:
            await writer.commit()
            if not job.sha256:
                # A continued upload: the hash needs the whole file, read back once.
                job.sha256 = await ports.store.sha256(job.object_key)
    except BaseException:
        await put_aside(writer, resumable=received.resumable)
        raise
    if earlier is not None:
        return await lose_race(ports, job, writer, earlier)
    try:
        await ports.jobs.add(job, within=received.within)
    except QuotaExceeded:
        # An upload that raced others for the quota's last room: it is refused whole.
        await discard(ports.store, job.object_key)
        if received.resumable:
            await forget(ports, job)
        raise
    except DuplicateRequest:
        earlier = await ports.jobs.find_by_request(job.tenant, job.request_id)
        if earlier is None:
            await discard(ports.store, job.object_key)
            raise UploadRaced(
                job.request_id,
                f"a concurrent upload with request_id {job.request_id!r} did not finish; retry",
            ) from None
        return await lose_race(ports, job, writer, earlier)
    except BaseException:
        # A resumable upload keeps its complete object: the client's retry (from the
        # file's end) records it, or the janitor discards it.
        if not received.resumable:
            await discard(ports.store, job.object_key)
        raise
    if job.request_id:
        await forget(ports, job)
    if received.replaced_key:
        # Its job, if it had become one, would have made this one's a DuplicateRequest.
        await discard(ports.store, received.replaced_key)
    await _queue(ports, job, stopwatch)
    return job


async def _queue(ports: UploadPorts, job: Job, stopwatch: Stopwatch) -> None:
    """Publishes the recorded job; withdraws it if that fails and no retry can find it.
    Its log line says how long the commit took, from the last byte received."""
    ports.faults.hit(GATEWAY_BEFORE_PUBLISH)
    try:
        await publish_job(ports.queue, ports.jobs, job, now=ports.clock())
    except BaseException:
        # With a request_id the job stays: the client's retry finds it and queues it (and
        # if it never comes, the janitor's reconciler does).
        if not job.request_id:
            await _withdraw(ports, job)
        raise
    log.info(
        "upload accepted",
        extra={
            "job_id": str(job.job_id),
            "tenant": job.tenant,
            "state": job.state.value,
            "size_bytes": job.size_bytes,
            "duration_ms": stopwatch.elapsed_ms(),
        },
    )


async def _withdraw(ports: UploadPorts, job: Job) -> None:
    """Undoes a recorded job that could not be queued. If its row cannot be deleted, the
    object stays too: a QUEUED job with its audio can still be queued later, one without
    could not."""
    try:
        await ports.jobs.delete(job.job_id)
    except DependencyUnavailable:
        log.exception(
            "job recorded but not queued",
            extra={"job_id": str(job.job_id), "tenant": job.tenant, "state": "QUEUED"},
        )
        return
    await discard(ports.store, job.object_key)
