"""A worker's lease on the job it runs. While the work goes on, a heartbeat renews the lease
and stores the engine's progress every interval; the work is stopped as soon as the job
stops being the worker's (cancelled, deleted, or taken over after a lease that ran out)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from steno.common.clock import Clock
from steno.common.jobs import Job, JobRepository, JobState

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class LeaseLost(Exception):
    """The job stopped being this worker's while it ran."""


class Progress:
    """The latest fraction of the audio an engine has transcribed. Engines report from their
    own thread; a float assignment is atomic, and only ever moves forward."""

    def __init__(self) -> None:
        self.fraction = 0.0

    def report(self, fraction: float) -> None:
        self.fraction = max(self.fraction, min(1.0, fraction))


@dataclass(frozen=True, slots=True)
class Leases:
    """The leases ``owner`` holds on its jobs: ``length`` long, renewed every ``interval``
    seconds."""

    jobs: JobRepository
    owner: str
    length: timedelta
    interval: float
    clock: Clock

    def until(self, now: datetime) -> datetime:
        """When a lease taken or renewed at ``now`` runs out."""
        return now + self.length

    async def hold(self, job: Job, progress: Progress, work: Coroutine[Any, Any, _T]) -> _T:
        """Runs ``work`` (download, engine, post-processing) while a heartbeat renews the
        job's lease and writes its progress; stops the work and raises LeaseLost if the job
        stops being this worker's: cancelled, deleted, or taken over after a lease that ran
        out. The heartbeat has stopped by the time this returns, so the outcome's write is
        the only one."""
        running = asyncio.create_task(work, name=f"work {job.job_id}")
        heartbeat = asyncio.create_task(self._heartbeat(job, progress), name="heartbeat")
        try:
            done, _ = await asyncio.wait({running, heartbeat}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (running, heartbeat):
                task.cancel()
            await asyncio.gather(running, heartbeat, return_exceptions=True)
        if running not in done:
            raise LeaseLost(f"job {job.job_id} was cancelled, deleted or taken over")
        return running.result()

    async def _heartbeat(self, job: Job, progress: Progress) -> None:
        """Every progress interval: renews the lease and stores the progress. Returns when
        the job is no longer this worker's; a failed write is retried at the next beat (the
        lease outlives several)."""
        while True:
            await asyncio.sleep(self.interval)
            job.progress = max(job.progress, progress.fraction)
            job.lease_expire_time = self.clock() + self.length
            try:
                if not await self.jobs.update(job, expected=JobState.PROCESSING, owner=self.owner):
                    return
            except Exception as exc:
                log.warning(
                    "could not renew the lease",
                    extra={"job_id": str(job.job_id), "error": type(exc).__name__},
                )
