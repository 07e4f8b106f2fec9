"""Uploads that have not finished: what lets a broken upload continue, and their repository.

An upload with a ``request_id`` is recorded from its first byte: the multipart upload its
audio goes into, and every part stored so far. A client whose stream broke asks how many
bytes were committed (always a whole number of parts) and sends the rest from there, to any
gateway. Only one stream writes an upload at a time: a stream that starts or continues it
takes it over, and the writes of the stream it replaced are refused from then on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from steno.common.storage import StoredPart


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """What the client said about the audio, already validated."""

    tenant: str
    filename: str
    language: str
    lexicon_id: str
    engine: str
    audio_retention: timedelta
    labels: dict[str, str] = field(default_factory=dict)
    # Idempotency key: the same key with the same audio gives back the same job; it also
    # names an unfinished upload that a broken stream continues.
    request_id: str = ""
    # Where the job's end is announced, already checked (steno.common.webhooks.addresses).
    webhook_url: str = ""


@dataclass(slots=True)
class PartialUpload:
    """An upload whose bytes have not all arrived yet."""

    request: UploadRequest
    # The job the upload becomes, and the object its audio goes to.
    job_id: uuid.UUID
    object_key: str
    # The object store's multipart upload the parts belong to.
    store_upload_id: str
    # Recognised from the first bytes, which a continuing stream does not send again.
    content_type: str
    # The stream writing the upload now; every other stream's writes are refused.
    stream: str
    create_time: datetime
    update_time: datetime
    parts: list[StoredPart] = field(default_factory=list)
    # The number of the next part the stream that has the upload stores. A stream that takes
    # the upload over numbers its parts from one past it: the stream it replaced may still be
    # storing that part, and must not overwrite one of the new stream's.
    next_part: int = 1

    @property
    def tenant(self) -> str:
        return self.request.tenant

    @property
    def request_id(self) -> str:
        return self.request.request_id

    @property
    def committed_bytes(self) -> int:
        """Bytes from the start of the file that are stored: where a client continues."""
        return sum(part.size for part in self.parts)


class PartialUploadRepository(Protocol):
    """Unfinished uploads, one per tenant and request_id."""

    async def get(self, tenant: str, request_id: str) -> PartialUpload | None: ...

    async def save(self, upload: PartialUpload) -> None:
        """Records a started upload, replacing any earlier one with the same request_id
        (a client that starts again from the first byte)."""
        ...

    async def take_over(self, upload: PartialUpload, *, stream: str, now: datetime) -> bool:
        """Hands the upload to ``stream`` if it is still as read in ``upload``: the same
        stream has it and has recorded nothing since (the same ``next_part``, whose
        successor becomes the new stream's first part number); False otherwise (or if it
        is gone)."""
        ...

    async def record_parts(
        self, tenant: str, request_id: str, *, stream: str, parts: list[StoredPart], now: datetime
    ) -> bool:
        """Stores the upload's parts (all of them, in order) if ``stream`` still has it, the
        next part number following the last of them; False if another stream took it over
        or it is gone."""
        ...

    async def delete(self, tenant: str, request_id: str, *, stream: str | None = None) -> bool:
        """Forgets the upload (if ``stream`` is given, only while that stream has it);
        returns whether there was one to forget."""
        ...

    async def list_stale(self, updated_before: datetime, *, limit: int) -> list[PartialUpload]:
        """Uploads no stream has written since ``updated_before``, oldest first."""
        ...

    async def store_upload_ids(self) -> set[str]:
        """The multipart upload ids of every recorded upload (the janitor keeps those)."""
        ...
