"""Discards uploads nobody finished, so their parts do not take up storage forever.

Two kinds: recorded uploads (with a request_id) that no stream has continued for
``STENO_STALE_UPLOAD_HOURS``, and multipart uploads that no record names, started that long
ago by a gateway that died mid-upload.
"""

from __future__ import annotations

import logging
from datetime import datetime

from steno.common.errors import DependencyUnavailable
from steno.common.jobs import JobRepository
from steno.common.partial_uploads import PartialUpload, PartialUploadRepository
from steno.common.storage import ObjectStore
from steno.common.sweep import SweepSummary

log = logging.getLogger(__name__)


async def discard_abandoned_uploads(
    partials: PartialUploadRepository,
    jobs: JobRepository,
    store: ObjectStore,
    *,
    idle_since: datetime,
    batch_size: int,
    summary: SweepSummary,
) -> None:
    """Discards the uploads idle since before ``idle_since``, counting them in ``summary``;
    a database or store outage is recorded there as a failure."""
    try:
        while stale := await partials.list_stale(idle_since, limit=batch_size):
            for upload in stale:
                if await _discard(partials, jobs, store, upload, summary):
                    summary.aborted_uploads += 1
        summary.aborted_uploads += await store.abort_stale_uploads(
            idle_since, keep=await partials.store_upload_ids()
        )
    except DependencyUnavailable as exc:
        log.error("abandoned uploads not cleaned up", extra={"error": str(exc)})
        summary.record_failure(f"abandoned uploads not cleaned up: {exc}")


async def _discard(
    partials: PartialUploadRepository,
    jobs: JobRepository,
    store: ObjectStore,
    upload: PartialUpload,
    summary: SweepSummary,
) -> bool:
    """Forgets one stale upload, then aborts its parts; False if a stream continued it
    meanwhile. The record goes first: a stream continuing it from then on is told to start
    again rather than writing into an aborted upload."""
    if not await partials.delete(upload.tenant, upload.request_id, stream=upload.stream):
        return False
    await store.abort_upload(upload.object_key, upload.store_upload_id)
    if await jobs.get(upload.job_id) is None:
        # The upload may have been completed but never recorded as a job (the gateway
        # failed in between, and the client never came back): its object is nobody's.
        for failure in await store.delete_many([upload.object_key]):
            summary.record_failure(f"upload {upload.request_id!r}: {failure.reason}")
    log.info(
        "abandoned upload discarded",
        extra={
            "tenant": upload.tenant,
            "request_id": upload.request_id,
            "committed_bytes": upload.committed_bytes,
        },
    )
    return True
