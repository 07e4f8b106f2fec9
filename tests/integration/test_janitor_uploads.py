"""The janitor's run discards abandoned uploads on the real parts: Postgres and S3."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from steno.cli.dev import DevSettings
from steno.common.adapters import open_database, open_object_store
from steno.common.db import SqlJobRepository, SqlPartialUploadRepository
from steno.common.partial_uploads import PartialUpload
from steno.common.storage import MIN_PART_BYTES, ObjectStore
from steno.janitor.service import run_once
from tests.conftest import S3Server
from tests.fakes import make_job, make_partial_upload


@dataclass
class Parts:
    partials: SqlPartialUploadRepository
    jobs: SqlJobRepository
    store: ObjectStore


@pytest.fixture
async def parts(settings: DevSettings) -> AsyncIterator[Parts]:
    database = open_database(settings)
    store = open_object_store(settings)
    await store.ensure_ready()
    try:
        yield Parts(SqlPartialUploadRepository(database), SqlJobRepository(database), store)
    finally:
        await database.dispose()


async def started(
    parts: Parts, request_id: str, *, update_time: datetime, complete: bool = False
) -> PartialUpload:
    """A resumable upload with one 5 MiB part stored in S3, recorded as last written at
    ``update_time``; with ``complete``, its upload was completed into the object."""
    job_id = uuid.uuid4()
    key = f"audio/{job_id}"
    upload_id = await parts.store.start_upload(key, "audio/wav")
    part = await parts.store.put_part(key, upload_id, 1, b"\x07" * MIN_PART_BYTES)
    if complete:
        await parts.store.complete_upload(key, upload_id, [part])
    upload = make_partial_upload(
        request_id,
        job_id=job_id,
        object_key=key,
        store_upload_id=upload_id,
        stream=f"stream-{request_id}",
        create_time=update_time,
        update_time=update_time,
        parts=[part],
    )
    await parts.partials.save(upload)
    return upload


async def test_run_once_discards_the_stale_upload_and_keeps_the_fresh_one(
    settings: DevSettings, parts: Parts, s3_server: S3Server, bucket: str
) -> None:
    assert settings.retention.stale_upload_hours == 24
    now = datetime.now(UTC)
    stale = await started(parts, "stale", update_time=now - timedelta(hours=30))
    fresh = await started(parts, "fresh", update_time=now)
    client = s3_server.client()  # type: ignore[no-untyped-call]
    before = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert {u["UploadId"] for u in before} == {stale.store_upload_id, fresh.store_upload_id}

    swept, _ = await run_once(settings)

    assert swept.aborted_uploads == 1
    assert swept.ok, swept.errors
    assert await parts.partials.get("default", "stale") is None
    kept = await parts.partials.get("default", "fresh")
    assert kept is not None and kept.store_upload_id == fresh.store_upload_id
    assert kept.committed_bytes == MIN_PART_BYTES
    after = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [(u["Key"], u["UploadId"]) for u in after] == [(fresh.object_key, fresh.store_upload_id)]
    # The fresh upload's part is still there to be continued from.
    listed = client.list_parts(
        Bucket=bucket, Key=fresh.object_key, UploadId=fresh.store_upload_id
    ).get("Parts", [])
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, MIN_PART_BYTES)]
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


async def test_run_once_deletes_a_jobless_object_and_keeps_a_jobs(
    settings: DevSettings, parts: Parts, s3_server: S3Server, bucket: str
) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=30)
    orphan = await started(parts, "orphan", update_time=long_ago, complete=True)
    left = await started(parts, "left-behind", update_time=long_ago, complete=True)
    await parts.jobs.add(
        make_job(
            job_id=left.job_id,
            object_key=left.object_key,
            size_bytes=MIN_PART_BYTES,
            request_id="left-behind",
            create_time=long_ago,
        )
    )
    client = s3_server.client()  # type: ignore[no-untyped-call]
    objects = {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert objects == {orphan.object_key, left.object_key}

    swept, _ = await run_once(settings)

    assert swept.ok, swept.errors
    assert await parts.partials.get("default", "orphan") is None
    assert await parts.partials.get("default", "left-behind") is None
    objects = {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert objects == {left.object_key}
    assert await parts.jobs.get(left.job_id) is not None
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
