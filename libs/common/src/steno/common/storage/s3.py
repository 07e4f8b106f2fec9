"""MinIO / S3 as the object store (minio-py).

minio-py blocks, so every call runs in a thread. An upload is one ``put_object`` call in its
own thread reading from a bounded queue that :meth:`S3Writer.write` fills with slices of at
most 64 KiB: when S3 is slower than the client, the queue fills, ``write`` waits, the gRPC
handler stops reading, and flow control pushes back on the client. Memory per upload stays
at about two multipart parts (the one being sent and the one being read) plus the chunks
the queue's slices belong to, whatever the file's size.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error

from steno.common.errors import StorageUnavailable
from steno.common.storage import DeleteFailure

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# Slices buffered between the gRPC handler and the upload thread, and their largest size.
_QUEUE_SLICES = 8
_SLICE_BYTES = 64 * 1024
_NO_SUCH = {"NoSuchKey", "NoSuchObject"}
# Failures that mean "the store is unreachable or misbehaving", as opposed to a bug here.
_STORE_ERRORS = (MinioException, urllib3.exceptions.HTTPError, OSError)


def parse_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """``host:port`` as minio-py takes it, from either that or an ``http(s)://`` URL."""
    if "://" not in endpoint:
        return endpoint, secure
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"S3 endpoint {endpoint!r} must be host:port or an http(s):// URL")
    return parts.netloc, parts.scheme == "https"


class S3Store:
    """Objects in one S3 bucket."""

    def __init__(
        self,
        endpoint: str,
        *,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str | None = None,
        part_size: int = 8 * 1024 * 1024,
        max_uploads: int = 64,
    ) -> None:
        host, secure = parse_endpoint(endpoint, secure)
        self._client = Minio(
            host, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )
        self._bucket = bucket
        self._part_size = part_size
        # Uploads hold their thread for as long as the client streams: they get a pool of
        # their own, one thread per concurrent upload, so they never starve other calls.
        self._uploads = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_uploads, thread_name_prefix="s3-upload"
        )

    async def ensure_ready(self) -> None:
        await _in_thread(self._ensure_bucket)

    def _ensure_bucket(self) -> None:
        if self._client.bucket_exists(self._bucket):
            return
        try:
            self._client.make_bucket(self._bucket)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def writer(self, key: str, content_type: str) -> S3Writer:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | memoryview | None] = asyncio.Queue(maxsize=_QUEUE_SLICES)
        reader = _QueueReader(queue, loop)
        upload = loop.run_in_executor(
            self._uploads,
            lambda: self._client.put_object(
                self._bucket,
                key,
                cast(BinaryIO, reader),
                length=-1,
                part_size=self._part_size,
                content_type=content_type,
                # minio-py's parallel mode queues parts without bound; one at a time keeps
                # memory at a single part.
                num_parallel_uploads=1,
            ),
        )
        return S3Writer(queue, reader, upload)

    async def download(self, key: str, destination: Path) -> None:
        try:
            await _in_thread(self._client.fget_object, self._bucket, key, str(destination))
        except _Missing as exc:
            raise FileNotFoundError(f"no object {key!r} in bucket {self._bucket!r}") from exc

    async def delete_many(self, keys: Sequence[str]) -> list[DeleteFailure]:
        return await _in_thread(self._delete_many, keys)

    def _delete_many(self, keys: Sequence[str]) -> list[DeleteFailure]:
        # remove_objects is lazy: nothing is deleted until its error iterator is consumed.
        errors = self._client.remove_objects(self._bucket, [DeleteObject(k) for k in keys])
        return [
            DeleteFailure(error.name or "", f"{error.code}: {error.message}")
            for error in errors
            if error.code not in _NO_SUCH
        ]

    async def abort_stale_uploads(self, started_before: datetime) -> int:
        return await _in_thread(self._abort_stale_uploads, started_before)

    def _abort_stale_uploads(self, started_before: datetime) -> int:
        # minio-py has no public listing of multipart uploads; these are its own S3 calls.
        aborted = 0
        key_marker = upload_marker = None
        while True:
            listing = self._client._list_multipart_uploads(
                self._bucket, key_marker=key_marker, upload_id_marker=upload_marker
            )
            for upload in listing.uploads:
                started = upload.initiated_time
                if upload.upload_id and started is not None and started < started_before:
                    self._client._abort_multipart_upload(
                        self._bucket, upload.object_name, upload.upload_id
                    )
                    aborted += 1
            if not listing.is_truncated or not listing.uploads:
                return aborted
            # The page's last upload (minio-py mislays the next upload id marker).
            last = listing.uploads[-1]
            key_marker, upload_marker = last.object_name, last.upload_id


class _Missing(Exception):
    """The object does not exist (S3's NoSuchKey)."""


async def _in_thread(call: Callable[..., _T], *args: Any) -> _T:
    """Runs a blocking minio call in a thread; an unreachable or failing store becomes
    StorageUnavailable and a missing object becomes _Missing."""
    try:
        return await asyncio.to_thread(call, *args)
    except S3Error as exc:
        if exc.code in _NO_SUCH:
            raise _Missing(exc.code) from exc
        raise StorageUnavailable(f"the object store refused the request: {exc}") from exc
    except _STORE_ERRORS as exc:
        raise StorageUnavailable(f"the object store is unreachable: {exc}") from exc


class _Aborted(Exception):
    """Raised inside put_object to make it abandon (and abort) the multipart upload."""


class _QueueReader(io.RawIOBase):
    """A blocking file-like view of the chunk queue, read by put_object in its thread."""

    def __init__(
        self, queue: asyncio.Queue[bytes | memoryview | None], loop: asyncio.AbstractEventLoop
    ):
        self._queue = queue
        self._loop = loop
        self._pending: bytes | memoryview = b""
        self._eof = False
        self.aborted = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all, if negative), fewer only at the end of the stream.

        Filling the request in one piece spares minio-py from growing each part by
        repeated concatenation of small reads.
        """
        wanted = size if size >= 0 else float("inf")
        pieces: list[bytes | memoryview] = []
        have = 0
        while have < wanted:
            if not self._pending:
                if self._eof:
                    break
                chunk = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()
                if self.aborted:
                    raise _Aborted()
                if chunk is None:
                    self._eof = True
                    continue
                self._pending = chunk
            take = int(min(len(self._pending), wanted - have))
            pieces.append(self._pending[:take])
            self._pending = self._pending[take:]
            have += take
        return b"".join(pieces)  # minio-py accepts bytes only


class S3Writer:
    def __init__(
        self,
        queue: asyncio.Queue[bytes | memoryview | None],
        reader: _QueueReader,
        upload: asyncio.Future[Any],
    ) -> None:
        self._queue = queue
        self._reader = reader
        self._upload = upload

    async def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)  # slices share the chunk's memory instead of copying it
        for start in range(0, len(chunk), _SLICE_BYTES):
            await self._put(view[start : start + _SLICE_BYTES])

    async def commit(self) -> None:
        await self._put(None)
        try:
            await self._upload
        except _STORE_ERRORS as exc:
            raise StorageUnavailable(f"object store failed to store the upload: {exc}") from exc

    async def abort(self) -> None:
        self._reader.aborted = True
        # Wake the reader if it is waiting; if the queue is full it is not waiting.
        if not self._queue.full():
            self._queue.put_nowait(None)
        try:
            await self._upload
        except _Aborted:
            pass
        except Exception as exc:  # cleanup must not hide the error that caused it
            log.warning("upload abandoned after a store error", extra={"error": str(exc)})

    async def _put(self, item: bytes | memoryview | None) -> None:
        """Queues ``item`` unless the upload thread has already stopped (S3 failed)."""
        put: asyncio.Future[Any] = asyncio.ensure_future(self._queue.put(item))
        try:
            done, _ = await asyncio.wait({put, self._upload}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            put.cancel()
            raise
        if put in done:
            return
        put.cancel()
        try:
            await self._upload
        except _STORE_ERRORS as exc:
            raise StorageUnavailable(f"object store failed during the upload: {exc}") from exc
        raise StorageUnavailable("object store stopped reading the upload")
