"""Watching a job over in-memory fakes of the ports: events say when to look, the
repository what is there."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator

import pytest

from steno.common.events.memory import InProcessJobEvents
from steno.common.events.publishing import EventingJobRepository
from steno.common.jobs import Job, JobState
from steno.gateway.control import JobNotFound
from steno.gateway.watch import GatewayStopping, Watches
from tests.fakes import T0, FakeJobRepository, make_job, make_transcript

# Long enough that a test passing within it was driven by events, not by re-reads.
NO_REREAD = 60.0
STEP = 2.0


class Setup:
    def __init__(self, *jobs: Job, reread: float = NO_REREAD) -> None:
        self.inner = FakeJobRepository(jobs)
        self.events = InProcessJobEvents()
        # What a transcriber writes through: its changes reach the watchers as events.
        self.jobs = EventingJobRepository(self.inner, self.events)
        self.watches = Watches(self.jobs, self.events, reread=reread)


async def next_of(changes: AsyncGenerator[Job, None]) -> Job:
    async with asyncio.timeout(STEP):
        return await anext(changes)


async def test_a_watch_sends_the_current_state_then_each_change_and_ends() -> None:
    job = make_job()
    setup = Setup(job)
    changes = setup.watches.follow(job.job_id, job.tenant)
    async with contextlib.aclosing(changes):
        assert (await next_of(changes)).state is JobState.QUEUED

        job.start(T0)
        await setup.jobs.update(job, expected=JobState.QUEUED)
        assert (await next_of(changes)).state is JobState.PROCESSING

        job.progress = 0.5
        await setup.jobs.update(job, expected=JobState.PROCESSING)
        seen = await next_of(changes)
        assert (seen.state, seen.progress) == (JobState.PROCESSING, 0.5)

        job.complete(make_transcript(), T0)
        await setup.jobs.update(job, expected=JobState.PROCESSING)
        done = await next_of(changes)
        assert done.state is JobState.COMPLETED and done.original_text

        with pytest.raises(StopAsyncIteration):
            await next_of(changes)
    assert setup.events._fanout.watchers(job.job_id) == 0


async def test_a_watch_left_early_unsubscribes() -> None:
    job = make_job()
    setup = Setup(job)
    changes = setup.watches.follow(job.job_id, job.tenant)
    async with contextlib.aclosing(changes):
        await next_of(changes)
        assert setup.events._fanout.watchers(job.job_id) == 1
    assert setup.events._fanout.watchers(job.job_id) == 0


async def test_a_write_that_changes_nothing_a_watcher_sees_is_not_sent_again() -> None:
    job = make_job(state=JobState.PROCESSING, progress=0.25)
    setup = Setup(job)
    changes = setup.watches.follow(job.job_id, job.tenant)
    async with contextlib.aclosing(changes):
        await next_of(changes)
        job.lease_owner = "worker-2"  # a lease renewal: same state, same progress
        await setup.jobs.update(job, expected=JobState.PROCESSING)
        job.progress = 0.75
        await setup.jobs.update(job, expected=JobState.PROCESSING)
        assert (await next_of(changes)).progress == 0.75


async def test_a_change_whose_event_was_lost_is_found_by_the_next_reread() -> None:
    job = make_job()
    setup = Setup(job, reread=0.05)
    changes = setup.watches.follow(job.job_id, job.tenant)
    async with contextlib.aclosing(changes):
        await next_of(changes)
        job.cancel(T0)
        await setup.inner.update(job, expected=JobState.QUEUED)  # no event
        assert (await next_of(changes)).state is JobState.CANCELLED


async def test_an_unknown_or_foreign_job_is_not_found() -> None:
    job = make_job(tenant="acme")
    setup = Setup(job)
    for job_id, tenant in ((uuid.uuid4(), "acme"), (job.job_id, "other")):
        with pytest.raises(JobNotFound, match=f"no job {job_id}"):
            await next_of(setup.watches.follow(job_id, tenant))


async def test_a_job_deleted_while_watched_ends_the_watch_as_not_found() -> None:
    job = make_job()
    setup = Setup(job)
    changes = setup.watches.follow(job.job_id, job.tenant)
    async with contextlib.aclosing(changes):
        await next_of(changes)
        await setup.jobs.delete(job.job_id)
        with pytest.raises(JobNotFound, match="deleted while being watched"):
            await next_of(changes)


async def test_stopping_the_gateway_ends_every_watch() -> None:
    job = make_job()
    setup = Setup(job)
    changes = setup.watches.follow(job.job_id, job.tenant)
    async with contextlib.aclosing(changes):
        await next_of(changes)
        pending = asyncio.ensure_future(next_of(changes))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pending), 0.05)  # waiting for a change
        setup.watches.stop()
        with pytest.raises(GatewayStopping):
            await pending
