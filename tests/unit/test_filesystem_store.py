"""FilesystemStore, the embedded object store: the real adapter on a temporary directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from steno.common.storage.filesystem import FilesystemStore


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def stored(store: FilesystemStore, key: str) -> bytes | None:
    """The object's bytes as the store keeps them, or None if there is no such object."""
    path = store.root / key
    return path.read_bytes() if path.is_file() else None


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


async def test_committed_write_becomes_the_object(store: FilesystemStore, tmp_path: Path) -> None:
    writer = store.writer("audio/one", "audio/wav")
    await writer.write(b"RIFF")
    await writer.write(b"....WAVE")
    await writer.commit()

    assert files_under(tmp_path) == [tmp_path / "objects" / "audio" / "one"]
    assert (tmp_path / "objects" / "audio" / "one").read_bytes() == b"RIFF....WAVE"
    assert stored(store, "audio/one") == b"RIFF....WAVE"


async def test_object_is_invisible_until_commit(store: FilesystemStore) -> None:
    writer = store.writer("audio/one", "audio/wav")
    await writer.write(b"abc")

    assert stored(store, "audio/one") is None

    await writer.commit()
    assert stored(store, "audio/one") == b"abc"


async def test_commit_without_writes_makes_an_empty_object(store: FilesystemStore) -> None:
    writer = store.writer("audio/empty", "audio/wav")
    await writer.commit()
    assert stored(store, "audio/empty") == b""


@pytest.mark.parametrize("written", [[], [b"partial data"]], ids=["nothing", "some"])
async def test_abort_leaves_no_file_and_no_partial(
    store: FilesystemStore, tmp_path: Path, written: list[bytes]
) -> None:
    writer = store.writer("audio/gone", "audio/wav")
    for chunk in written:
        await writer.write(chunk)

    await writer.abort()

    assert files_under(tmp_path) == []
    assert stored(store, "audio/gone") is None


async def test_concurrent_writers_to_one_key_do_not_mix(
    store: FilesystemStore, tmp_path: Path
) -> None:
    first, second = store.writer("k", "audio/wav"), store.writer("k", "audio/wav")
    await first.write(b"first")
    await second.write(b"second")
    await second.abort()
    await first.commit()

    assert files_under(tmp_path) == [tmp_path / "objects" / "k"]
    assert (tmp_path / "objects" / "k").read_bytes() == b"first"


@pytest.mark.parametrize("key", ["../x", "audio/../../x", "/etc/passwd"])
async def test_key_escaping_the_root_is_refused(
    store: FilesystemStore, tmp_path: Path, key: str
) -> None:
    with pytest.raises(ValueError, match="escapes"):
        store.writer(key, "audio/wav")
    with pytest.raises(ValueError, match="escapes"):
        await store.delete_many([key])
    with pytest.raises(ValueError, match="escapes"):
        await store.download(key, tmp_path / "out")
    assert not (tmp_path / "x").exists()


async def test_download_copies_the_object(store: FilesystemStore, tmp_path: Path) -> None:
    writer = store.writer("audio/one", "audio/wav")
    await writer.write(b"\x00\x01" * 1000)
    await writer.commit()

    await store.download("audio/one", tmp_path / "copy")

    assert (tmp_path / "copy").read_bytes() == b"\x00\x01" * 1000


async def test_download_of_missing_object_raises_file_not_found(
    store: FilesystemStore, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        await store.download("audio/missing", tmp_path / "copy")


async def test_delete_many_deletes_and_treats_missing_as_deleted(
    store: FilesystemStore, tmp_path: Path
) -> None:
    for key in ("audio/a", "audio/b", "audio/keep"):
        writer = store.writer(key, "audio/wav")
        await writer.write(b"x")
        await writer.commit()

    failures = await store.delete_many(["audio/a", "audio/b", "audio/never-existed"])

    assert failures == []
    assert files_under(tmp_path) == [tmp_path / "objects" / "audio" / "keep"]
    assert await store.delete_many(["audio/a"]) == []


async def test_partial_writes_are_discarded_once_stale(tmp_path: Path) -> None:
    """What a process that died mid-upload leaves: a partial file nobody renames."""
    store = FilesystemStore(tmp_path / "objects")
    await store.ensure_ready()
    abandoned = store.writer("audio/a", "audio/wav")
    await abandoned.write(b"RIFF")
    [partial] = list((tmp_path / "objects").rglob(".*.partial"))
    written = datetime.fromtimestamp(partial.stat().st_mtime, UTC)

    assert await store.abort_stale_uploads(written - timedelta(seconds=1)) == 0, "too young"
    assert await store.abort_stale_uploads(written + timedelta(seconds=1)) == 1
    assert not partial.exists()
