"""Webhook events that were never queued, queued again.

A job's event is queued right after the write that ended it commits
(:class:`~steno.common.webhooks.delivery.WebhookQueueingJobRepository`); if the broker could
not take it then, or the process died between the two, nothing would ever send it. Such a
job has no attempt recorded. Once it ended longer ago than ``grace`` (by then a queued event
has normally been tried), and while the retry window lasts, its event is queued again.

A job whose event is still waiting in the queue is queued twice, and may be delivered twice:
at least once allows that, and both attempts carry the same ``webhook-id``, the event's
stable id, for receivers to drop the repeat.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from steno.common.broker import JobQueue, TranscriptionRequest
from steno.common.jobs import JobRepository

log = logging.getLogger(__name__)


async def requeue_unattempted_webhooks(
    jobs: JobRepository,
    webhooks: JobQueue,
    *,
    now: datetime,
    grace: timedelta,
    retry_for: timedelta,
    batch_size: int,
) -> int:
    """Queues the event of every job ended between ``retry_for`` and ``grace`` ago with no
    attempt at its webhook; returns how many, ``batch_size`` jobs read at a time."""
    queued, after = 0, None
    while batch := await jobs.webhooks_unattempted(
        now - retry_for, now - grace, after=after, limit=batch_size
    ):
        for job in batch:
            await webhooks.publish(TranscriptionRequest(job.job_id, job.tenant))
            log.warning("unsent webhook event queued again", extra={"job_id": str(job.job_id)})
            queued += 1
        if len(batch) < batch_size:
            break
        after = batch[-1].job_id
    return queued
