"""The janitor discards uploads nobody finished: recorded ones no stream continued for
STENO_STALE_UPLOAD_HOURS, and multipart uploads no record names started that long ago."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from steno.common.errors import DatabaseUnavailable, StorageUnavailable
from steno.common.partial_uploads import PartialUpload
from steno.common.storage import MIN_PART_BYTES
from steno.common.sweep import SweepSummary
from steno.janitor.abandoned_uploads import discard_abandoned_uploads
from tests.fakes import (
    T0,
    FakeJobRepository,
    FakeObjectStore,
    FakePartialUploadRepository,
    make_job,
    make_partial_upload,
)

NOW = T0 + timedelta(days=3)
IDLE_SINCE = NOW - timedelta(hours=24)
STALE = IDLE_SINCE - timedelta(hours=6)
FRESH = IDLE_SINCE + timedelta(hours=1)


async def recorded(
    store: FakeObjectStore,
    request_id: str,
    *,
    update_time: datetime,
    start_time: datetime | None = None,
    tenant: str = "default",
    **overrides: Any,
) -> PartialUpload:
    """A resumable upload with one stored part: its multipart upload in ``store``, started at
    ``start_time`` (its ``create_time``, the update time unless given), and its record."""
    job_id = overrides.pop("job_id", None) or uuid.uuid4()
    key = f"audio/{job_id}"
    started = start_time or update_time
    upload_id = await store.start_upload(key, "audio/wav")
    store.uploads[upload_id].start_time = started
    part = await store.put_part(key, upload_id, 1, b"\x01" * MIN_PART_BYTES)
    fields: dict[str, Any] = {
        "tenant": tenant,
        "job_id": job_id,
        "object_key": key,
        "store_upload_id": upload_id,
        "stream": f"stream-{request_id}",
        "create_time": started,
        "update_time": update_time,
        "parts": [part],
    }
    fields.update(overrides)
    return make_partial_upload(request_id, **fields)


async def unrecorded(store: FakeObjectStore, *, start_time: datetime) -> str:
    """A multipart upload no record names (its gateway died before recording it)."""
    key = f"audio/{uuid.uuid4()}"
    upload_id = await store.start_upload(key, "audio/wav")
    store.uploads[upload_id].start_time = start_time
    await store.put_part(key, upload_id, 1, b"\x02" * 1000)
    return upload_id


async def discard(
    partials: FakePartialUploadRepository,
    store: FakeObjectStore,
    jobs: FakeJobRepository | None = None,
    *,
    batch_size: int = 100,
) -> SweepSummary:
    summary = SweepSummary()
    await discard_abandoned_uploads(
        partials,
        jobs if jobs is not None else FakeJobRepository(),
        store,
        idle_since=IDLE_SINCE,
        batch_size=batch_size,
        summary=summary,
    )
    return summary


async def test_an_idle_upload_is_forgotten_and_aborted_a_recent_one_kept() -> None:
    store = FakeObjectStore()
    idle = await recorded(store, "idle", update_time=STALE)
    recent = await recorded(store, "recent", update_time=FRESH)
    # Just before the cut-off is idle; exactly at it is not (idle *since before* it).
    edge_idle = await recorded(store, "edge-idle", update_time=IDLE_SINCE - timedelta(seconds=1))
    at_cutoff = await recorded(store, "at-cutoff", update_time=IDLE_SINCE)
    partials = FakePartialUploadRepository([idle, recent, edge_idle, at_cutoff])

    summary = await discard(partials, store)

    assert summary.aborted_uploads == 2
    assert summary.ok and summary.failed == 0 and summary.errors == []
    assert await partials.get("default", "idle") is None
    assert await partials.get("default", "edge-idle") is None
    assert sorted(store.aborted_uploads) == sorted(
        [idle.store_upload_id, edge_idle.store_upload_id]
    )
    assert store.uploads[idle.store_upload_id].aborted
    assert store.uploads[idle.store_upload_id].parts == {}
    # The recent ones keep their record and their stored part, untouched.
    for kept in (recent, at_cutoff):
        assert partials.stored("default", kept.request_id) == kept
        assert store.uploads[kept.store_upload_id].is_open
        assert set(store.uploads[kept.store_upload_id].parts) == {1}
    assert sorted(store.open_uploads()) == sorted(
        [recent.store_upload_id, at_cutoff.store_upload_id]
    )


class TakenOverWhileListed(FakePartialUploadRepository):
    """Another stream continues the listed uploads between list_stale and delete: the
    janitor holds copies that name the stream it replaced, and the old update time."""

    def __init__(self, uploads: list[PartialUpload], *, taken: set[str]) -> None:
        super().__init__(uploads)
        self.taken = taken
        self.calls = 0

    async def list_stale(self, updated_before: datetime, *, limit: int) -> list[PartialUpload]:
        self.calls += 1
        # A janitor that keeps listing what it cannot discard would never end.
        assert self.calls <= 10, "list_stale called again and again"
        stale = await super().list_stale(updated_before, limit=limit)
        for upload in stale:
            if upload.request_id in self.taken:
                self.taken.discard(upload.request_id)
                assert await self.take_over(upload, stream="continuing-stream", now=NOW)
        return stale


async def test_an_upload_continued_meanwhile_is_kept_and_not_aborted() -> None:
    store = FakeObjectStore()
    continued = await recorded(store, "continued", update_time=STALE)
    idle = await recorded(store, "idle", update_time=STALE + timedelta(minutes=1))
    partials = TakenOverWhileListed([continued, idle], taken={"continued"})

    summary = await discard(partials, store)

    kept = partials.stored("default", "continued")
    assert kept.stream == "continuing-stream"
    assert kept.update_time == NOW
    assert store.uploads[continued.store_upload_id].is_open
    assert set(store.uploads[continued.store_upload_id].parts) == {1}
    assert continued.store_upload_id not in store.aborted_uploads
    assert continued.object_key not in [key for call in store.delete_calls for key in call]
    # The other one, listed with it, is discarded as usual; only it is counted.
    assert await partials.get("default", "idle") is None
    assert store.aborted_uploads == [idle.store_upload_id]
    assert summary.aborted_uploads == 1
    assert summary.ok


async def test_a_completed_upload_that_never_became_a_job_loses_its_object() -> None:
    store = FakeObjectStore()
    orphan = await recorded(store, "orphan", update_time=STALE)
    await store.complete_upload(orphan.object_key, orphan.store_upload_id, orphan.parts)
    assert orphan.object_key in store.objects
    partials = FakePartialUploadRepository([orphan])

    summary = await discard(partials, store, FakeJobRepository())

    assert orphan.object_key not in store.objects
    assert await partials.get("default", "orphan") is None
    assert summary.ok and summary.errors == []


async def test_a_record_left_behind_by_a_recorded_job_keeps_the_jobs_object() -> None:
    store = FakeObjectStore()
    left = await recorded(store, "left-behind", update_time=STALE)
    await store.complete_upload(left.object_key, left.store_upload_id, left.parts)
    audio = store.objects[left.object_key]
    job = make_job(job_id=left.job_id, object_key=left.object_key, request_id="left-behind")
    jobs = FakeJobRepository([job])
    partials = FakePartialUploadRepository([left])

    summary = await discard(partials, store, jobs)

    assert store.objects[left.object_key] == audio
    assert all(left.object_key not in call for call in store.delete_calls)
    assert await partials.get("default", "left-behind") is None
    assert jobs.stored(job.job_id).object_key == left.object_key
    assert summary.ok and summary.errors == []


async def test_an_objects_deletion_that_fails_is_recorded() -> None:
    store = FakeObjectStore()
    orphan = await recorded(store, "orphan", update_time=STALE)
    await store.complete_upload(orphan.object_key, orphan.store_upload_id, orphan.parts)
    store.delete_failures[orphan.object_key] = "AccessDenied"
    partials = FakePartialUploadRepository([orphan])

    summary = await discard(partials, store)

    assert not summary.ok
    assert summary.failed == 1
    assert len(summary.errors) == 1
    assert "orphan" in summary.errors[0] and "AccessDenied" in summary.errors[0]


async def test_unrecorded_uploads_started_before_the_cutoff_are_aborted_recorded_ones_kept() -> (
    None
):
    store = FakeObjectStore()
    old_orphan = await unrecorded(store, start_time=STALE)
    young_orphan = await unrecorded(store, start_time=FRESH)
    # Started long ago but continued recently: its record keeps its multipart upload.
    old_but_active = await recorded(store, "long-upload", update_time=FRESH, start_time=STALE)
    partials = FakePartialUploadRepository([old_but_active])

    summary = await discard(partials, store)

    assert store.aborted_uploads == [old_orphan]
    assert summary.aborted_uploads == 1
    assert summary.ok
    assert sorted(store.open_uploads()) == sorted([young_orphan, old_but_active.store_upload_id])
    assert partials.stored("default", "long-upload") == old_but_active


async def test_an_idle_record_and_unrecorded_uploads_are_both_counted() -> None:
    store = FakeObjectStore()
    idle = await recorded(store, "idle", update_time=STALE)
    orphans = [await unrecorded(store, start_time=STALE) for _ in range(2)]
    partials = FakePartialUploadRepository([idle])

    summary = await discard(partials, store)

    # Each multipart upload is aborted once, and counted once.
    assert sorted(store.aborted_uploads) == sorted([idle.store_upload_id, *orphans])
    assert summary.aborted_uploads == 3
    assert store.open_uploads() == []


class RecordingLimits(FakePartialUploadRepository):
    def __init__(self, uploads: list[PartialUpload]) -> None:
        super().__init__(uploads)
        self.limits: list[int] = []

    async def list_stale(self, updated_before: datetime, *, limit: int) -> list[PartialUpload]:
        self.limits.append(limit)
        assert len(self.limits) <= 20, "list_stale called again and again"
        return await super().list_stale(updated_before, limit=limit)


async def test_more_stale_records_than_a_batch_are_all_discarded() -> None:
    store = FakeObjectStore()
    stale = [
        await recorded(store, f"req-{i}", update_time=STALE + timedelta(minutes=i))
        for i in range(7)
    ]
    recent = await recorded(store, "recent", update_time=FRESH)
    partials = RecordingLimits([*stale, recent])

    summary = await discard(partials, store, batch_size=3)

    assert summary.aborted_uploads == 7
    assert sorted(store.aborted_uploads) == sorted(upload.store_upload_id for upload in stale)
    for upload in stale:
        assert await partials.get("default", upload.request_id) is None
    assert partials.stored("default", "recent") == recent
    assert store.open_uploads() == [recent.store_upload_id]
    assert partials.limits and set(partials.limits) == {3}
    assert summary.ok


async def test_a_database_outage_is_recorded_not_raised() -> None:
    store = FakeObjectStore()
    idle = await recorded(store, "idle", update_time=STALE)
    orphan = await unrecorded(store, start_time=STALE)
    partials = FakePartialUploadRepository([idle])
    partials.error = DatabaseUnavailable("postgres went away")

    summary = await discard(partials, store)

    assert not summary.ok
    assert summary.failed == 1
    assert len(summary.errors) == 1 and "postgres went away" in summary.errors[0]
    assert summary.aborted_uploads == 0
    # Without the records, nothing may be aborted: an unrecorded-looking upload could be one.
    assert store.aborted_uploads == []
    assert sorted(store.open_uploads()) == sorted([idle.store_upload_id, orphan])


class StoreDown(FakeObjectStore):
    """Refuses to abort anything."""

    async def abort_upload(self, key: str, upload_id: str) -> None:
        raise StorageUnavailable("s3 is unreachable")


async def test_a_store_outage_is_recorded_not_raised() -> None:
    store = StoreDown()
    idle = await recorded(store, "idle", update_time=STALE)
    partials = FakePartialUploadRepository([idle])

    summary = await discard(partials, store)

    assert not summary.ok
    assert summary.failed == 1
    assert len(summary.errors) == 1 and "s3 is unreachable" in summary.errors[0]
    assert summary.aborted_uploads == 0
    assert store.uploads[idle.store_upload_id].is_open


class DatabaseGoesDownAfterOneDelete(FakePartialUploadRepository):
    async def delete(self, tenant: str, request_id: str, *, stream: str | None = None) -> bool:
        deleted = await super().delete(tenant, request_id, stream=stream)
        self.error = DatabaseUnavailable("connection reset")
        return deleted


async def test_an_outage_part_way_keeps_the_count_of_what_was_done() -> None:
    store = FakeObjectStore()
    first = await recorded(store, "first", update_time=STALE)
    second = await recorded(store, "second", update_time=STALE + timedelta(minutes=1))
    partials = DatabaseGoesDownAfterOneDelete([first, second])

    summary = await discard(partials, store)

    assert summary.aborted_uploads == 1
    assert store.aborted_uploads == [first.store_upload_id]
    assert not summary.ok
    assert summary.errors and "connection reset" in summary.errors[0]
    partials.error = None
    assert partials.stored("default", "second") == second
    assert store.uploads[second.store_upload_id].is_open


async def test_the_summarys_earlier_counts_are_added_to() -> None:
    store = FakeObjectStore()
    idle = await recorded(store, "idle", update_time=STALE)
    partials = FakePartialUploadRepository([idle])
    summary = SweepSummary(scanned=4, deleted=4, aborted_uploads=2)

    await discard_abandoned_uploads(
        partials,
        FakeJobRepository(),
        store,
        idle_since=IDLE_SINCE,
        batch_size=10,
        summary=summary,
    )

    assert (summary.scanned, summary.deleted, summary.aborted_uploads) == (4, 4, 3)
