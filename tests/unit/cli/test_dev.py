"""``steno dev`` queues again the jobs its in-process queue lost in the previous run."""

from __future__ import annotations

from datetime import timedelta

from steno.cli.dev import requeue_unfinished
from steno.common.jobs import JobState
from tests.fakes import T0, FakeJobRepository, RecordingQueue, make_job, make_transcript


async def test_unfinished_jobs_are_queued_again_and_processing_ones_handed_back() -> None:
    queued = make_job(create_time=T0)
    processing = make_job(create_time=T0 + timedelta(seconds=1), tenant="other")
    processing.start(T0)
    done = make_job(create_time=T0 + timedelta(seconds=2))
    done.start(T0)
    done.complete(make_transcript(), T0)
    jobs = FakeJobRepository([queued, processing, done])
    queue = RecordingQueue()

    assert await requeue_unfinished(jobs, queue) == 2

    assert {r.job_id for r in queue.published} == {queued.job_id, processing.job_id}
    assert jobs.stored(processing.job_id).state is JobState.QUEUED
    assert jobs.stored(done.job_id).state is JobState.COMPLETED


async def test_paging_reaches_every_unfinished_job() -> None:
    many = [make_job(create_time=T0 + timedelta(seconds=i)) for i in range(1203)]
    queue = RecordingQueue()
    assert await requeue_unfinished(FakeJobRepository(many), queue) == 1203
    assert len({r.job_id for r in queue.published}) == 1203
