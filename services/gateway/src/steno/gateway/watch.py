"""WatchJob's logic: a job as the stream of its changes.

Job events say when to look; the database says what is there. A watcher subscribes before
its first read, so no change can fall between the two, reads the job on every event for it,
and sends it on when its state or progress changed. It also reads the job every few seconds
without an event, so one lost on the way (a broker restart, a publish that failed) delays
the stream a little but never stalls it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator

from prometheus_client import Gauge

from steno.common.events import JobEvents, Subscription
from steno.common.jobs import Job, JobRepository
from steno.gateway.control import JobNotFound

# Seconds between reads of a job when no event says it changed.
REREAD_SECONDS = 5.0

WATCHES = Gauge("steno_job_watches", "WatchJob streams open")


class GatewayStopping(Exception):
    """The gateway is shutting down; the watcher should watch again, on another replica."""

    def __init__(self) -> None:
        super().__init__("the gateway is shutting down; watch the job again")


class Watches:
    """The WatchJob streams of one gateway, which all end when it begins to stop: a stream
    follows its job for as long as the job runs, and must not hold up a shutdown."""

    def __init__(
        self, jobs: JobRepository, events: JobEvents, *, reread: float = REREAD_SECONDS
    ) -> None:
        self._jobs = jobs
        self._events = events
        self._reread = reread
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Ends every stream, now and from now on, with GatewayStopping."""
        self._stopping.set()

    async def follow(self, job_id: uuid.UUID, tenant: str) -> AsyncGenerator[Job, None]:
        """The tenant's job as it is now, then again each time its state or progress has
        changed, ending after a terminal state. Raises JobNotFound if there is no such job
        or it is deleted meanwhile, and GatewayStopping when the gateway stops."""
        with WATCHES.track_inprogress():
            async with self._events.subscribe(job_id) as updates:
                job = await self._read(job_id, tenant, "")
                yield job
                sent = (job.state, job.progress)
                while not job.state.is_terminal:
                    await self._next_look(updates)
                    job = await self._read(job_id, tenant, "it was deleted while being watched")
                    if (job.state, job.progress) != sent:
                        sent = (job.state, job.progress)
                        yield job

    async def _read(self, job_id: uuid.UUID, tenant: str, missing: str) -> Job:
        job = await self._jobs.get(job_id, tenant=tenant)
        if job is None:
            raise JobNotFound(job_id, missing)
        return job

    async def _next_look(self, updates: Subscription) -> None:
        """Returns on the job's next update, or once it is time to read it anyway."""
        if self._stopping.is_set():
            raise GatewayStopping
        update = asyncio.ensure_future(updates.next())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait(
                {update, stopping}, timeout=self._reread, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            update.cancel()
            stopping.cancel()
        if self._stopping.is_set():
            raise GatewayStopping
