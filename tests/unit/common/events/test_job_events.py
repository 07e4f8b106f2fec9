"""The job events port in memory: coalescing subscriptions, routing by job id, and the
repository that publishes its writes."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from steno.common.errors import BrokerUnavailable
from steno.common.events import Fanout, JobUpdate, Subscription
from steno.common.events.memory import InProcessJobEvents
from steno.common.events.publishing import EventingJobRepository
from steno.common.jobs import JobState
from tests.fakes import T0, FakeJobRepository, make_job


def update(
    job_id: uuid.UUID, state: JobState = JobState.PROCESSING, progress: float = 0.0
) -> JobUpdate:
    return JobUpdate(job_id, "default", state, progress, T0)


class RecordingEvents(InProcessJobEvents):
    """In-process events that also keep what was published, or fail to publish."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__()
        self.error = error
        self.published: list[JobUpdate] = []

    async def publish(self, update: JobUpdate) -> None:
        if self.error is not None:
            raise self.error
        self.published.append(update)
        await super().publish(update)


async def test_a_subscription_keeps_only_the_latest_unread_update() -> None:
    job_id = uuid.uuid4()
    subscription = Subscription(job_id)
    for progress in (0.1, 0.2, 0.3):
        subscription.put(update(job_id, progress=progress))

    assert (await subscription.next()).progress == 0.3
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await subscription.next()


async def test_updates_reach_every_subscriber_of_their_job_and_no_other() -> None:
    fanout = Fanout()
    first, second = uuid.uuid4(), uuid.uuid4()
    async with (
        fanout.subscribe(first) as a,
        fanout.subscribe(first) as b,
        fanout.subscribe(second) as c,
    ):
        fanout.deliver(update(first, progress=0.5))
        assert (await a.next()).progress == 0.5
        assert (await b.next()).progress == 0.5
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await c.next()
        assert fanout.watchers(first) == 2
    assert fanout.watchers(first) == fanout.watchers(second) == 0


async def test_in_process_events_deliver_what_is_published() -> None:
    events = InProcessJobEvents()
    job_id = uuid.uuid4()
    await events.publish(update(job_id, progress=0.1))  # before anyone listens: dropped
    async with events.subscribe(job_id) as subscription:
        await events.publish(update(job_id, JobState.COMPLETED, 1.0))
        got = await subscription.next()
    assert (got.state, got.progress) == (JobState.COMPLETED, 1.0)


async def test_writes_are_published_after_they_are_stored() -> None:
    events = RecordingEvents()
    inner = FakeJobRepository()
    jobs = EventingJobRepository(inner, events, clock=lambda: T0)
    job = make_job()

    await jobs.add(job)
    job.start(T0)
    assert await jobs.update(job, expected=JobState.QUEUED)
    job.progress = 0.5
    assert await jobs.update(job, expected=JobState.PROCESSING)

    assert [(u.job_id, u.state, u.progress) for u in events.published] == [
        (job.job_id, JobState.QUEUED, 0.0),
        (job.job_id, JobState.PROCESSING, 0.0),
        (job.job_id, JobState.PROCESSING, 0.5),
    ]
    assert all(u.tenant == job.tenant and u.update_time == T0 for u in events.published)


async def test_a_conditional_update_that_wrote_nothing_publishes_nothing() -> None:
    events = RecordingEvents()
    job = make_job()
    jobs = EventingJobRepository(FakeJobRepository([job]), events)

    job.cancel(T0)
    assert not await jobs.update(job, expected=JobState.PROCESSING)
    assert events.published == []


async def test_a_delete_is_published_with_the_last_state_and_an_unknown_one_is_not() -> None:
    events = RecordingEvents()
    job = make_job(state=JobState.COMPLETED)
    jobs = EventingJobRepository(FakeJobRepository([job]), events)

    await jobs.delete(job.job_id)
    await jobs.delete(uuid.uuid4())

    assert [(u.job_id, u.state) for u in events.published] == [(job.job_id, JobState.COMPLETED)]
    assert await jobs.get(job.job_id) is None


async def test_a_failed_publish_never_fails_the_write(caplog: pytest.LogCaptureFixture) -> None:
    events = RecordingEvents(BrokerUnavailable("the broker is down"))
    inner = FakeJobRepository()
    jobs = EventingJobRepository(inner, events)
    job = make_job()

    await jobs.add(job)
    job.cancel(T0)
    assert await jobs.update(job, expected=JobState.QUEUED)

    assert inner.stored(job.job_id).state is JobState.CANCELLED
    assert "job event not published" in caplog.text


async def test_reads_and_other_writes_go_to_the_wrapped_repository() -> None:
    job = make_job()
    inner = FakeJobRepository([job])
    jobs = EventingJobRepository(inner, RecordingEvents())

    found = await jobs.get(job.job_id)
    assert found is not None and found.job_id == job.job_id
    await jobs.mark_audio_deleted([job.job_id], T0)
    assert inner.stored(job.job_id).audio_delete_time == T0
