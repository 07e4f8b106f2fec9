"""publish_job: the request first, then the note that the broker has it, best effort."""

from __future__ import annotations

import pytest

from steno.common.broker import TranscriptionRequest
from steno.common.broker.queueing import publish_job
from steno.common.errors import BrokerUnavailable, DatabaseUnavailable
from tests.fakes import T0, FakeJobRepository, RecordingQueue, make_job


async def test_the_request_is_published_and_then_the_job_marked() -> None:
    job = make_job()
    jobs, queue = FakeJobRepository([job]), RecordingQueue()

    await publish_job(queue, jobs, job, now=T0)

    assert queue.published == [TranscriptionRequest(job.job_id, job.tenant)]
    assert jobs.stored(job.job_id).publish_time == T0
    assert job.publish_time == T0


async def test_a_refused_publish_marks_nothing() -> None:
    job = make_job()
    jobs = FakeJobRepository([job])

    with pytest.raises(BrokerUnavailable):
        await publish_job(RecordingQueue(BrokerUnavailable("down")), jobs, job, now=T0)

    assert jobs.stored(job.job_id).publish_time is None
    assert job.publish_time is None


async def test_a_mark_that_cannot_be_written_leaves_the_job_published(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = make_job()
    jobs, queue = FakeJobRepository([job]), RecordingQueue()

    async def database_down(*args: object) -> None:
        raise DatabaseUnavailable("database down")

    monkeypatch.setattr(jobs, "mark_published", database_down)
    await publish_job(queue, jobs, job, now=T0)

    assert queue.published == [TranscriptionRequest(job.job_id, job.tenant)]
    assert job.publish_time is None, "left for the reconciler to publish again"
