"""The S3 adapter against a real S3 server, beyond the port's contract (which
test_object_store_contract checks): what S3 records, how its failures surface, and the
answers moto cannot give."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from minio.error import S3Error

from steno.common.errors import StorageUnavailable
from steno.common.storage import MIN_PART_BYTES, StoredPart
from steno.common.storage.s3 import S3Store
from tests.conftest import S3Server
from tests.support import free_port


def make_store(s3: S3Server, bucket: str, endpoint: str | None = None) -> S3Store:
    return S3Store(
        endpoint or s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        bucket=bucket,
        region="us-east-1",
        max_uploads=4,
    )


@pytest.fixture
async def store(s3_server: S3Server, bucket: str) -> S3Store:
    store = make_store(s3_server, bucket)
    await store.ensure_ready()
    await store.ensure_ready()  # idempotent
    return store


def s3_error(code: str) -> S3Error:
    return S3Error(None, code, f"{code} (stubbed)", None, None, None)  # type: ignore[arg-type]


async def test_the_object_keeps_the_upload_content_type(
    store: S3Store, s3_server: S3Server, bucket: str
) -> None:
    upload_id = await store.start_upload("audio/a", "audio/ogg")
    part = await store.put_part("audio/a", upload_id, 1, b"OggS")
    await store.complete_upload("audio/a", upload_id, [part])

    head = s3_server.client().head_object(Bucket=bucket, Key="audio/a")
    assert head["ContentType"] == "audio/ogg"
    assert head["ContentLength"] == 4


async def test_parts_are_in_s3_for_another_process_to_complete(
    store: S3Store, s3_server: S3Server, bucket: str
) -> None:
    """A broken upload continues in another gateway: its parts are S3's, not the store's."""
    upload_id = await store.start_upload("audio/b", "audio/wav")
    first = await store.put_part("audio/b", upload_id, 1, bytes(MIN_PART_BYTES))

    listed = s3_server.client().list_parts(Bucket=bucket, Key="audio/b", UploadId=upload_id)
    assert [(p["PartNumber"], p["Size"], p["ETag"].strip('"')) for p in listed["Parts"]] == [
        (1, MIN_PART_BYTES, first.etag)
    ]

    other = make_store(s3_server, bucket)
    last = await other.put_part("audio/b", upload_id, 2, b"end")
    await other.complete_upload("audio/b", upload_id, [first, last])
    head = s3_server.client().head_object(Bucket=bucket, Key="audio/b")
    assert head["ContentLength"] == MIN_PART_BYTES + 3


async def test_parts_are_sent_from_the_uploads_own_threads(
    store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    upload_part = store._client._upload_part

    def recording(*args: Any) -> str:
        threads.append(threading.current_thread().name)
        return upload_part(*args)

    monkeypatch.setattr(store._client, "_upload_part", recording)
    upload_id = await store.start_upload("audio/c", "audio/wav")
    await store.put_part("audio/c", upload_id, 1, b"x")

    assert len(threads) == 1
    assert threads[0].startswith("s3-upload")


async def test_a_part_for_an_upload_s3_no_longer_has_names_the_upload(
    store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 and MinIO answer NoSuchUpload (moto, a 500; see the contract test)."""

    def no_such_upload(*args: Any) -> str:
        raise s3_error("NoSuchUpload")

    monkeypatch.setattr(store._client, "_upload_part", no_such_upload)
    upload_id = await store.start_upload("audio/d", "audio/wav")

    with pytest.raises(StorageUnavailable, match=f"upload {upload_id} of 'audio/d' no longer"):
        await store.put_part("audio/d", upload_id, 1, b"x")


async def test_completing_an_upload_another_stream_completed_is_success(
    store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 forgets a completed upload: NoSuchUpload, with the object there at the parts'
    size, is this very upload completed already."""
    upload_id = await store.start_upload("audio/e", "audio/wav")
    parts = [
        await store.put_part("audio/e", upload_id, 1, bytes(MIN_PART_BYTES)),
        await store.put_part("audio/e", upload_id, 2, b"end"),
    ]
    await store.complete_upload("audio/e", upload_id, parts)

    def no_such_upload(*args: Any) -> None:
        raise s3_error("NoSuchUpload")

    monkeypatch.setattr(store._client, "_complete_multipart_upload", no_such_upload)
    await store.complete_upload("audio/e", upload_id, parts)

    other_size = [*parts, StoredPart(3, 1, "0" * 32)]
    with pytest.raises(StorageUnavailable, match="no longer exists"):
        await store.complete_upload("audio/e", upload_id, other_size)
    with pytest.raises(StorageUnavailable, match="no longer exists"):
        await store.complete_upload("audio/never", upload_id, parts)


async def test_a_missing_bucket_is_unavailable_and_says_so(s3_server: S3Server) -> None:
    store = make_store(s3_server, "steno-no-such-bucket")
    with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
        await store.start_upload("audio/f", "audio/wav")


async def test_an_unreachable_store_is_unavailable(s3_server: S3Server) -> None:
    store = make_store(s3_server, "steno-x", endpoint=f"127.0.0.1:{free_port()}")
    with pytest.raises(StorageUnavailable, match="the object store is unreachable"):
        await store.ensure_ready()


async def test_abandoned_multipart_uploads_are_aborted_once_stale(
    store: S3Store, s3_server: S3Server, bucket: str
) -> None:
    """What a gateway that died mid-upload leaves: a multipart upload nobody finishes. (moto
    dates every upload 2010-11-10, so the age cut-off itself is checked on the directory
    store and the fake.)"""
    client = s3_server.client()
    orphan = client.create_multipart_upload(Bucket=bucket, Key="audio/orphan")["UploadId"]
    resumable = await store.start_upload("audio/resumable", "audio/wav")
    now = datetime.now(UTC)

    assert await store.abort_stale_uploads(datetime(2010, 1, 1, tzinfo=UTC)) == 0
    assert await store.abort_stale_uploads(now + timedelta(minutes=1), keep={resumable}) == 1
    remaining = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["UploadId"] for u in remaining] == [resumable]
    assert orphan != resumable
    assert await store.abort_stale_uploads(now + timedelta(minutes=1), keep={resumable}) == 0


async def test_an_upload_started_for_a_caller_gone_meanwhile_is_aborted(
    store: S3Store, s3_server: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while S3 starts the upload, the caller never gets its id: the store
    aborts it rather than leave it in the bucket."""
    created, release = threading.Event(), threading.Event()
    create = store._client._create_multipart_upload

    def slow_create(*args: Any) -> str:
        upload_id = create(*args)
        created.set()
        release.wait(timeout=10)
        return upload_id

    monkeypatch.setattr(store._client, "_create_multipart_upload", slow_create)
    starting = asyncio.create_task(store.start_upload("audio/gone", "audio/ogg"))
    await asyncio.to_thread(created.wait, 10)
    client = s3_server.client()
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) != []
    starting.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
