"""The reconciler: unpublished jobs are published, abandoned ones handed back, and a second
pass finds nothing to do."""

from __future__ import annotations

from datetime import datetime, timedelta

from steno.common.broker import TranscriptionRequest
from steno.common.errors import BrokerUnavailable
from steno.common.jobs import Job, JobState
from steno.janitor.reconcile import reconcile
from tests.fakes import T0, FakeJobRepository, RecordingQueue, make_job

GRACE = timedelta(seconds=60)
NOW = T0 + timedelta(minutes=10)


async def run(jobs: FakeJobRepository, queue: RecordingQueue) -> dict[str, object]:
    summary = await reconcile(jobs, queue, now=NOW, publish_grace=GRACE, batch_size=2)
    return summary.as_dict()


async def test_unpublished_jobs_past_the_grace_are_published_once() -> None:
    stranded = [make_job(create_time=T0 + timedelta(seconds=i)) for i in range(3)]
    young = make_job(create_time=NOW - timedelta(seconds=10))
    published = make_job(publish_time=T0)
    jobs, queue = FakeJobRepository([*stranded, young, published]), RecordingQueue()

    assert await run(jobs, queue) == {"published": 3, "requeued": 0, "errors": []}

    assert queue.published == [TranscriptionRequest(j.job_id, j.tenant) for j in stranded]
    assert all(jobs.stored(j.job_id).publish_time == NOW for j in stranded)
    assert jobs.stored(young.job_id).publish_time is None, "its gateway may be publishing it"
    assert await run(jobs, queue) == {"published": 0, "requeued": 0, "errors": []}


async def test_a_job_whose_lease_ran_out_is_handed_back_and_published() -> None:
    abandoned = make_job(
        state=JobState.PROCESSING,
        attempts=1,
        publish_time=T0,
        lease_owner="dead",
        lease_expire_time=NOW - timedelta(seconds=1),
    )
    alive = make_job(
        state=JobState.PROCESSING,
        attempts=1,
        publish_time=T0,
        lease_owner="alive",
        lease_expire_time=NOW + timedelta(seconds=30),
    )
    jobs, queue = FakeJobRepository([abandoned, alive]), RecordingQueue()

    assert await run(jobs, queue) == {"published": 0, "requeued": 1, "errors": []}

    back = jobs.stored(abandoned.job_id)
    assert (back.state, back.lease_owner, back.publish_time) == (JobState.QUEUED, "", NOW)
    assert queue.published == [TranscriptionRequest(abandoned.job_id, abandoned.tenant)]
    assert jobs.stored(alive.job_id).lease_owner == "alive"


async def test_a_broker_outage_leaves_the_job_to_the_next_pass() -> None:
    abandoned = make_job(
        state=JobState.PROCESSING, publish_time=T0, lease_owner="dead", lease_expire_time=T0
    )
    jobs = FakeJobRepository([abandoned])

    summary = await run(jobs, RecordingQueue(error=BrokerUnavailable("broker down")))

    assert summary["requeued"] == 0 and summary["errors"] == ["reconciliation stopped: broker down"]
    stranded = jobs.stored(abandoned.job_id)
    assert (stranded.state, stranded.publish_time) == (JobState.QUEUED, None)
    assert await run(jobs, RecordingQueue()) == {"published": 1, "requeued": 0, "errors": []}


async def test_a_lease_renewed_after_it_was_read_is_left_alone() -> None:
    """The reconciler read an expired lease, then its worker renewed it: the hand-back's
    conditional write loses, and the live worker keeps its job."""
    abandoned = make_job(
        state=JobState.PROCESSING, publish_time=T0, lease_owner="slow", lease_expire_time=T0
    )

    class RenewingMeanwhile(FakeJobRepository):
        async def lease_expired(self, now: datetime, *, limit: int) -> list[Job]:
            found = await super().lease_expired(now, limit=limit)
            self.stored(abandoned.job_id).lease_expire_time = now + timedelta(seconds=30)
            return found

    jobs, queue = RenewingMeanwhile([abandoned]), RecordingQueue()

    assert await run(jobs, queue) == {"published": 0, "requeued": 0, "errors": []}
    assert jobs.stored(abandoned.job_id).state is JobState.PROCESSING
    assert queue.published == []
