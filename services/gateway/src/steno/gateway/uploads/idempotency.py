"""Request-id deduplication: an upload whose request_id already names a job gets that job
back, if it sent the same audio, instead of becoming a second one."""

from __future__ import annotations

import logging

from steno.common.broker.queueing import publish_job
from steno.common.jobs import Job, JobState
from steno.gateway.uploads.multipart import MultipartWriter
from steno.gateway.uploads.ports import UploadPorts
from steno.gateway.uploads.refusals import RequestConflict
from steno.gateway.uploads.storing import discard

log = logging.getLogger(__name__)


async def answer_retry(ports: UploadPorts, earlier: Job, retry: Job) -> Job:
    """The earlier job if the retry sent the same audio, queued again while it is still
    QUEUED (its first attempt may have failed to queue it); RequestConflict if not."""
    if (earlier.sha256, earlier.size_bytes) != (retry.sha256, retry.size_bytes):
        raise RequestConflict(retry.request_id, earlier.job_id)
    if earlier.state is JobState.QUEUED:
        await publish_job(ports.queue, ports.jobs, earlier, now=ports.clock())
    log.info(
        "upload retry answered with its earlier job",
        extra={
            "job_id": str(earlier.job_id),
            "tenant": earlier.tenant,
            "state": earlier.state.value,
        },
    )
    return earlier


async def lose_race(ports: UploadPorts, job: Job, writer: MultipartWriter, earlier: Job) -> Job:
    """Another stream with the same request_id became a job first: this very upload,
    continued elsewhere, or another file under the same key, whose stored audio this
    upload's is not."""
    if earlier.job_id == job.job_id:
        return await answer_retry(ports, earlier, earlier)
    # Found before completing, the upload is still open with its parts: abort it.
    await writer.abort()
    await discard(ports.store, job.object_key)
    return await answer_retry(ports, earlier, job)
