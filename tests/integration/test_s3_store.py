"""The S3 adapter against a real S3 server: streaming writes, aborts, failures."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from steno.common.errors import StorageUnavailable
from steno.common.storage.s3 import S3Store
from tests.conftest import S3Server
from tests.support import free_port

MB = 1024 * 1024


def make_store(s3: S3Server, bucket: str, endpoint: str | None = None) -> S3Store:
    return S3Store(
        endpoint or s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        bucket=bucket,
        region="us-east-1",
        part_size=5 * MB,
    )


@pytest.fixture
async def store(s3_server: S3Server, bucket: str) -> S3Store:
    store = make_store(s3_server, bucket)
    await store.ensure_ready()
    await store.ensure_ready()  # idempotent
    return store


async def test_a_streamed_object_spanning_parts_round_trips(store: S3Store, tmp_path: Path) -> None:
    """12 MiB in 3 MiB chunks: more than one part, and chunks larger than the queue slices."""
    data = bytes(range(256)) * (12 * MB // 256)
    writer = store.writer("audio/a", "audio/wav")
    for start in range(0, len(data), 3 * MB):
        await writer.write(data[start : start + 3 * MB])
    await writer.commit()

    await store.download("audio/a", tmp_path / "copy")
    assert (
        hashlib.sha256((tmp_path / "copy").read_bytes()).digest() == hashlib.sha256(data).digest()
    )


async def test_abort_mid_multipart_leaves_no_object_and_no_upload(
    store: S3Store, s3_server: S3Server, bucket: str
) -> None:
    writer = store.writer("audio/b", "audio/wav")
    for _ in range(7):  # past the 5 MiB part: a multipart upload is open
        await writer.write(bytes(MB))
    await writer.abort()

    client = s3_server.client()
    assert client.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


async def test_download_of_a_missing_object_is_file_not_found(
    store: S3Store, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError, match="audio/none"):
        await store.download("audio/none", tmp_path / "copy")


async def test_deleting_missing_objects_is_not_a_failure(store: S3Store) -> None:
    writer = store.writer("audio/c", "audio/wav")
    await writer.write(b"RIFF")
    await writer.commit()
    assert await store.delete_many(["audio/c", "audio/never-was"]) == []
    assert await store.delete_many(["audio/c"]) == []


async def test_a_store_failure_mid_stream_fails_the_write_instead_of_hanging(
    s3_server: S3Server,
) -> None:
    """The bucket does not exist: the upload thread dies on the first part, and the next
    write raises rather than waiting forever for a reader that is gone."""
    writer = make_store(s3_server, "steno-no-such-bucket").writer("audio/d", "audio/wav")
    with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
        for _ in range(64):
            await writer.write(bytes(MB))
        await writer.commit()
    await writer.abort()  # harmless afterwards


async def test_an_unreachable_store_is_unavailable(s3_server: S3Server) -> None:
    store = make_store(s3_server, "steno-x", endpoint=f"127.0.0.1:{free_port()}")
    with pytest.raises(StorageUnavailable, match="unreachable"):
        await store.ensure_ready()


async def test_abandoned_multipart_uploads_are_aborted_once_stale(
    store: S3Store, s3_server: S3Server, bucket: str
) -> None:
    """What a gateway that died mid-upload leaves: a multipart upload nobody finishes. (moto
    dates every upload 2010-11-10, so the age cut-off itself is checked on the directory
    store.)"""
    client = s3_server.client()
    client.create_multipart_upload(Bucket=bucket, Key="audio/orphan")
    now = datetime.now(UTC)

    assert await store.abort_stale_uploads(datetime(2010, 1, 1, tzinfo=UTC)) == 0
    assert await store.abort_stale_uploads(now + timedelta(minutes=1)) == 1
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert await store.abort_stale_uploads(now + timedelta(minutes=1)) == 0
