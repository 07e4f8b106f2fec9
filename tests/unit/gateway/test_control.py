"""Cancelling and deleting a job, over in-memory fakes of the ports."""

from __future__ import annotations

import pytest

from steno.common.errors import StorageUnavailable
from steno.common.jobs import Job, JobState
from steno.gateway.control import (
    CancelRaced,
    JobNotFound,
    NothingToCancel,
    cancel_job,
    delete_job,
)
from tests.fakes import T0, FakeJobRepository, FakeObjectStore, make_job


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.PROCESSING])
async def test_a_live_job_is_cancelled_and_keeps_its_audio_for_its_retention(
    state: JobState,
) -> None:
    job = make_job(state=state)
    jobs = FakeJobRepository([job])

    cancelled = await cancel_job(jobs, job, clock=lambda: T0)

    stored = jobs.stored(job.job_id)
    assert cancelled.state is stored.state is JobState.CANCELLED
    assert stored.complete_time == T0
    assert stored.audio_expire_time == T0 + job.audio_retention


@pytest.mark.parametrize("state", [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED])
async def test_an_ended_job_has_nothing_to_cancel(state: JobState) -> None:
    job = make_job(state=state)
    with pytest.raises(NothingToCancel, match=f"is {state.value}; nothing to cancel"):
        await cancel_job(FakeJobRepository([job]), job)


async def test_a_cancel_that_loses_a_race_applies_to_what_the_job_became() -> None:
    read = make_job()
    jobs = FakeJobRepository([read])
    claimed = make_job(job_id=read.job_id)
    claimed.start(T0)
    await jobs.update(claimed, expected=JobState.QUEUED)  # a worker, after the gateway read

    cancelled = await cancel_job(jobs, read, clock=lambda: T0)

    assert cancelled.state is JobState.CANCELLED and cancelled.attempts == 1
    assert [(expected, written) for _, expected, written in jobs.updates[1:]] == [
        (JobState.QUEUED, False),
        (JobState.PROCESSING, True),
    ]


async def test_a_cancel_that_loses_to_the_end_of_the_job_says_so() -> None:
    read = make_job()
    jobs = FakeJobRepository([read])
    jobs.stored(read.job_id).state = JobState.COMPLETED  # the worker finished meanwhile

    with pytest.raises(NothingToCancel, match="is COMPLETED"):
        await cancel_job(jobs, read)


async def test_a_job_that_keeps_changing_is_not_cancelled_forever() -> None:
    class Restless(FakeJobRepository):
        async def update(self, job: Job, *, expected: JobState, owner: str | None = None) -> bool:
            return False

    job = make_job()
    with pytest.raises(CancelRaced, match="try again"):
        await cancel_job(Restless([job]), job)


async def test_a_job_deleted_during_a_cancel_is_not_found() -> None:
    job = make_job()
    jobs = FakeJobRepository([job])
    await jobs.delete(job.job_id)
    with pytest.raises(JobNotFound):
        await cancel_job(jobs, job)


async def test_delete_removes_the_audio_then_the_job() -> None:
    job = make_job()
    jobs = FakeJobRepository([job])
    store = FakeObjectStore({job.object_key: b"audio"})

    await delete_job(jobs, store, job)

    assert store.objects == {} and jobs.all() == []


async def test_a_job_whose_audio_cannot_be_deleted_is_kept() -> None:
    job = make_job()
    jobs = FakeJobRepository([job])
    store = FakeObjectStore({job.object_key: b"audio"})
    store.delete_failures[job.object_key] = "AccessDenied: no"

    with pytest.raises(StorageUnavailable, match=r"AccessDenied: no.*the job was kept"):
        await delete_job(jobs, store, job)
    assert jobs.all() and store.objects
