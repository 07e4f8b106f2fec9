"""The ObjectStore port's contract, held by every store: S3 (a moto server), the directory
store, and the in-memory fake the unit tests use."""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from steno.common.errors import StorageUnavailable
from steno.common.storage import MAX_PARTS, MIN_PART_BYTES, ObjectStore, StoredPart
from steno.common.storage.filesystem import FilesystemStore
from steno.common.storage.s3 import S3Store
from tests.conftest import S3Server
from tests.fakes import FakeObjectStore

KEY = "audio/contract"
PART = MIN_PART_BYTES


def data_of(size: int, seed: int = 0) -> bytes:
    """Bytes that differ everywhere, so that parts joined out of order would show."""
    return random.Random(seed).randbytes(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Subject:
    """A store, and what the contract needs to see inside it."""

    store: ObjectStore
    # The ids of the uploads neither completed nor aborted.
    open_uploads: Callable[[], set[str]]
    # Makes the upload look started at ``when`` if the store allows; returns the start time
    # the store itself reports for it.
    backdate: Callable[[str, str, datetime], datetime]


def s3_subject(s3: S3Server, bucket: str) -> Subject:
    client = s3.client()

    def uploads() -> dict[str, datetime]:
        listing = client.list_multipart_uploads(Bucket=bucket)
        return {upload["UploadId"]: upload["Initiated"] for upload in listing.get("Uploads", [])}

    def backdate(key: str, upload_id: str, when: datetime) -> datetime:
        # An upload's start cannot be set; moto dates every upload 2010-11-10 anyway.
        return uploads()[upload_id]

    store = S3Store(
        s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        bucket=bucket,
        region="us-east-1",
    )
    return Subject(store, lambda: set(uploads()), backdate)


def filesystem_subject(root: Path) -> Subject:
    def upload_dir(key: str, upload_id: str) -> Path:
        path = root / key
        return path.with_name(f".{path.name}.{upload_id}.upload")

    def open_uploads() -> set[str]:
        return {p.name.split(".")[-2] for p in root.rglob(".*.upload") if p.is_dir()}

    def backdate(key: str, upload_id: str, when: datetime) -> datetime:
        os.utime(upload_dir(key, upload_id), (when.timestamp(), when.timestamp()))
        return when

    return Subject(FilesystemStore(root), open_uploads, backdate)


def fake_subject() -> Subject:
    store = FakeObjectStore()

    def backdate(key: str, upload_id: str, when: datetime) -> datetime:
        store.uploads[upload_id].start_time = when
        return when

    return Subject(store, lambda: set(store.open_uploads()), backdate)


@pytest.fixture(params=["s3", "filesystem", "fake"])
async def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Subject:
    if request.param == "s3":
        made = s3_subject(request.getfixturevalue("s3_server"), request.getfixturevalue("bucket"))
    elif request.param == "filesystem":
        made = filesystem_subject(tmp_path / "objects")
    else:
        made = fake_subject()
    await made.store.ensure_ready()
    return made


async def put_all(
    store: ObjectStore, key: str, upload_id: str, parts: dict[int, bytes]
) -> dict[int, StoredPart]:
    return {
        number: await store.put_part(key, upload_id, number, data) for number, data in parts.items()
    }


async def assert_absent(store: ObjectStore, key: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await store.sha256(key)
    with pytest.raises(FileNotFoundError):
        await store.download(key, tmp_path / "absent")


async def test_parts_become_one_object_in_their_order(subject: Subject, tmp_path: Path) -> None:
    """Stored out of order, joined in order, across part boundaries and a short last part."""
    store = subject.store
    data = data_of(2 * PART + 12345)
    pieces = {1: data[:PART], 2: data[PART : 2 * PART], 3: data[2 * PART :]}
    upload_id = await store.start_upload(KEY, "audio/wav")

    stored = {n: await store.put_part(KEY, upload_id, n, pieces[n]) for n in (3, 1, 2)}
    assert {n: (part.number, part.size) for n, part in stored.items()} == {
        1: (1, PART),
        2: (2, PART),
        3: (3, 12345),
    }
    assert len({part.etag for part in stored.values()}) == 3
    await store.complete_upload(KEY, upload_id, [stored[1], stored[2], stored[3]])

    assert await store.sha256(KEY) == sha256(data)
    await store.download(KEY, tmp_path / "copy")
    assert sha256((tmp_path / "copy").read_bytes()) == sha256(data)
    assert upload_id not in subject.open_uploads()


async def test_one_empty_part_makes_an_empty_object(subject: Subject) -> None:
    store = subject.store
    upload_id = await store.start_upload(KEY, "audio/wav")
    part = await store.put_part(KEY, upload_id, 1, b"")
    await store.complete_upload(KEY, upload_id, [part])

    assert part.size == 0
    assert await store.sha256(KEY) == sha256(b"")


async def test_nothing_is_visible_before_complete(subject: Subject, tmp_path: Path) -> None:
    store = subject.store
    upload_id = await store.start_upload(KEY, "audio/wav")
    await assert_absent(store, KEY, tmp_path)
    part = await store.put_part(KEY, upload_id, 1, b"RIFF....WAVE")

    await assert_absent(store, KEY, tmp_path)
    assert upload_id in subject.open_uploads()

    await store.complete_upload(KEY, upload_id, [part])
    assert await store.sha256(KEY) == sha256(b"RIFF....WAVE")


async def test_storing_a_part_number_again_replaces_the_part(subject: Subject) -> None:
    store = subject.store
    first, second, last = data_of(PART, seed=1), data_of(PART, seed=2), b"the end"
    upload_id = await store.start_upload(KEY, "audio/wav")
    replaced = await store.put_part(KEY, upload_id, 1, first)
    stored = await put_all(store, KEY, upload_id, {1: second, 2: last})

    assert stored[1].etag != replaced.etag
    with pytest.raises(ValueError):  # the part listed is no longer the one stored
        await store.complete_upload(KEY, upload_id, [replaced, stored[2]])
    await store.complete_upload(KEY, upload_id, [stored[1], stored[2]])

    assert await store.sha256(KEY) == sha256(second + last)


async def test_parts_stored_but_not_listed_are_dropped(subject: Subject) -> None:
    store = subject.store
    pieces = {1: data_of(PART, seed=1), 2: data_of(PART, seed=2), 3: b"tail"}
    upload_id = await store.start_upload(KEY, "audio/wav")
    stored = await put_all(store, KEY, upload_id, pieces)

    await store.complete_upload(KEY, upload_id, [stored[1], stored[3]])

    assert await store.sha256(KEY) == sha256(pieces[1] + pieces[3])
    assert subject.open_uploads() == set()


async def test_completing_twice_is_not_an_error(subject: Subject) -> None:
    store = subject.store
    upload_id = await store.start_upload(KEY, "audio/wav")
    stored = await put_all(store, KEY, upload_id, {1: data_of(PART), 2: b"end"})
    parts = [stored[1], stored[2]]

    await store.complete_upload(KEY, upload_id, parts)
    await store.complete_upload(KEY, upload_id, parts)  # a retry, or another stream

    assert await store.sha256(KEY) == sha256(data_of(PART) + b"end")
    assert subject.open_uploads() == set()


async def test_a_part_below_the_minimum_is_refused_unless_last(subject: Subject) -> None:
    store = subject.store
    upload_id = await store.start_upload(KEY, "audio/wav")
    stored = await put_all(store, KEY, upload_id, {1: data_of(PART - 1), 2: b"end"})

    with pytest.raises(ValueError):
        await store.complete_upload(KEY, upload_id, [stored[1], stored[2]])
    assert upload_id in subject.open_uploads(), "a refused completion keeps the upload"

    await store.complete_upload(KEY, upload_id, [stored[1]])  # as the last part, it may
    assert await store.sha256(KEY) == sha256(data_of(PART - 1))


async def test_completing_with_no_parts_is_refused(subject: Subject, tmp_path: Path) -> None:
    upload_id = await subject.store.start_upload(KEY, "audio/wav")
    with pytest.raises(ValueError):
        await subject.store.complete_upload(KEY, upload_id, [])
    await assert_absent(subject.store, KEY, tmp_path)


@pytest.mark.parametrize("number", [0, MAX_PARTS + 1])
async def test_a_part_number_out_of_range_is_refused(subject: Subject, number: int) -> None:
    upload_id = await subject.store.start_upload(KEY, "audio/wav")
    with pytest.raises(ValueError, match="part number"):
        await subject.store.put_part(KEY, upload_id, number, b"x")


async def test_abort_leaves_no_object_and_no_upload(subject: Subject, tmp_path: Path) -> None:
    store = subject.store
    upload_id = await store.start_upload(KEY, "audio/wav")
    await put_all(store, KEY, upload_id, {1: data_of(PART), 2: b"end"})

    await store.abort_upload(KEY, upload_id)

    await assert_absent(store, KEY, tmp_path)
    assert subject.open_uploads() == set()
    await store.abort_upload(KEY, upload_id)  # again: already gone


async def test_aborting_an_unknown_upload_is_not_an_error(subject: Subject) -> None:
    await subject.store.abort_upload(KEY, uuid.uuid4().hex)
    await subject.store.abort_upload(KEY, "no-such-upload")
    assert subject.open_uploads() == set()


async def test_aborting_a_completed_upload_keeps_the_object(subject: Subject) -> None:
    store = subject.store
    upload_id = await store.start_upload(KEY, "audio/wav")
    part = await store.put_part(KEY, upload_id, 1, b"kept")
    await store.complete_upload(KEY, upload_id, [part])

    await store.abort_upload(KEY, upload_id)

    assert await store.sha256(KEY) == sha256(b"kept")


async def test_an_aborted_upload_takes_no_more_parts_and_cannot_complete(
    subject: Subject, tmp_path: Path
) -> None:
    store = subject.store
    upload_id = await store.start_upload(KEY, "audio/wav")
    part = await store.put_part(KEY, upload_id, 1, b"first")
    await store.abort_upload(KEY, upload_id)

    # (moto answers an unknown upload id with a 500, which minio-py retries for a few
    # seconds; MinIO and S3 answer NoSuchUpload, which names the upload in the message.)
    with pytest.raises(StorageUnavailable):
        await store.put_part(KEY, upload_id, 2, b"second")
    with pytest.raises(StorageUnavailable):
        await store.complete_upload(KEY, upload_id, [part])
    await assert_absent(store, KEY, tmp_path)


async def test_two_uploads_of_one_key_are_independent(subject: Subject) -> None:
    store = subject.store
    first = await store.start_upload(KEY, "audio/wav")
    second = await store.start_upload(KEY, "audio/wav")
    assert first != second
    kept = await store.put_part(KEY, second, 1, b"second")
    await store.put_part(KEY, first, 1, b"first")

    await store.abort_upload(KEY, first)
    assert subject.open_uploads() == {second}
    await store.complete_upload(KEY, second, [kept])

    assert await store.sha256(KEY) == sha256(b"second")


async def test_a_missing_object_is_file_not_found(subject: Subject, tmp_path: Path) -> None:
    await assert_absent(subject.store, "audio/never-was", tmp_path)
    assert not (tmp_path / "absent").exists()


async def test_deleting_objects_treats_missing_ones_as_deleted(
    subject: Subject, tmp_path: Path
) -> None:
    store = subject.store
    upload_id = await store.start_upload(KEY, "audio/wav")
    await store.complete_upload(KEY, upload_id, [await store.put_part(KEY, upload_id, 1, b"x")])

    assert await store.delete_many([KEY, "audio/never-was"]) == []
    await assert_absent(store, KEY, tmp_path)
    assert await store.delete_many([KEY]) == []


async def test_stale_uploads_are_aborted_by_age_except_those_kept(subject: Subject) -> None:
    store = subject.store
    old = datetime(2010, 11, 10, tzinfo=UTC)
    stale = await store.start_upload("audio/stale", "audio/wav")
    kept = await store.start_upload("audio/kept", "audio/wav")
    await store.put_part("audio/stale", stale, 1, b"abandoned")
    await store.put_part("audio/kept", kept, 1, b"to be continued")
    started = [
        subject.backdate("audio/stale", stale, old),
        subject.backdate("audio/kept", kept, old),
    ]

    assert await store.abort_stale_uploads(min(started) - timedelta(seconds=1)) == 0
    assert subject.open_uploads() == {stale, kept}, "too young"

    after = max(started) + timedelta(seconds=1)
    assert await store.abort_stale_uploads(after, keep={kept}) == 1
    assert subject.open_uploads() == {kept}

    assert await store.abort_stale_uploads(after, keep={kept}) == 0
    assert await store.abort_stale_uploads(after) == 1
    assert subject.open_uploads() == set()
