"""The reconciler: unpublished jobs are published, abandoned ones handed back, and a second
pass finds nothing to do."""

from __future__ import annotations

from datetime import datetime, timedelta

from steno.common.broker import TranscriptionRequest
from steno.common.errors import BrokerUnavailable
from steno.common.jobs import Job, JobState, WebhookDelivery
from steno.janitor.reconcile import reconcile
from tests.fakes import T0, FakeJobRepository, RecordingQueue, make_job

GRACE = timedelta(seconds=60)
NOW = T0 + timedelta(minutes=10)
WEBHOOK_GRACE = timedelta(minutes=5)
WEBHOOK_RETRY_FOR = timedelta(hours=1)


async def run(
    jobs: FakeJobRepository, queue: RecordingQueue, webhooks: RecordingQueue | None = None
) -> dict[str, object]:
    summary = await reconcile(
        jobs,
        queue,
        now=NOW,
        publish_grace=GRACE,
        webhooks=webhooks or RecordingQueue(),
        webhook_grace=WEBHOOK_GRACE,
        webhook_retry_for=WEBHOOK_RETRY_FOR,
        batch_size=2,
    )
    return summary.as_dict()


async def test_unpublished_jobs_past_the_grace_are_published_once() -> None:
    stranded = [make_job(create_time=T0 + timedelta(seconds=i)) for i in range(3)]
    young = make_job(create_time=NOW - timedelta(seconds=10))
    published = make_job(publish_time=T0)
    jobs, queue = FakeJobRepository([*stranded, young, published]), RecordingQueue()

    assert await run(jobs, queue) == {
        "published": 3,
        "requeued": 0,
        "webhooks_requeued": 0,
        "errors": [],
    }

    assert queue.published == [TranscriptionRequest(j.job_id, j.tenant) for j in stranded]
    assert all(jobs.stored(j.job_id).publish_time == NOW for j in stranded)
    assert jobs.stored(young.job_id).publish_time is None, "its gateway may be publishing it"
    assert await run(jobs, queue) == {
        "published": 0,
        "requeued": 0,
        "webhooks_requeued": 0,
        "errors": [],
    }


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

    assert await run(jobs, queue) == {
        "published": 0,
        "requeued": 1,
        "webhooks_requeued": 0,
        "errors": [],
    }

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
    assert await run(jobs, RecordingQueue()) == {
        "published": 1,
        "requeued": 0,
        "webhooks_requeued": 0,
        "errors": [],
    }


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

    assert await run(jobs, queue) == {
        "published": 0,
        "requeued": 0,
        "webhooks_requeued": 0,
        "errors": [],
    }
    assert jobs.stored(abandoned.job_id).state is JobState.PROCESSING
    assert queue.published == []


def ended(minutes_ago: float, **overrides: object) -> Job:
    """A job that named a webhook and was cancelled ``minutes_ago``."""
    fields: dict[str, object] = {
        "state": JobState.CANCELLED,
        "publish_time": T0,
        "webhook_url": "https://hooks.example.com/steno",
        "complete_time": NOW - timedelta(minutes=minutes_ago),
    }
    return make_job(**{**fields, **overrides})


async def test_webhook_events_never_attempted_are_queued_again_within_the_window() -> None:
    unsent = [ended(6), ended(20), ended(50)]
    attempted = ended(30)
    young = ended(1)  # its queued event may not have been tried yet
    too_old = ended(61)  # past the retry window: no attempt would be made
    without_webhook = ended(30, webhook_url="")
    jobs = FakeJobRepository([*unsent, attempted, young, too_old, without_webhook])
    await jobs.add_webhook_delivery(
        attempted.job_id, WebhookDelivery("msg_x", 1, NOW, 500, "HTTP 500")
    )
    webhooks = RecordingQueue()

    summary = await run(jobs, RecordingQueue(), webhooks)

    assert summary == {"published": 0, "requeued": 0, "webhooks_requeued": 3, "errors": []}
    assert sorted(webhooks.published, key=lambda r: r.job_id) == sorted(
        (TranscriptionRequest(j.job_id, j.tenant) for j in unsent), key=lambda r: r.job_id
    )


async def test_a_broker_refusing_a_webhook_event_stops_the_pass_with_an_error() -> None:
    jobs = FakeJobRepository([ended(10)])

    summary = await run(jobs, RecordingQueue(), RecordingQueue(error=BrokerUnavailable("down")))

    assert summary["webhooks_requeued"] == 0
    assert summary["errors"] == ["reconciliation stopped: down"]
