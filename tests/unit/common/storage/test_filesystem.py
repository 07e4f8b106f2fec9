"""FilesystemStore, the embedded object store: the real adapter on a temporary directory,
beyond the port's contract (which test_object_store_contract checks): how uploads and
objects lie on disk, and what is left after failures."""

from __future__ import annotations

import errno
import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from steno.common.errors import StorageUnavailable
from steno.common.storage import MIN_PART_BYTES, StoredPart, filesystem
from steno.common.storage.filesystem import FilesystemStore

PART = MIN_PART_BYTES


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def hidden_in(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*"))


def upload_dir(store: FilesystemStore, key: str, upload_id: str) -> Path:
    path = store.root / key
    return path.with_name(f".{path.name}.{upload_id}.upload")


def set_mtime(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


@pytest.fixture
async def store(tmp_path: Path) -> FilesystemStore:
    store = FilesystemStore(tmp_path / "objects")
    await store.ensure_ready()
    return store


async def test_ensure_ready_creates_the_root(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    await FilesystemStore(root).ensure_ready()
    await FilesystemStore(root).ensure_ready()  # idempotent
    assert root.is_dir()


async def test_an_upload_is_a_hidden_directory_of_data_and_part_records(
    store: FilesystemStore,
) -> None:
    upload_id = await store.start_upload("audio/one", "audio/wav")
    directory = upload_dir(store, "audio/one", upload_id)
    assert directory.is_dir()
    assert len(upload_id) == 32

    second = await store.put_part("audio/one", upload_id, 2, b"second")
    first = await store.put_part("audio/one", upload_id, 1, b"first")

    assert files_under(store.root) == [directory / "00001", directory / "00002", directory / "data"]
    assert (directory / "data").read_bytes() == b"secondfirst"
    assert (directory / "00001").read_text() == f"6 5 {first.etag}"
    assert (directory / "00002").read_text() == f"0 6 {second.etag}"
    assert not (store.root / "audio" / "one").exists()


async def test_parts_stored_in_order_become_the_object_without_a_copy(
    store: FilesystemStore,
) -> None:
    """The upload's data file itself is renamed to the object: its bytes are written once."""
    upload_id = await store.start_upload("audio/one", "audio/wav")
    parts = [
        await store.put_part("audio/one", upload_id, 1, b"R" * PART),
        await store.put_part("audio/one", upload_id, 2, b"IFF"),
    ]
    written = (upload_dir(store, "audio/one", upload_id) / "data").stat().st_ino

    await store.complete_upload("audio/one", upload_id, parts)

    assert (store.root / "audio" / "one").stat().st_ino == written


async def test_parts_out_of_their_order_are_copied_into_the_object(
    store: FilesystemStore,
) -> None:
    upload_id = await store.start_upload("audio/one", "audio/wav")
    last = await store.put_part("audio/one", upload_id, 2, b"IFF")
    first = await store.put_part("audio/one", upload_id, 1, b"R" * PART)
    written = (upload_dir(store, "audio/one", upload_id) / "data").stat().st_ino

    await store.complete_upload("audio/one", upload_id, [first, last])

    assert (store.root / "audio" / "one").read_bytes() == b"R" * PART + b"IFF"
    assert (store.root / "audio" / "one").stat().st_ino != written
    assert files_under(store.root) == [store.root / "audio" / "one"]


async def test_completing_leaves_only_the_object(store: FilesystemStore) -> None:
    upload_id = await store.start_upload("audio/one", "audio/wav")
    first = await store.put_part("audio/one", upload_id, 1, b"R" * PART)
    last = await store.put_part("audio/one", upload_id, 2, b"IFF")

    await store.complete_upload("audio/one", upload_id, [first, last])

    assert files_under(store.root) == [store.root / "audio" / "one"]
    assert (store.root / "audio" / "one").read_bytes() == b"R" * PART + b"IFF"
    assert not upload_dir(store, "audio/one", upload_id).exists()


async def test_a_refused_completion_leaves_no_half_object(store: FilesystemStore) -> None:
    """The parts are checked before anything is joined; a bad one leaves the object absent
    and the upload as it was."""
    upload_id = await store.start_upload("audio/one", "audio/wav")
    small = await store.put_part("audio/one", upload_id, 1, b"too small")
    last = await store.put_part("audio/one", upload_id, 2, b"end")

    with pytest.raises(ValueError, match="all but the last"):
        await store.complete_upload("audio/one", upload_id, [small, last])
    with pytest.raises(ValueError, match="ascending"):
        await store.complete_upload("audio/one", upload_id, [last, small])
    with pytest.raises(ValueError, match="never stored"):
        await store.complete_upload("audio/one", upload_id, [StoredPart(3, 1, "x")])
    with pytest.raises(ValueError, match="etag differs"):
        await store.complete_upload("audio/one", upload_id, [StoredPart(1, 9, "x")])

    directory = upload_dir(store, "audio/one", upload_id)
    assert files_under(store.root) == [directory / "00001", directory / "00002", directory / "data"]


async def test_an_aborted_upload_takes_no_part_and_says_which(store: FilesystemStore) -> None:
    upload_id = await store.start_upload("audio/one", "audio/wav")
    await store.abort_upload("audio/one", upload_id)

    with pytest.raises(StorageUnavailable, match=f"upload {upload_id} of 'audio/one' no longer"):
        await store.put_part("audio/one", upload_id, 1, b"late")
    with pytest.raises(StorageUnavailable, match="no longer exists"):
        await store.put_part("audio/one", "../../escape", 1, b"late")
    assert files_under(store.root) == []


async def test_a_stored_part_is_never_half_written(
    store: FilesystemStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails midway leaves the part as it was: absent, or the previous one; what
    it wrote of its data is skipped by the parts stored after it."""
    upload_id = await store.start_upload("audio/one", "audio/wav")
    whole = await store.put_part("audio/one", upload_id, 1, b"w" * PART)

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", failing_fsync)
        with pytest.raises(OSError, match="No space"):
            await store.put_part("audio/one", upload_id, 1, b"replacement")
        with pytest.raises(OSError, match="No space"):
            await store.put_part("audio/one", upload_id, 2, b"new")

    directory = upload_dir(store, "audio/one", upload_id)
    assert files_under(store.root) == [directory / "00001", directory / "data"]
    assert (directory / "00001").read_text() == f"0 {PART} {whole.etag}"
    last = await store.put_part("audio/one", upload_id, 2, b"end")
    await store.complete_upload("audio/one", upload_id, [whole, last])
    assert (store.root / "audio" / "one").read_bytes() == b"w" * PART + b"end"


async def test_a_part_waiting_on_a_completion_does_not_write_into_the_object(
    store: FilesystemStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part stored while the upload is being completed (a stream that lost the upload to
    another): the completion, holding the data file's lock first, makes it the object; the
    part then finds the upload gone instead of appending to the object."""
    upload_id = await store.start_upload("audio/one", "audio/wav")
    part = await store.put_part("audio/one", upload_id, 1, b"kept")
    directory = upload_dir(store, "audio/one", upload_id)
    lock = filesystem.fcntl.flock

    def completed_meanwhile(fd: int, operation: int) -> None:
        os.replace(directory / "data", store.root / "audio" / "one")
        monkeypatch.setattr(filesystem.fcntl, "flock", lock)
        lock(fd, operation)

    monkeypatch.setattr(filesystem.fcntl, "flock", completed_meanwhile)
    with pytest.raises(StorageUnavailable, match="no longer exists"):
        await store.put_part("audio/one", upload_id, 2, b"late")

    assert (store.root / "audio" / "one").read_bytes() == b"kept"
    assert part.size == 4


@pytest.mark.parametrize("key", ["../x", "audio/../../x", "/etc/passwd"])
async def test_key_escaping_the_root_is_refused(
    store: FilesystemStore, tmp_path: Path, key: str
) -> None:
    with pytest.raises(ValueError, match="escapes"):
        await store.start_upload(key, "audio/wav")
    with pytest.raises(ValueError, match="escapes"):
        await store.put_part(key, "0" * 32, 1, b"x")
    with pytest.raises(ValueError, match="escapes"):
        await store.complete_upload(key, "0" * 32, [])
    with pytest.raises(ValueError, match="escapes"):
        await store.abort_upload(key, "0" * 32)
    with pytest.raises(ValueError, match="escapes"):
        await store.delete_many([key])
    with pytest.raises(ValueError, match="escapes"):
        await store.download(key, tmp_path / "out")
    with pytest.raises(ValueError, match="escapes"):
        await store.sha256(key)
    assert not (tmp_path / "x").exists()
    assert hidden_in(tmp_path) == []


async def test_the_root_itself_is_no_object(store: FilesystemStore) -> None:
    with pytest.raises(ValueError, match="names no object"):
        await store.start_upload("", "audio/wav")
    assert hidden_in(store.root.parent) == []


async def test_an_upload_is_stale_by_its_last_stored_part(store: FilesystemStore) -> None:
    """An upload still receiving parts is not stale, however long ago it started."""
    upload_id = await store.start_upload("audio/a", "audio/wav")
    directory = upload_dir(store, "audio/a", upload_id)
    set_mtime(directory, datetime(2020, 1, 1, tzinfo=UTC))

    await store.put_part("audio/a", upload_id, 1, b"still coming")
    stored = datetime.fromtimestamp(directory.stat().st_mtime, UTC)

    assert stored > datetime(2020, 1, 2, tzinfo=UTC)
    assert await store.abort_stale_uploads(stored - timedelta(seconds=1)) == 0, "too young"
    assert await store.abort_stale_uploads(stored + timedelta(seconds=1)) == 1
    assert files_under(store.root) == []
    assert not directory.exists()


async def test_the_stale_sweep_keeps_uploads_it_is_told_to(store: FilesystemStore) -> None:
    old = datetime(2020, 1, 1, tzinfo=UTC)
    stale = await store.start_upload("audio/a", "audio/wav")
    kept = await store.start_upload("audio/a", "audio/wav")
    young = await store.start_upload("audio/b", "audio/wav")
    set_mtime(upload_dir(store, "audio/a", stale), old)
    set_mtime(upload_dir(store, "audio/a", kept), old)

    assert await store.abort_stale_uploads(old + timedelta(days=1), keep={kept}) == 1

    assert not upload_dir(store, "audio/a", stale).exists()
    assert upload_dir(store, "audio/a", kept).is_dir()
    assert upload_dir(store, "audio/b", young).is_dir()


async def test_the_stale_sweep_removes_what_a_dead_process_left_half_removed(
    store: FilesystemStore,
) -> None:
    """An upload directory is renamed before it is removed; a removal cut short leaves the
    renamed one, which is no upload any more and goes whatever its age."""
    leftover = store.root / "audio" / ".a.0123.upload.4567.discarded"
    leftover.mkdir(parents=True)
    (leftover / "00001").write_bytes(b"x")

    assert await store.abort_stale_uploads(datetime(2000, 1, 1, tzinfo=UTC)) == 0
    assert not leftover.exists()


async def test_sha256_and_download_read_the_object(store: FilesystemStore, tmp_path: Path) -> None:
    (store.root / "audio").mkdir()
    (store.root / "audio" / "one").write_bytes(b"\x00\x01" * 1000)

    await store.download("audio/one", tmp_path / "copy")

    assert (tmp_path / "copy").read_bytes() == b"\x00\x01" * 1000
    assert await store.sha256("audio/one") == hashlib.sha256(b"\x00\x01" * 1000).hexdigest()


async def test_a_completion_that_finds_another_halfway_through_succeeds(
    store: FilesystemStore,
) -> None:
    """Another completion has made the data the object but not yet removed the directory
    (or died before it could): completing again is not an error, and removes it."""
    upload_id = await store.start_upload("audio/one", "audio/wav")
    part = await store.put_part("audio/one", upload_id, 1, b"kept")
    directory = upload_dir(store, "audio/one", upload_id)
    os.replace(directory / "data", store.root / "audio" / "one")

    await store.complete_upload("audio/one", upload_id, [part])

    assert files_under(store.root) == [store.root / "audio" / "one"]
    with pytest.raises(StorageUnavailable, match="no longer exists"):
        await store.put_part("audio/one", upload_id, 2, b"late")


@pytest.mark.parametrize("kernel_copy", ["refused", "absent"])
async def test_parts_are_copied_without_the_kernels_copy_too(
    store: FilesystemStore, monkeypatch: pytest.MonkeyPatch, kernel_copy: str
) -> None:
    def cross_device(*args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    if kernel_copy == "absent":
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    else:
        monkeypatch.setattr(os, "copy_file_range", cross_device)
    upload_id = await store.start_upload("audio/one", "audio/wav")
    last = await store.put_part("audio/one", upload_id, 2, b"IFF")
    first = await store.put_part("audio/one", upload_id, 1, b"R" * PART)

    await store.complete_upload("audio/one", upload_id, [first, last])

    assert (store.root / "audio" / "one").read_bytes() == b"R" * PART + b"IFF"
