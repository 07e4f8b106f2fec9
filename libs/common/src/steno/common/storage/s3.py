"""MinIO / S3 as the object store (minio-py).

An upload is an S3 multipart upload, made with minio-py's own multipart calls: the caller
cuts the audio into parts and each part is one UploadPart request. minio-py blocks, so every
call runs in a thread. Parts go through a pool of their own, a thread per concurrent upload,
so that many uploads sending parts (or hashing what they stored) never starve the default
executor that every other call shares.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import hashlib
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error

from steno.common.errors import StorageUnavailable
from steno.common.storage import MAX_PARTS, DeleteFailure, StoredPart

_T = TypeVar("_T")

_NO_SUCH = {"NoSuchKey", "NoSuchObject"}
_NO_SUCH_UPLOAD = "NoSuchUpload"
# S3's refusals of a CompleteMultipartUpload whose parts are wrong: a bug of the caller's,
# not the store failing, so they raise ValueError as the other stores do.
_BAD_PARTS = {"EntityTooSmall", "InvalidPart", "InvalidPartOrder", "MalformedXML"}
# Failures that mean "the store is unreachable or misbehaving", as opposed to a bug here.
_STORE_ERRORS = (MinioException, urllib3.exceptions.HTTPError, OSError)
_READ_BYTES = 1024 * 1024


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
        max_uploads: int = 64,
    ) -> None:
        host, secure = parse_endpoint(endpoint, secure)
        self._client = Minio(
            host, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )
        self._bucket = bucket
        # One thread per concurrent upload: an upload sends one part at a time.
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

    async def start_upload(self, key: str, content_type: str) -> str:
        starting = asyncio.ensure_future(
            _in_thread(
                self._client._create_multipart_upload,
                self._bucket,
                key,
                {"Content-Type": content_type},
            )
        )
        try:
            return await asyncio.shield(starting)
        except asyncio.CancelledError:
            # The caller went away (a client that hung up) while S3 was starting the upload:
            # an id that S3 gave out and nobody heard of would be an upload left behind.
            with contextlib.suppress(Exception):
                await self.abort_upload(key, await starting)
            raise

    async def put_part(self, key: str, upload_id: str, number: int, data: bytes) -> StoredPart:
        _check_part_number(number)
        try:
            etag = await _in_thread(
                self._client._upload_part,
                self._bucket,
                key,
                data,
                None,
                upload_id,
                number,
                executor=self._uploads,
            )
        except _NoSuchUpload as exc:
            raise _upload_gone(key, upload_id) from exc
        return StoredPart(number=number, size=len(data), etag=etag)

    async def complete_upload(self, key: str, upload_id: str, parts: Sequence[StoredPart]) -> None:
        listed = [Part(part.number, part.etag) for part in parts]
        try:
            await _in_thread(
                self._client._complete_multipart_upload, self._bucket, key, upload_id, listed
            )
        except _NoSuchUpload as exc:
            # Completed already (by this call retried, or by another stream), or aborted.
            if await self._size(key) == sum(part.size for part in parts):
                return
            raise _upload_gone(key, upload_id) from exc
        except _Refused as exc:
            if exc.code in _BAD_PARTS:
                raise ValueError(f"the parts of upload {upload_id} of {key!r}: {exc}") from exc
            raise

    async def _size(self, key: str) -> int | None:
        try:
            stat = await _in_thread(self._client.stat_object, self._bucket, key)
        except _Missing:
            return None
        return int(stat.size) if stat.size is not None else None

    async def abort_upload(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(_NoSuchUpload):  # completed, aborted, or never was
            await _in_thread(self._client._abort_multipart_upload, self._bucket, key, upload_id)

    async def sha256(self, key: str) -> str:
        try:
            # Reading a whole object takes as long as an upload: in the uploads' pool.
            return await _in_thread(self._sha256, key, executor=self._uploads)
        except _Missing as exc:
            raise FileNotFoundError(f"no object {key!r} in bucket {self._bucket!r}") from exc

    def _sha256(self, key: str) -> str:
        response = self._client.get_object(self._bucket, key)
        try:
            digest = hashlib.sha256()
            for chunk in response.stream(_READ_BYTES):
                digest.update(chunk)
            return digest.hexdigest()
        finally:
            response.close()
            response.release_conn()

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

    async def abort_stale_uploads(
        self, started_before: datetime, *, keep: Collection[str] = ()
    ) -> int:
        return await _in_thread(self._abort_stale_uploads, started_before, frozenset(keep))

    def _abort_stale_uploads(self, started_before: datetime, keep: frozenset[str]) -> int:
        # minio-py has no public listing of multipart uploads; these are its own S3 calls.
        aborted = 0
        key_marker = upload_marker = None
        while True:
            listing = self._client._list_multipart_uploads(
                self._bucket, key_marker=key_marker, upload_id_marker=upload_marker
            )
            for upload in listing.uploads:
                started = upload.initiated_time
                if (
                    upload.upload_id
                    and upload.upload_id not in keep
                    and started is not None
                    and started < started_before
                ):
                    try:
                        self._client._abort_multipart_upload(
                            self._bucket, upload.object_name, upload.upload_id
                        )
                    except S3Error as exc:
                        if exc.code != _NO_SUCH_UPLOAD:  # completed or aborted meanwhile
                            raise
                    else:
                        aborted += 1
            if not listing.is_truncated or not listing.uploads:
                return aborted
            # The page's last upload (minio-py mislays the next upload id marker).
            last = listing.uploads[-1]
            key_marker, upload_marker = last.object_name, last.upload_id


class _Missing(Exception):
    """The object does not exist (S3's NoSuchKey)."""


class _NoSuchUpload(Exception):
    """The multipart upload does not exist: never did, or was completed or aborted."""


class _Refused(StorageUnavailable):
    """S3 refused the request with an error code that the caller may want to tell apart."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def _check_part_number(number: int) -> None:
    if not 1 <= number <= MAX_PARTS:
        raise ValueError(f"part number {number} is not between 1 and {MAX_PARTS}")


def _upload_gone(key: str, upload_id: str) -> StorageUnavailable:
    return StorageUnavailable(f"upload {upload_id} of {key!r} no longer exists")


async def _in_thread(
    call: Callable[..., _T],
    *args: Any,
    executor: concurrent.futures.ThreadPoolExecutor | None = None,
) -> _T:
    """Runs a blocking minio call in a thread (of ``executor``, else the default one). An
    unreachable or failing store becomes StorageUnavailable (a refusal, _Refused), a missing
    object _Missing and a missing multipart upload _NoSuchUpload."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    try:
        return await loop.run_in_executor(executor, functools.partial(context.run, call, *args))
    except S3Error as exc:
        if exc.code in _NO_SUCH:
            raise _Missing(exc.code) from exc
        if exc.code == _NO_SUCH_UPLOAD:
            raise _NoSuchUpload(exc.code) from exc
        raise _Refused(f"the object store refused the request: {exc}", exc.code or "") from exc
    except _STORE_ERRORS as exc:
        raise StorageUnavailable(f"the object store is unreachable: {exc}") from exc
