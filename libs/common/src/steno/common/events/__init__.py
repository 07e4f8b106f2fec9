"""The job events port: how a job's changes reach the clients watching it.

Every write that changes a job's state or progress publishes a :class:`JobUpdate` (see
:class:`steno.common.events.repository.EventingJobRepository`), and each gateway hands the
updates of a job to the WatchJob calls following it, whichever process made the change.

Events are hints, not records. Publishing is best effort and delivery at most once: a
watcher reads the job itself for the truth, and reads it again now and then anyway, so a
lost event costs a little latency, never a wrong answer or a watcher that hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from steno.common.errors import BrokerUnavailable
from steno.common.jobs import Job, JobState


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


class Subscription:
    """The updates of one job for one watcher, coalesced: a newer update replaces one not yet
    read. A slow watcher so holds one update, never a backlog; it loses nothing it needs,
    since it reads the job itself on each update."""

    def __init__(self, job_id: uuid.UUID) -> None:
        self.job_id = job_id
        self._latest: JobUpdate | None = None
        self._ready = asyncio.Event()

    def put(self, update: JobUpdate) -> None:
        self._latest = update
        self._ready.set()

    async def next(self) -> JobUpdate:
        """The latest update not yet read, once there is one."""
        await self._ready.wait()
        self._ready.clear()
        update, self._latest = self._latest, None
        assert update is not None, "set only with an update"
        return update


class Fanout:
    """The subscriptions of one process by job id: what an adapter hands each incoming
    update to."""

    def __init__(self) -> None:
        self._subscriptions: dict[uuid.UUID, set[Subscription]] = {}

    def deliver(self, update: JobUpdate) -> None:
        for subscription in self._subscriptions.get(update.job_id, ()):
            subscription.put(update)

    def watchers(self, job_id: uuid.UUID) -> int:
        """How many subscriptions the job has now."""
        return len(self._subscriptions.get(job_id, ()))

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: uuid.UUID) -> AsyncIterator[Subscription]:
        subscription = Subscription(job_id)
        self._subscriptions.setdefault(job_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            remaining = self._subscriptions[job_id]
            remaining.discard(subscription)
            if not remaining:
                del self._subscriptions[job_id]


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


__all__ = ["BrokerUnavailable", "Fanout", "JobEvents", "JobUpdate", "Subscription"]
