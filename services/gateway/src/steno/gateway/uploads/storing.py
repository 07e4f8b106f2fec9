"""The second step of an upload: its audio into the object store, and what is undone when
the upload cannot go on.

A refused upload (too large, over its tenant's quota, or with the disk full) leaves nothing
behind. One that
breaks (the client went away, stalled, or the store or database failed) leaves nothing
either, unless it is resumable: then its stored parts stay for a later stream to continue
from, and the janitor discards those nobody continues.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable

from steno.common.errors import DependencyUnavailable
from steno.common.storage import DeleteFailure, ObjectStore
from steno.gateway.uploads.multipart import MultipartWriter
from steno.gateway.uploads.refusals import OVER_LIMIT, UploadTakenOver

log = logging.getLogger(__name__)


async def store_audio(
    writer: MultipartWriter, audio: AsyncIterable[bytes], *, resumable: bool
) -> None:
    """Writes every chunk of ``audio`` into the writer's upload (not yet completed)."""
    try:
        async for chunk in audio:
            await writer.write(chunk)
    except OVER_LIMIT:
        await writer.abort()
        raise
    except UploadTakenOver:
        raise  # the parts are the other stream's now
    except BaseException:
        # Also on cancellation: a client that goes away leaves nothing behind, or, if the
        # upload can be continued, what it has stored.
        await put_aside(writer, resumable=resumable)
        raise


async def put_aside(writer: MultipartWriter, *, resumable: bool) -> None:
    """Stops an upload that cannot go on: keeps its parts if it is resumable, else discards
    it."""
    if resumable:
        await writer.pause()
    else:
        await writer.abort()


async def abort_quietly(store: ObjectStore, key: str, upload_id: str) -> None:
    """Aborts a multipart upload nobody will continue; logs, never raises."""
    try:
        await store.abort_upload(key, upload_id)
    except DependencyUnavailable as exc:
        log.warning(
            "could not abort an abandoned upload",
            extra={"key": key, "upload_id": upload_id, "error": str(exc)},
        )


async def discard(store: ObjectStore, key: str) -> None:
    """Deletes the object of an upload that did not become a job; logs, never raises."""
    try:
        failures = await store.delete_many([key])
    except DependencyUnavailable as exc:
        failures = [DeleteFailure(key, str(exc))]
    for failure in failures:
        log.error(
            "could not delete the object of a failed upload",
            extra={"key": failure.key, "reason": failure.reason},
        )
