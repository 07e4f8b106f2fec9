"""The reconciler: puts back on the queue the jobs that would otherwise wait forever, and
the webhook events that would otherwise never be sent.

Two kinds of job. A QUEUED job whose request the broker never confirmed (the gateway died
between recording it and publishing it, or the broker refused it) is published. A
PROCESSING job whose lease ran out (its worker died and nothing redelivered its request) is
handed back to QUEUED and published. Both are safe to repeat: a duplicate request finds the
job already taken and is dropped, and the hand-back is a conditional write that loses to a
worker that renewed its lease meanwhile. The events are those of
:mod:`steno.janitor.unattempted_webhooks`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from steno.common.broker import JobQueue
from steno.common.broker.queueing import publish_job
from steno.common.errors import DependencyUnavailable
from steno.common.jobs import Job, JobRepository, JobState
from steno.janitor.unattempted_webhooks import requeue_unattempted_webhooks

log = logging.getLogger(__name__)


@dataclass
class ReconcileSummary:
    published: int = 0
    requeued: int = 0
    webhooks_requeued: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def reconcile(
    jobs: JobRepository,
    queue: JobQueue,
    *,
    now: datetime,
    publish_grace: timedelta,
    webhooks: JobQueue,
    webhook_grace: timedelta,
    webhook_retry_for: timedelta,
    batch_size: int,
) -> ReconcileSummary:
    """One pass over both kinds of job, then the webhook events, ``batch_size`` jobs at a
    time. Jobs created in the last ``publish_grace`` are left to the gateway that is
    publishing them; events go on ``webhooks``."""
    summary = ReconcileSummary()
    try:
        while batch := await jobs.unpublished(now - publish_grace, limit=batch_size):
            for job in batch:
                await _publish(jobs, queue, job, now)
                summary.published += 1
            if len(batch) < batch_size:
                break
        while batch := await jobs.lease_expired(now, limit=batch_size):
            for job in batch:
                if await _hand_back(jobs, queue, job, now):
                    summary.requeued += 1
            if len(batch) < batch_size:
                break
        summary.webhooks_requeued = await requeue_unattempted_webhooks(
            jobs,
            webhooks,
            now=now,
            grace=webhook_grace,
            retry_for=webhook_retry_for,
            batch_size=batch_size,
        )
    except DependencyUnavailable as exc:
        log.error("reconciliation stopped", extra={"error": str(exc)})
        summary.errors.append(f"reconciliation stopped: {exc}")
    if summary.published or summary.requeued or summary.webhooks_requeued:
        log.warning("jobs and webhook events put back on their queues", extra=summary.as_dict())
    return summary


async def _publish(jobs: JobRepository, queue: JobQueue, job: Job, now: datetime) -> None:
    await publish_job(queue, jobs, job, now=now)
    log.info("unpublished job published", extra={"job_id": str(job.job_id), "state": "QUEUED"})


async def _hand_back(jobs: JobRepository, queue: JobQueue, job: Job, now: datetime) -> bool:
    """QUEUED again and published; False if its worker renewed the lease first."""
    owner = job.lease_owner or None
    job.release()
    # Unpublished until the broker confirms: if publishing fails now, the next pass
    # publishes it as any other unpublished job.
    job.publish_time = None
    if not await jobs.update(job, expected=JobState.PROCESSING, owner=owner, expired_by=now):
        return False
    log.warning(
        "abandoned job handed back", extra={"job_id": str(job.job_id), "from": owner or "?"}
    )
    await _publish(jobs, queue, job, now)
    return True
