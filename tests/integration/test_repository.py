"""One contract for every JobRepository: Postgres, SQLite, and the in-memory fake that the
unit tests trust to behave like them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from steno.common.db import SqlJobRepository, create_engine
from steno.common.errors import DatabaseUnavailable
from steno.common.jobs import (
    AudioExpiry,
    DeliveryNotRecorded,
    DuplicateRequest,
    Job,
    JobError,
    JobRepository,
    JobState,
    PostProcessing,
    Segment,
    WebhookDelivery,
)
from steno.common.lexicons import Replacement
from steno.common.paging import PageCursor
from tests.fakes import T0, FakeJobRepository, make_job, make_transcript
from tests.support import free_port


@pytest.fixture
async def repository(database_url: str | None) -> AsyncIterator[JobRepository]:
    if database_url is None:
        yield FakeJobRepository()
        return
    engine = create_engine(database_url)
    yield SqlJobRepository(engine)
    await engine.dispose()


async def test_a_job_round_trips_every_field(repository: JobRepository) -> None:
    job = make_job(labels={"team": "blue"}, language="de", lexicon_id=str(uuid.uuid4()))
    await repository.add(job)
    job.start(T0)
    post = PostProcessing(
        lexicon_version=3,
        text="good morning Kubernetes",
        segments=[Segment(0.0, 2.25, "good morning Kubernetes")],
        replacements=[Replacement("cooper netties", "Kubernetes", 13)],
        warnings=["a warning for a person"],
    )
    job.complete(make_transcript(language_probability=0.875), T0 + timedelta(seconds=3), post)
    assert await repository.update(job, expected=JobState.PROCESSING) is False
    assert await repository.update(job, expected=JobState.QUEUED) is True
    assert await repository.get(job.job_id) == job


async def test_a_failure_keeps_its_code_and_message(repository: JobRepository) -> None:
    job = make_job()
    await repository.add(job)
    job.start(T0)
    await repository.update(job, expected=JobState.QUEUED)
    job.fail(JobError("INVALID_ARGUMENT", "not audio"), T0)
    await repository.update(job, expected=JobState.PROCESSING)
    stored = await repository.get(job.job_id)
    assert stored is not None and stored.error == JobError("INVALID_ARGUMENT", "not audio")


async def test_only_one_of_two_racing_claims_wins(repository: JobRepository) -> None:
    job = make_job()
    await repository.add(job)
    first, second = await repository.get(job.job_id), await repository.get(job.job_id)
    assert first is not None and second is not None
    first.start(T0)
    second.start(T0)
    results = [
        await repository.update(first, expected=JobState.QUEUED),
        await repository.update(second, expected=JobState.QUEUED),
    ]
    assert results == [True, False]


async def test_get_and_list_respect_the_tenant(repository: JobRepository) -> None:
    mine = make_job(tenant="acme", create_time=T0)
    theirs = make_job(tenant="globex", create_time=T0 + timedelta(seconds=1))
    for job in (mine, theirs):
        await repository.add(job)
    assert await repository.get(theirs.job_id, tenant="acme") is None
    assert await repository.get(theirs.job_id, tenant="globex") == theirs
    listed = await repository.list_jobs("acme", states=[], limit=10, after=None)
    assert [j.job_id for j in listed] == [mine.job_id]
    everyone = await repository.list_jobs(None, states=[], limit=10, after=None)
    assert [j.job_id for j in everyone] == [theirs.job_id, mine.job_id]


async def test_listing_pages_newest_first_and_filters_states(repository: JobRepository) -> None:
    jobs = [make_job(create_time=T0 + timedelta(seconds=i)) for i in range(5)]
    for job in jobs:
        await repository.add(job)
    jobs[0].start(T0)
    await repository.update(jobs[0], expected=JobState.QUEUED)

    first = await repository.list_jobs("default", states=[], limit=3, after=None)
    cursor = PageCursor(first[-1].create_time, first[-1].job_id)
    rest = await repository.list_jobs("default", states=[], limit=3, after=cursor)
    assert [j.job_id for j in first + rest] == [j.job_id for j in reversed(jobs)]
    processing = await repository.list_jobs(
        "default", states=[JobState.PROCESSING], limit=10, after=None
    )
    assert [j.job_id for j in processing] == [jobs[0].job_id]


async def test_expired_audio_is_found_in_id_order_until_marked(repository: JobRepository) -> None:
    ended = []
    for _ in range(3):
        job = make_job(audio_retention=timedelta(0))
        await repository.add(job)
        job.start(T0)
        await repository.update(job, expected=JobState.QUEUED)
        job.complete(make_transcript(segments=[Segment(0.0, 1.0, "hi")]), T0)
        await repository.update(job, expected=JobState.PROCESSING)
        ended.append(job)
    await repository.add(make_job())  # still queued: never expired

    now = T0 + timedelta(seconds=1)
    page = await repository.audio_expired(AudioExpiry(now), after=None, limit=2)
    page += await repository.audio_expired(AudioExpiry(now), after=page[-1].job_id, limit=2)
    assert [j.job_id for j in page] == sorted(j.job_id for j in ended)
    assert (
        await repository.audio_expired(AudioExpiry(T0 - timedelta(seconds=1)), after=None, limit=9)
        == []
    )

    await repository.mark_audio_deleted([j.job_id for j in ended], now)
    assert await repository.audio_expired(AudioExpiry(now), after=None, limit=9) == []
    stored = await repository.get(ended[0].job_id)
    assert stored is not None and stored.audio_delete_time == now


async def test_an_unreachable_database_is_unavailable_with_a_short_reason() -> None:
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/steno")
    try:
        with pytest.raises(DatabaseUnavailable, match="the database is unavailable") as caught:
            await SqlJobRepository(engine).get(uuid.uuid4())
    finally:
        await engine.dispose()
    assert "SQL" not in str(caught.value)
    assert len(str(caught.value)) < 300


async def test_a_request_id_is_unique_per_tenant(repository: JobRepository) -> None:
    first = make_job(request_id="r-1")
    await repository.add(first)
    with pytest.raises(DuplicateRequest):
        await repository.add(make_job(request_id="r-1"))
    await repository.add(make_job(request_id="r-1", tenant="globex"))
    await repository.add(make_job())  # no request_id: never a duplicate
    await repository.add(make_job())

    assert await repository.find_by_request("default", "r-1") == first
    assert await repository.find_by_request("default", "r-2") is None


async def test_an_owned_update_needs_the_lease_to_still_be_that_workers(
    repository: JobRepository,
) -> None:
    job = make_job()
    await repository.add(job)
    job.start(T0, owner="worker-a", lease_until=T0 + timedelta(seconds=60))
    assert await repository.update(job, expected=JobState.QUEUED)

    job.progress = 0.5
    assert await repository.update(job, expected=JobState.PROCESSING, owner="worker-b") is False
    assert await repository.update(job, expected=JobState.PROCESSING, owner="worker-a") is True
    stored = await repository.get(job.job_id)
    assert stored is not None
    assert (stored.lease_owner, stored.lease_expire_time, stored.progress) == (
        "worker-a", T0 + timedelta(seconds=60), 0.5
    )  # fmt: skip


async def test_unpublished_and_lease_expired_find_the_stranded_jobs(
    repository: JobRepository,
) -> None:
    now = T0 + timedelta(minutes=5)
    unpublished = make_job(create_time=T0)
    published = make_job(create_time=T0)
    expired = make_job(create_time=T0, publish_time=T0)
    live = make_job(create_time=T0, publish_time=T0)
    for job in (unpublished, published, expired, live):
        await repository.add(job)
    await repository.mark_published(published.job_id, T0)
    for job, until in ((expired, now - timedelta(seconds=1)), (live, now + timedelta(minutes=1))):
        job.start(T0, owner="w", lease_until=until)
        assert await repository.update(job, expected=JobState.QUEUED)

    assert [j.job_id for j in await repository.unpublished(now, limit=10)] == [unpublished.job_id]
    assert await repository.unpublished(T0, limit=10) == [], "younger than the cut-off"
    assert [j.job_id for j in await repository.lease_expired(now, limit=10)] == [expired.job_id]
    await repository.mark_published(published.job_id, now)
    stored = await repository.get(published.job_id)
    assert stored is not None and stored.publish_time == T0, "the first confirmation stays"


async def test_webhook_deliveries_are_kept_in_attempt_order_and_go_with_the_job(
    repository: JobRepository,
) -> None:
    job = make_job(webhook_url="https://hooks.example.com/steno")
    await repository.add(job)
    assert (await repository.get(job.job_id)) == job
    second = WebhookDelivery("evt", 2, T0 + timedelta(seconds=5), 200)
    first = WebhookDelivery("evt", 1, T0, 503, "the receiver answered 503")
    await repository.add_webhook_delivery(job.job_id, second)
    await repository.add_webhook_delivery(job.job_id, first)
    assert await repository.webhook_deliveries(job.job_id) == [first, second]
    # Another consumer's record of the same attempt is refused, not doubled.
    with pytest.raises(DeliveryNotRecorded):
        await repository.add_webhook_delivery(job.job_id, first)
    await repository.delete(job.job_id)
    assert await repository.webhook_deliveries(job.job_id) == []
    with pytest.raises(DeliveryNotRecorded):
        await repository.add_webhook_delivery(job.job_id, first)


async def test_ended_jobs_whose_webhook_was_never_attempted_are_found_in_id_order(
    repository: JobRepository,
) -> None:
    def ended(minutes: int, webhook_url: str = "https://hooks.example.com/steno") -> Job:
        complete_time = T0 + timedelta(minutes=minutes)
        return make_job(
            state=JobState.COMPLETED, webhook_url=webhook_url, complete_time=complete_time
        )

    unattempted = [ended(10), ended(20), ended(30)]
    attempted = ended(15)
    before_the_window, after_the_window = ended(0), ended(60)
    without_webhook = ended(20, webhook_url="")
    running = make_job(
        state=JobState.PROCESSING, webhook_url="https://hooks.example.com/steno", start_time=T0
    )
    for job in [*unattempted, attempted, before_the_window, after_the_window]:
        await repository.add(job)
    await repository.add(without_webhook)
    await repository.add(running)
    await repository.add_webhook_delivery(attempted.job_id, WebhookDelivery("evt", 1, T0, 503))

    since, until = T0 + timedelta(minutes=5), T0 + timedelta(minutes=45)
    first = await repository.webhooks_unattempted(since, until, after=None, limit=2)
    rest = await repository.webhooks_unattempted(since, until, after=first[-1].job_id, limit=2)

    assert [job.job_id for job in first + rest] == sorted(job.job_id for job in unattempted)
    assert first[0] == min(unattempted, key=lambda job: job.job_id)


async def test_the_unattempted_webhooks_query_reads_the_partial_index(postgres_url: str) -> None:
    """The janitor runs it every pass: it must not scan every job ever recorded."""
    engine = create_engine(postgres_url)
    query = SqlJobRepository.webhooks_unattempted_query(
        T0, T0 + timedelta(hours=1), after=None, limit=500
    )
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    try:
        async with engine.connect() as conn:
            # An empty table makes any plan cheap; forbid the scan to see whether the index
            # can serve the query at all.
            await conn.execute(text("SET enable_seqscan = off"))
            plan = (await conn.execute(text(f"EXPLAIN {compiled}"))).scalars().all()
    finally:
        await engine.dispose()
    assert any("ix_jobs_webhook_complete_time" in line for line in plan), plan
