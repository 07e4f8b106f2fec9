"""Queueing a recorded job: publish its request, then note that the broker has it."""

from __future__ import annotations

import logging
from datetime import datetime

from steno.common.broker.job_queue import JobQueue, TranscriptionRequest
from steno.common.errors import DependencyUnavailable
from steno.common.jobs import Job, JobRepository

log = logging.getLogger(__name__)


async def publish_job(queue: JobQueue, jobs: JobRepository, job: Job, *, now: datetime) -> None:
    """Publishes the job's request (raising if the broker does not take it), then records
    the publish on the job. Recording is best effort: a job left looking unpublished is
    published again by the reconciler, and a duplicate request is harmless."""
    await queue.publish(TranscriptionRequest(job.job_id, job.tenant))
    try:
        await jobs.mark_published(job.job_id, now)
    except DependencyUnavailable as exc:
        log.warning(
            "could not record the publish", extra={"job_id": str(job.job_id), "error": str(exc)}
        )
        return
    job.publish_time = job.publish_time or now
