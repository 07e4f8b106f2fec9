"""The fakes keep their ports' contracts, so tests built on them mean something."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from steno.common.jobs import AudioExpiry, Job, JobState
from steno.common.paging import PageCursor
from tests.fakes import T0, FakeJobRepository, FakeObjectStore, make_job


async def test_repository_hands_out_copies() -> None:
    job = make_job()
    jobs = FakeJobRepository()
    await jobs.add(job)

    job.state = JobState.FAILED
    loaded = await jobs.get(job.job_id)
    assert loaded is not None and loaded.state is JobState.QUEUED
    loaded.state = JobState.COMPLETED
    assert jobs.stored(job.job_id).state is JobState.QUEUED


async def test_repository_refuses_a_duplicate_id() -> None:
    job = make_job()
    jobs = FakeJobRepository([job])
    with pytest.raises(ValueError):
        await jobs.add(job)


async def test_get_filters_by_tenant() -> None:
    job = make_job(tenant="acme")
    jobs = FakeJobRepository([job])
    assert await jobs.get(job.job_id, "acme") is not None
    assert await jobs.get(job.job_id, "other") is None
    assert await jobs.get(job.job_id) is not None


async def test_update_writes_only_if_the_stored_state_is_expected() -> None:
    job = make_job()
    jobs = FakeJobRepository([job])
    first, second = await jobs.get(job.job_id), await jobs.get(job.job_id)
    assert first is not None and second is not None
    first.start(T0)
    second.start(T0 + timedelta(seconds=1))

    assert await jobs.update(first, expected=JobState.QUEUED) is True
    assert await jobs.update(second, expected=JobState.QUEUED) is False
    assert jobs.stored(job.job_id).start_time == T0
    assert await jobs.update(make_job(), expected=JobState.QUEUED) is False


async def test_update_leaves_upload_facts_alone() -> None:
    job = make_job(filename="a.wav", size_bytes=10)
    jobs = FakeJobRepository([job])
    changed = make_job(job_id=job.job_id, filename="b.wav", size_bytes=99, attempts=4)

    assert await jobs.update(changed, expected=JobState.QUEUED)

    stored = jobs.stored(job.job_id)
    assert (stored.filename, stored.size_bytes, stored.attempts) == ("a.wav", 10, 4)


async def test_list_pages_newest_first_by_time_then_id() -> None:
    same_time = [make_job(create_time=T0) for _ in range(3)]
    older = make_job(create_time=T0 - timedelta(minutes=1))
    newer = make_job(create_time=T0 + timedelta(minutes=1))
    other_tenant = make_job(tenant="other", create_time=T0 + timedelta(hours=1))
    jobs = FakeJobRepository([*same_time, older, newer, other_tenant])
    expected = [newer, *sorted(same_time, key=lambda j: j.job_id, reverse=True), older]

    seen: list[Job] = []
    after = None
    while page := await jobs.list_jobs("default", states=[], limit=2, after=after):
        seen.extend(page)
        after = PageCursor(page[-1].create_time, page[-1].job_id)

    assert [j.job_id for j in seen] == [j.job_id for j in expected]


async def test_list_filters_by_state() -> None:
    queued, failed = make_job(), make_job(state=JobState.FAILED)
    jobs = FakeJobRepository([queued, failed])
    page = await jobs.list_jobs("default", states=[JobState.FAILED], limit=10, after=None)
    assert [j.job_id for j in page] == [failed.job_id]


async def test_audio_expired_pages_by_id() -> None:
    expired = []
    for _ in range(5):
        job = make_job(state=JobState.COMPLETED, audio_expire_time=T0)
        expired.append(job)
    jobs = FakeJobRepository(expired)

    first = await jobs.audio_expired(AudioExpiry(T0), after=None, limit=3)
    rest = await jobs.audio_expired(AudioExpiry(T0), after=first[-1].job_id, limit=3)

    ids = sorted(j.job_id for j in expired)
    assert [j.job_id for j in first] == ids[:3]
    assert [j.job_id for j in rest] == ids[3:]
    assert (
        await jobs.audio_expired(AudioExpiry(T0 - timedelta(seconds=1)), after=None, limit=10) == []
    )


async def test_mark_audio_deleted_keeps_the_first_time() -> None:
    job = make_job(state=JobState.COMPLETED, audio_expire_time=T0)
    jobs = FakeJobRepository([job])
    await jobs.mark_audio_deleted([job.job_id, uuid.uuid4()], T0)
    await jobs.mark_audio_deleted([job.job_id], T0 + timedelta(days=1))
    assert jobs.stored(job.job_id).audio_delete_time == T0


async def test_store_delete_failures_are_per_key() -> None:
    store = FakeObjectStore({"a": b"1", "b": b"2"})
    store.delete_failures["b"] = "denied"

    failures = await store.delete_many(["a", "b", "missing"])

    assert [(f.key, f.reason) for f in failures] == [("b", "denied")]
    assert store.objects == {"b": b"2"}
