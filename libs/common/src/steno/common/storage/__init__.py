"""The object store port: where uploaded audio lives between upload and retention's end.

Audio is written as a multipart upload (S3's model, which the directory store follows): the
parts are stored one by one and become an object only when the upload is completed. A part
once stored stays stored until the upload is completed or aborted, which is what lets a
broken upload continue where its last stored part ended, even in another process.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from steno.common.errors import StorageUnavailable

# S3's smallest part, except for the last one of an upload.
MIN_PART_BYTES = 5 * 1024 * 1024
# S3's highest part number.
MAX_PARTS = 10_000


@dataclass(frozen=True, slots=True)
class DeleteFailure:
    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class StoredPart:
    """One stored part of a multipart upload: what completing the upload needs of it."""

    number: int  # 1-based, in the order of the bytes
    size: int
    etag: str


class ObjectStore(Protocol):
    async def ensure_ready(self) -> None:
        """Creates the bucket or directory if needed; raises if the store is unreachable."""
        ...

    async def start_upload(self, key: str, content_type: str) -> str:
        """Begins a multipart upload of ``key``; returns its upload id. Nothing is visible
        under ``key`` until :meth:`complete_upload`."""
        ...

    async def put_part(self, key: str, upload_id: str, number: int, data: bytes) -> StoredPart:
        """Stores part ``number`` (1 to :data:`MAX_PARTS`) of the upload durably; storing a
        number again replaces that part. Every part but the last must hold at least
        :data:`MIN_PART_BYTES`."""
        ...

    async def complete_upload(self, key: str, upload_id: str, parts: Sequence[StoredPart]) -> None:
        """Joins ``parts``, in order, into the object ``key``; parts stored but not listed
        are dropped. Completing an upload that is already complete is not an error."""
        ...

    async def abort_upload(self, key: str, upload_id: str) -> None:
        """Discards the upload and its parts; an upload that is already gone is not an
        error."""
        ...

    async def sha256(self, key: str) -> str:
        """The hex SHA-256 of an object, read as a stream; FileNotFoundError if absent."""
        ...

    async def download(self, key: str, destination: Path) -> None:
        """Copies the object to a local file, streaming; raises FileNotFoundError if absent."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> list[DeleteFailure]:
        """Deletes the objects in one batch; a key that is already gone counts as deleted."""
        ...

    async def abort_stale_uploads(
        self, started_before: datetime, *, keep: Collection[str] = ()
    ) -> int:
        """Aborts the multipart uploads started before the given time, except those whose
        upload id is in ``keep`` (uploads that may still be continued); returns how many."""
        ...


__all__ = [
    "MAX_PARTS",
    "MIN_PART_BYTES",
    "DeleteFailure",
    "ObjectStore",
    "StorageUnavailable",
    "StoredPart",
]
