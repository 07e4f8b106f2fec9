"""The retention sweep deletes the audio of ended jobs whose retention ran out, and only that."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from steno.common.errors import StorageUnavailable
from steno.common.jobs import AudioExpiry, Job, JobError, JobState
from steno.common.storage import DeleteFailure
from steno.common.sweep import MAX_REPORTED_ERRORS, sweep_expired_audio
from tests.fakes import T0, FakeJobRepository, FakeObjectStore, make_job

NOW = T0 + timedelta(days=2)
PAST = NOW - timedelta(seconds=1)


def ended(
    state: JobState = JobState.COMPLETED, *, expire: datetime | None = PAST, **fields: object
) -> Job:
    """A job in ``state`` whose audio expires at ``expire``."""
    job = make_job(**fields)
    job.state = state
    job.complete_time = T0
    job.audio_expire_time = expire
    if state is JobState.FAILED:
        job.error = JobError("INTERNAL", "boom")
    return job


def world(*jobs: Job) -> tuple[FakeJobRepository, FakeObjectStore]:
    store = FakeObjectStore({job.object_key: b"\x00" * job.size_bytes for job in jobs})
    return FakeJobRepository(jobs), store


async def test_sweeps_only_ended_jobs_past_expiry_not_yet_deleted() -> None:
    due = [ended(JobState.COMPLETED), ended(JobState.FAILED), ended(JobState.CANCELLED)]
    at_expiry = ended(expire=NOW)
    kept = [
        make_job(state=JobState.QUEUED),
        make_job(state=JobState.PROCESSING),
        # Live jobs with an expiry in the past are still not swept.
        make_job(state=JobState.PROCESSING, audio_expire_time=PAST),
        ended(expire=NOW + timedelta(seconds=1)),
        ended(expire=None),
    ]
    already = ended(audio_delete_time=T0 + timedelta(days=1))
    jobs, store = world(*due, at_expiry, *kept, already)
    store.objects.pop(already.object_key)

    summary = await sweep_expired_audio(jobs, store, now=NOW, batch_size=100)

    swept = [*due, at_expiry]
    assert summary.scanned == summary.deleted == len(swept)
    assert summary.ok and summary.failed == 0 and summary.errors == []
    assert set(store.objects) == {job.object_key for job in kept}
    for job in swept:
        assert jobs.stored(job.job_id).audio_delete_time == NOW
    for job in kept:
        assert jobs.stored(job.job_id).audio_delete_time is None
    assert jobs.stored(already.job_id).audio_delete_time == T0 + timedelta(days=1)


async def test_sweeps_in_batches_ordered_by_id() -> None:
    batch = [ended(size_bytes=100 * (i + 1)) for i in range(5)]
    jobs, store = world(*batch)

    summary = await sweep_expired_audio(jobs, store, now=NOW, batch_size=2)

    by_id = sorted(batch, key=lambda job: job.job_id)
    assert store.delete_calls == [
        [job.object_key for job in by_id[0:2]],
        [job.object_key for job in by_id[2:4]],
        [job.object_key for job in by_id[4:5]],
    ]
    assert summary.scanned == summary.deleted == 5
    assert summary.bytes_freed == 100 + 200 + 300 + 400 + 500
    assert store.objects == {}


async def test_nothing_expired_means_no_store_calls() -> None:
    jobs, store = world(ended(expire=NOW + timedelta(hours=1)))

    summary = await sweep_expired_audio(jobs, store, now=NOW, batch_size=10)

    assert summary.as_dict() == {
        "scanned": 0,
        "deleted": 0,
        "failed": 0,
        "bytes_freed": 0,
        "aborted_uploads": 0,
        "errors": [],
    }
    assert store.delete_calls == []


async def test_object_already_gone_counts_as_deleted() -> None:
    job = ended(size_bytes=700)
    jobs, store = world(job)
    store.objects.clear()

    summary = await sweep_expired_audio(jobs, store, now=NOW, batch_size=10)

    assert (summary.deleted, summary.failed, summary.bytes_freed) == (1, 0, 700)
    assert jobs.stored(job.job_id).audio_delete_time == NOW


async def test_a_delete_failure_is_reported_and_the_job_kept_for_later() -> None:
    batch = [ended(size_bytes=10) for _ in range(5)]
    broken = batch[2]
    jobs, store = world(*batch)
    store.delete_failures[broken.object_key] = "AccessDenied: not yours"

    summary = await sweep_expired_audio(jobs, store, now=NOW, batch_size=2)

    assert (summary.scanned, summary.deleted, summary.failed) == (5, 4, 1)
    assert summary.bytes_freed == 40
    assert not summary.ok
    [error] = summary.errors
    assert str(broken.job_id) in error and "AccessDenied" in error
    assert jobs.stored(broken.job_id).audio_delete_time is None
    assert broken.object_key in store.objects
    for job in batch:
        if job is not broken:
            assert jobs.stored(job.job_id).audio_delete_time == NOW
            assert job.object_key not in store.objects


async def test_failed_delete_is_retried_by_the_next_sweep() -> None:
    job = ended()
    jobs, store = world(job, ended())
    store.delete_failures[job.object_key] = "SlowDown"
    await sweep_expired_audio(jobs, store, now=NOW, batch_size=10)
    store.delete_failures.clear()

    summary = await sweep_expired_audio(jobs, store, now=NOW, batch_size=10)

    assert (summary.scanned, summary.deleted, summary.failed) == (1, 1, 0)
    assert jobs.stored(job.job_id).audio_delete_time == NOW


async def test_second_sweep_right_after_is_a_no_op() -> None:
    jobs, store = world(*(ended() for _ in range(5)))
    await sweep_expired_audio(jobs, store, now=NOW, batch_size=2)
    calls = len(store.delete_calls)

    summary = await sweep_expired_audio(jobs, store, now=NOW + timedelta(seconds=1), batch_size=2)

    assert summary.scanned == 0 and summary.deleted == 0
    assert len(store.delete_calls) == calls


async def test_error_list_is_capped_but_the_count_is_exact() -> None:
    batch = [ended() for _ in range(MAX_REPORTED_ERRORS + 5)]
    jobs, store = world(*batch)
    store.delete_failures = {job.object_key: "InternalError" for job in batch}

    summary = await sweep_expired_audio(jobs, store, now=NOW, batch_size=7)

    assert summary.failed == len(batch)
    assert len(summary.errors) == MAX_REPORTED_ERRORS
    assert summary.deleted == 0 and summary.bytes_freed == 0


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
async def test_every_expired_job_is_swept_whatever_the_batch_size(batch_size: int) -> None:
    batch = [ended() for _ in range(7)]
    jobs, store = world(*batch)

    summary = await sweep_expired_audio(jobs, store, now=NOW, batch_size=batch_size)

    assert summary.deleted == 7
    assert store.objects == {}
    assert len(store.delete_calls) == -(-7 // batch_size)


async def test_a_store_outage_mid_sweep_keeps_the_counts_of_what_was_done() -> None:
    class OutageAfterFirstBatch(FakeObjectStore):
        async def delete_many(self, keys: Sequence[str]) -> list[DeleteFailure]:
            if self.delete_calls:
                raise StorageUnavailable("the object store is unreachable")
            return await super().delete_many(keys)

    batch = [ended(size_bytes=10) for _ in range(4)]
    jobs = FakeJobRepository(batch)
    store = OutageAfterFirstBatch({job.object_key: b"\x00" * 10 for job in batch})

    summary = await sweep_expired_audio(jobs, store, now=NOW, batch_size=2)

    assert (summary.scanned, summary.deleted, summary.bytes_freed) == (4, 2, 20)
    assert not summary.ok and summary.failed == 1
    assert summary.errors == ["sweep stopped: the object store is unreachable"]


async def test_a_dry_run_reports_the_jobs_and_bytes_and_changes_nothing() -> None:
    due = [ended(), ended(JobState.CANCELLED)]
    jobs, store = world(*due, ended(expire=NOW + timedelta(days=1)))
    objects = dict(store.objects)

    summary = await sweep_expired_audio(jobs, store, now=NOW, batch_size=1, dry_run=True)

    assert summary.job_ids == sorted(str(job.job_id) for job in due)
    assert summary.bytes_freed == sum(job.size_bytes for job in due) and summary.deleted == 2
    assert store.objects == objects
    assert all(jobs.stored(job.job_id).audio_delete_time is None for job in due)


async def test_older_than_applies_a_retention_to_existing_jobs_of_one_tenant() -> None:
    old = ended(expire=NOW + timedelta(days=30), tenant="acme", create_time=T0)
    recent = ended(expire=NOW + timedelta(days=30), tenant="acme", create_time=NOW)
    elsewhere = ended(expire=NOW + timedelta(days=30), tenant="globex", create_time=T0)
    live = make_job(state=JobState.QUEUED, tenant="acme", create_time=T0)
    jobs, store = world(old, recent, elsewhere, live)
    expiry = AudioExpiry(NOW, older_than=timedelta(days=1), tenant="acme")

    summary = await sweep_expired_audio(jobs, store, now=NOW, batch_size=10, expiry=expiry)

    assert summary.job_ids == [str(old.job_id)]
    assert set(store.objects) == {j.object_key for j in (recent, elsewhere, live)}


class RacedJobs(FakeJobRepository):
    """Another sweep stamps every job just after this one reads it."""

    async def audio_expired(self, expiry: AudioExpiry, **page: Any) -> list[Job]:
        found = await super().audio_expired(expiry, **page)
        await self.mark_audio_deleted([job.job_id for job in found], expiry.now)
        return found


async def test_a_job_another_sweep_stamped_first_is_neither_counted_nor_failed() -> None:
    job = ended()
    jobs = RacedJobs([job])
    store = FakeObjectStore({job.object_key: b"\x00"})
    summary = await sweep_expired_audio(jobs, store, now=NOW, batch_size=10)
    assert (summary.scanned, summary.deleted, summary.failed) == (1, 0, 0)
    assert summary.job_ids == [] and summary.bytes_freed == 0
