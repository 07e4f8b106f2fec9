"""A job repository that announces its writes, so that whatever changes a job (a worker's
progress, its result, a client's cancel) reaches the job's watchers without the code that
changed it knowing about events."""

from __future__ import annotations

import logging
import uuid
from typing import Unpack

from steno.common.clock import Clock, utc_now
from steno.common.events.job_events import JobEvents, JobUpdate
from steno.common.jobs import (
    Job,
    JobRepository,
    JobState,
    LeaseCondition,
    PassThroughJobRepository,
)
from steno.common.quotas import UNLIMITED, QuotaLimits

log = logging.getLogger(__name__)


class EventingJobRepository(PassThroughJobRepository):
    """Wraps a :class:`JobRepository`: after each write that stored something a watcher can
    see (a job added, updated or deleted) it publishes a :class:`JobUpdate`.

    The write is the truth and the event only a hint: an event that cannot be published is
    logged and dropped, never failing the write (watchers re-read the job now and then). A
    conditional update that wrote nothing publishes nothing. Reads and the other writes go
    straight to the wrapped repository.
    """

    def __init__(self, jobs: JobRepository, events: JobEvents, *, clock: Clock = utc_now) -> None:
        super().__init__(jobs)
        self._events = events
        self._clock = clock

    async def add(self, job: Job, *, within: QuotaLimits = UNLIMITED) -> None:
        await self._jobs.add(job, within=within)
        await self._announce(job)

    async def update(
        self, job: Job, *, expected: JobState, **lease: Unpack[LeaseCondition]
    ) -> bool:
        written = await self._jobs.update(job, expected=expected, **lease)
        if written:
            await self._announce(job)
        return written

    async def delete(self, job_id: uuid.UUID) -> None:
        """Deletes the job, then announces it with its last state: its watchers look for it,
        find it gone, and stop."""
        job = await self._jobs.get(job_id)
        await self._jobs.delete(job_id)
        if job is not None:
            await self._announce(job)

    async def _announce(self, job: Job) -> None:
        try:
            await self._events.publish(JobUpdate.of(job, self._clock()))
        except Exception as exc:
            log.warning(
                "job event not published; watchers will see the change on their next read",
                extra={
                    "job_id": str(job.job_id),
                    "tenant": job.tenant,
                    "state": job.state.value,
                    "error": str(exc),
                },
            )
