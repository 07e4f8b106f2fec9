"""A directory as the object store: the embedded default for ``steno dev``.

An object is a file under the root, named by its key. A multipart upload of it is a hidden
directory beside it, ``.{name}.{upload_id}.upload``, holding ``data``, to which every part
stored is appended and synced, and a small record per part (``00001`` and on) saying where
in ``data`` the part lies and its etag, written to a temporary name, synced and renamed: a
part is either whole or absent, and storing a number again replaces its record. A part's
etag is a random token, not a digest of its bytes: all it has to do is tell this storing of
the part from any other, and hashing every byte costs more than writing it.

Completing the upload renames ``data`` to the object's name when the listed parts are all of
it, in order (a stream's parts, the usual case): every byte is written once. Otherwise
(parts stored out of order, replaced, or left out) the listed parts are copied, in the
kernel, into a temporary file that is synced and renamed to the object's name. The
directory is then removed. Its modification time, which every stored part renews, is how
old an upload is.

The store checks what S3 checks (part numbers, sizes and etags), so that a caller that works
here works on S3.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import itertools
import os
import re
import shutil
import uuid
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from steno.common.disk_space import Disk
from steno.common.errors import StorageUnavailable
from steno.common.storage import MAX_PARTS, MIN_PART_BYTES, DeleteFailure, StoredPart

_UPLOAD_SUFFIX = ".upload"
# What an upload directory becomes the moment it is completed or aborted, before it is
# removed: a directory that is gone under its upload name at once, whatever is left inside.
_DISCARDED_SUFFIX = ".discarded"
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
# The file of an upload directory that its parts are appended to.
_DATA = "data"
_COPY_BYTES = 1024 * 1024


class FilesystemStore:
    """Objects are files under ``root``; uploads are hidden directories beside them. Each
    write is checked against the free space ``disk`` must keep (StorageFull)."""

    def __init__(self, root: Path, *, disk: Disk | None = None) -> None:
        self.root = root
        self._disk = disk or Disk("objects", root)

    async def ensure_ready(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def start_upload(self, key: str, content_type: str) -> str:
        upload_id = uuid.uuid4().hex
        directory = self._upload_dir(key, upload_id)
        assert directory is not None
        await asyncio.to_thread(_make_upload_dir, directory)
        return upload_id

    async def put_part(self, key: str, upload_id: str, number: int, data: bytes) -> StoredPart:
        if not 1 <= number <= MAX_PARTS:
            raise ValueError(f"part number {number} is not between 1 and {MAX_PARTS}")
        directory = self._upload_dir(key, upload_id)
        if directory is None:
            raise _upload_gone(key, upload_id)
        self._disk.check_room(len(data))
        try:
            etag = await asyncio.to_thread(_write_part, directory, number, data)
        except FileNotFoundError as exc:  # the directory: aborted, or completed
            raise _upload_gone(key, upload_id) from exc
        return StoredPart(number=number, size=len(data), etag=etag)

    async def complete_upload(self, key: str, upload_id: str, parts: Sequence[StoredPart]) -> None:
        path = self._path(key)
        directory = self._upload_dir(key, upload_id)
        await asyncio.to_thread(self._complete, key, upload_id, path, directory, parts)

    def _complete(
        self,
        key: str,
        upload_id: str,
        path: Path,
        directory: Path | None,
        parts: Sequence[StoredPart],
    ) -> None:
        try:
            if directory is None:
                raise FileNotFoundError(upload_id)
            _join(directory, path, parts, self._disk)
        except FileNotFoundError as exc:
            if directory is not None and (directory / _DATA).exists():
                raise ValueError(
                    f"a part listed for upload {upload_id} of {key!r} was never stored"
                ) from exc
            # Completed already (by this call retried, or by another stream, which may not
            # have removed the directory yet, or died before it could), or aborted.
            if _size(path) == sum(part.size for part in parts):
                _discard(directory)
                return
            raise _upload_gone(key, upload_id) from exc
        _discard(directory)

    async def abort_upload(self, key: str, upload_id: str) -> None:
        directory = self._upload_dir(key, upload_id)
        if directory is not None:
            await asyncio.to_thread(_discard, directory)

    async def sha256(self, key: str) -> str:
        return await asyncio.to_thread(_sha256, self._path(key))

    async def download(self, key: str, destination: Path) -> None:
        await asyncio.to_thread(shutil.copyfile, self._path(key), destination)

    async def delete_many(self, keys: Sequence[str]) -> list[DeleteFailure]:
        return await asyncio.to_thread(self._delete_many, keys)

    def _delete_many(self, keys: Sequence[str]) -> list[DeleteFailure]:
        failures = []
        for key in keys:
            try:
                self._path(key).unlink(missing_ok=True)
            except OSError as exc:
                failures.append(DeleteFailure(key, str(exc)))
        return failures

    async def abort_stale_uploads(
        self, started_before: datetime, *, keep: Collection[str] = ()
    ) -> int:
        return await asyncio.to_thread(
            self._abort_stale_uploads, started_before.timestamp(), frozenset(keep)
        )

    def _abort_stale_uploads(self, cutoff: float, keep: frozenset[str]) -> int:
        aborted = 0
        for directory in list(self.root.rglob(f".*{_UPLOAD_SUFFIX}")):
            upload_id = directory.name.removesuffix(_UPLOAD_SUFFIX).rpartition(".")[2]
            if not _UPLOAD_ID.fullmatch(upload_id) or upload_id in keep:
                continue
            try:
                if not directory.is_dir() or directory.stat().st_mtime >= cutoff:
                    continue
            except FileNotFoundError:  # completed or aborted meanwhile
                continue
            if _discard(directory):
                aborted += 1
        # What a process that died while removing an upload left behind.
        for leftover in list(self.root.rglob(f".*{_DISCARDED_SUFFIX}")):
            shutil.rmtree(leftover, ignore_errors=True)
        return aborted

    def _path(self, key: str) -> Path:
        root = self.root.resolve()
        path = (self.root / key).resolve()
        if not path.is_relative_to(root):
            raise ValueError(f"object key {key!r} escapes the store")
        if path == root:
            raise ValueError(f"object key {key!r} names no object")
        return path

    def _upload_dir(self, key: str, upload_id: str) -> Path | None:
        """Where the upload's parts are; None if ``upload_id`` cannot be one of this store's
        (which also keeps a made-up id from naming a path elsewhere)."""
        path = self._path(key)
        if not _UPLOAD_ID.fullmatch(upload_id):
            return None
        return path.with_name(f".{path.name}.{upload_id}{_UPLOAD_SUFFIX}")


def _upload_gone(key: str, upload_id: str) -> StorageUnavailable:
    return StorageUnavailable(f"upload {upload_id} of {key!r} no longer exists")


def _part_name(number: int) -> str:
    return f"{number:05d}"


class _Record(NamedTuple):
    """Where a stored part lies in its upload's data file, and its etag."""

    offset: int
    size: int
    etag: str

    @classmethod
    def read(cls, path: Path) -> _Record:
        offset, size, etag = path.read_text("ascii").split()
        return cls(int(offset), int(size), etag)


def _make_upload_dir(directory: Path) -> None:
    """The upload's directory with its empty data file: a directory without one is an
    upload completed (its data is the object now) but not yet removed."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.mkdir()
    os.close(os.open(directory / _DATA, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    _sync_dir(directory)
    _sync_dir(directory.parent)


@contextlib.contextmanager
def _locked_data(directory: Path, flags: int = os.O_RDONLY) -> Iterator[int]:
    """The upload's data file, open and locked against every other writer or completer;
    FileNotFoundError if the upload is gone, or was completed while this waited for the
    lock (its data is the object now, and must not be written to)."""
    fd = os.open(directory / _DATA, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.stat(directory / _DATA).st_ino != os.fstat(fd).st_ino:
            raise FileNotFoundError(directory / _DATA)
        yield fd
    finally:
        os.close(fd)  # which releases the lock


def _write_part(directory: Path, number: int, data: bytes) -> str:
    """Appends the part to the upload's data and records where it lies, synced; returns the
    part's etag. A write that fails leaves the previous record of ``number``, if any."""
    with _locked_data(directory, os.O_WRONLY | os.O_APPEND) as fd:
        offset = os.fstat(fd).st_size  # past whatever a write that failed left behind
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    record = _Record(offset, len(data), uuid.uuid4().hex)
    temporary = directory / f".{_part_name(number)}.{record.etag}.tmp"
    try:
        with temporary.open("x", encoding="ascii") as file:
            file.write(" ".join(map(str, record)))
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(directory / _part_name(number))
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
    _sync_dir(directory)
    return record.etag


def _join(directory: Path, path: Path, parts: Sequence[StoredPart], disk: Disk) -> None:
    """Makes the listed parts the object at ``path``, checking them as S3 does (and, if they
    must be copied, that ``disk`` has room for the copy). FileNotFoundError if the directory
    or a listed part is missing."""
    records = _checked_records(directory, parts)
    ends = list(itertools.accumulate(record.size for record in records))
    with _locked_data(directory) as data:
        back_to_back = all(
            record.offset == end - record.size for record, end in zip(records, ends, strict=True)
        )
        if back_to_back and ends[-1] == os.fstat(data).st_size:
            os.replace(directory / _DATA, path)  # synced as each part was stored
        else:
            disk.check_room(ends[-1])
            _copy_into(data, records, path, directory)
    _sync_dir(path.parent)


def _checked_records(directory: Path, parts: Sequence[StoredPart]) -> list[_Record]:
    if not parts:
        raise ValueError("an upload is completed with at least one part")
    numbers = [part.number for part in parts]
    if numbers != sorted(set(numbers)):
        raise ValueError(f"parts must be listed in ascending order, once each: {numbers}")
    records = []
    for index, part in enumerate(parts):
        record = _Record.read(directory / _part_name(part.number))
        if record.etag != part.etag:
            raise ValueError(f"part {part.number} is not the one stored (its etag differs)")
        if index < len(parts) - 1 and record.size < MIN_PART_BYTES:
            raise ValueError(
                f"part {part.number} holds {record.size} bytes; "
                f"all but the last need {MIN_PART_BYTES}"
            )
        records.append(record)
    return records


def _copy_into(data: int, records: Sequence[_Record], path: Path, directory: Path) -> None:
    """Copies the parts' bytes, in order, into a new file that becomes ``path``."""
    joined = directory / f".joined.{uuid.uuid4().hex}.tmp"
    try:
        with joined.open("xb") as out:
            for record in records:
                _copy_range(data, out.fileno(), record.offset, record.size)
            out.flush()
            os.fsync(out.fileno())
        joined.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            joined.unlink(missing_ok=True)
        raise


# What copy_file_range raises on a filesystem or kernel that cannot do it.
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})


def _copy_range(source: int, destination: int, offset: int, size: int) -> None:
    """Appends ``size`` bytes of ``source`` from ``offset`` to ``destination``: in the kernel
    where it can (Linux, on most filesystems), through a buffer elsewhere."""
    end = offset + size
    in_kernel = hasattr(os, "copy_file_range")
    while offset < end:
        copied = 0
        if in_kernel:
            try:
                copied = os.copy_file_range(source, destination, end - offset, offset)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                in_kernel = False
        if not in_kernel:
            copied = os.write(destination, os.pread(source, min(end - offset, _COPY_BYTES), offset))
        if not copied:
            raise ValueError("an upload's data is shorter than its parts' records")
        offset += copied


def _discard(directory: Path | None) -> bool:
    """Removes an upload directory; False if it was already gone. The directory is first
    renamed, which takes it from every other call at once, and then removed."""
    if directory is None:
        return False
    discarded = directory.with_name(f"{directory.name}.{uuid.uuid4().hex}{_DISCARDED_SUFFIX}")
    try:
        directory.rename(discarded)
    except FileNotFoundError:
        return False
    # A part being written into it as it was renamed may still appear: left for the next
    # abort_stale_uploads.
    shutil.rmtree(discarded, ignore_errors=True)
    return True


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_COPY_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _sync_dir(directory: Path) -> None:
    """Makes the renames in ``directory`` durable (where directories can be synced)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
