"""The job events port: how a job's changes reach the clients watching it.

Every write that changes a job's state or progress publishes a :class:`JobUpdate` (see
:class:`steno.common.events.publishing.EventingJobRepository`), and each gateway hands the
updates of a job to the WatchJob calls following it, whichever process made the change.

Events are hints, not records. Publishing is best effort and delivery at most once: a
watcher reads the job itself for the truth, and reads it again now and then anyway, so a
lost event costs a little latency, never a wrong answer or a watcher that hangs.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from steno.common.jobs import Job, JobState

if TYPE_CHECKING:
    from steno.common.events.fanout import Subscription


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """What changed about a job, as far as a watcher cares."""

    job_id: uuid.UUID
    tenant: str
    state: JobState
    progress: float
    update_time: datetime

    @classmethod
    def of(cls, job: Job, update_time: datetime) -> JobUpdate:
        return cls(job.job_id, job.tenant, job.state, job.progress, update_time)


class JobEvents(Protocol):
    async def connect(self) -> None:
        """Raises BrokerUnavailable if the broker cannot be reached at start-up."""
        ...

    async def close(self) -> None: ...

    async def publish(self, update: JobUpdate) -> None:
        """Sends ``update`` to the job's subscribers in every process. Best effort and quick:
        raises BrokerUnavailable, without waiting long, if it could not be sent."""
        ...

    def subscribe(self, job_id: uuid.UUID) -> AbstractAsyncContextManager[Subscription]:
        """The job's updates published from the moment the block is entered until it is
        left."""
        ...
