"""Delivering a job's webhook event: queued when the job ends, sent by a consumer of the
webhook queue, retried with backoff through the broker's delay queues, each attempt
recorded on the job before its message is acknowledged (at least once).

The webhook queue is a second :class:`~steno.common.broker.JobQueue` (``{queue}.webhooks``):
its messages name a job and its tenant, as transcription requests do (they travel as the
same ``TranscriptionRequested`` message, all the queue adapters carry), and everything else
(the event, the attempt number) is read from the job and its recorded attempts when the
message is handled.
So a redelivered message makes the next attempt, not a repeat of an old one, and a message
for an event already delivered does nothing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Unpack

from steno.common.broker import DeadLetter, JobQueue, RetryLater, TranscriptionRequest
from steno.common.broker.amqp_queues import RETRY_DELAYS
from steno.common.clock import Clock, utc_now
from steno.common.jobs import (
    DeliveryNotRecorded,
    Job,
    JobRepository,
    JobState,
    LeaseCondition,
    PassThroughJobRepository,
    WebhookDelivery,
)
from steno.common.retry_policy import RetryPolicy
from steno.common.webhooks.events import event_body, event_id
from steno.common.webhooks.sending import Answer, WebhookSender
from steno.common.webhooks.signing import signed_headers, tenant_secret

log = logging.getLogger(__name__)


class WebhookQueueingJobRepository(PassThroughJobRepository):
    """Wraps a :class:`JobRepository`: a write that ends a job with a webhook queues the
    job's event on the webhook queue.

    Only the write that made the transition queues it (the update is conditional on the
    state before), so however many writers race, one event is queued per job end. The write
    is committed first: the queued event always finds the job ended. A broker that cannot
    take the event is logged and the write stands.
    """

    def __init__(self, jobs: JobRepository, webhooks: JobQueue) -> None:
        super().__init__(jobs)
        self._webhooks = webhooks

    async def update(
        self, job: Job, *, expected: JobState, **lease: Unpack[LeaseCondition]
    ) -> bool:
        written = await self._jobs.update(job, expected=expected, **lease)
        if written and job.webhook_url and job.state.is_terminal and not expected.is_terminal:
            try:
                await self._webhooks.publish(TranscriptionRequest(job.job_id, job.tenant))
            except Exception as exc:
                log.error(
                    "webhook event not queued; it will not be sent",
                    extra={"job_id": str(job.job_id), "error": str(exc)},
                )
        return written


class WebhookDispatcher:
    """The webhook queue's handler: one attempt at a job's event per message."""

    def __init__(
        self,
        jobs: JobRepository,
        sender: WebhookSender,
        *,
        master_secret: str,
        backoff_seconds: float,
        retry_for: timedelta,
        clock: Clock = utc_now,
    ) -> None:
        self._jobs = jobs
        self._sender = sender
        self._master_secret = master_secret
        # Doubling from the first delay, no longer than the broker's longest delay queue.
        self._backoff = RetryPolicy(first=backoff_seconds, ceiling=RETRY_DELAYS[-1])
        self._retry_for = retry_for
        self._clock = clock

    async def handle(self, request: TranscriptionRequest) -> None:
        """Makes the next attempt; raises RetryLater (with the backoff) after a failure that
        may pass, while the retry window lasts."""
        job = await self._jobs.get(request.job_id)
        if job is None or not job.webhook_url or not job.state.is_terminal:
            return
        event = event_id(job)
        made = await self._attempts(job, event)
        if any(d.delivered for d in made):
            return
        now = self._clock()
        body = event_body(job)
        secret = tenant_secret(self._master_secret, job.tenant)
        headers = signed_headers(secret, event, int(now.timestamp()), body)
        answer = await self._sender.post(job.webhook_url, headers, body)
        attempt = len(made) + 1
        if not await self._record(job.job_id, event, attempt, now, answer):
            return
        if answer.delivered or answer.final:
            return
        delay = self._backoff.delay(attempt, hint=None)
        assert job.complete_time is not None, "an ended job has its end time"
        if now + timedelta(seconds=delay) > job.complete_time + self._retry_for:
            log.warning(
                "webhook given up on: its retry window is over",
                extra={"job_id": str(job.job_id), "attempts": attempt, "error": answer.error},
            )
            return
        raise RetryLater(delay, f"webhook attempt {attempt} failed: {answer.error}")

    async def give_up(self, letter: DeadLetter) -> None:
        """A webhook message the queue gave up on (its handler kept failing): recorded as
        a last failed attempt, so the job says why no more came."""
        job = await self._jobs.get(letter.request.job_id)
        if job is None or not job.state.is_terminal:
            return
        event = event_id(job)
        made = await self._attempts(job, event)
        answer = Answer(0, f"given up on: {letter.reason}", final=True)
        await self._record(job.job_id, event, len(made) + 1, self._clock(), answer)

    async def _attempts(self, job: Job, event: str) -> list[WebhookDelivery]:
        """The attempts at this event so far."""
        return [d for d in await self._jobs.webhook_deliveries(job.job_id) if d.event_id == event]

    async def _record(
        self, job_id: uuid.UUID, event: str, attempt: int, now: datetime, answer: Answer
    ) -> bool:
        """Records the attempt; False if another consumer recorded that attempt first, or
        the job is gone (this message is then done with)."""
        delivery = WebhookDelivery(event, attempt, now, answer.status_code, answer.error)
        try:
            await self._jobs.add_webhook_delivery(job_id, delivery)
        except DeliveryNotRecorded:
            log.info("webhook attempt not recorded", extra={"job_id": str(job_id)})
            return False
        log.info(
            "webhook attempt",
            extra={
                "job_id": str(job_id),
                "attempt": attempt,
                "status_code": answer.status_code,
                "error": answer.error,
            },
        )
        return True
