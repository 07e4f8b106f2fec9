"""The retention sweep: delete the audio of ended jobs whose retention ran out.

Jobs are taken in batches ordered by id; each batch is one bulk delete in the object store,
then one update stamping ``audio_delete_time`` on the jobs whose audio is gone. An object
that is already missing counts as deleted, so a second sweep, or one that races another,
does no harm.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from steno.common.errors import DependencyUnavailable
from steno.common.jobs import JobRepository
from steno.common.storage import ObjectStore

log = logging.getLogger(__name__)

# At most this many errors are kept in the summary; the count is always exact.
MAX_REPORTED_ERRORS = 20


@dataclass
class SweepSummary:
    scanned: int = 0
    deleted: int = 0
    failed: int = 0
    bytes_freed: int = 0
    aborted_uploads: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def record_failure(self, message: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(message)


async def sweep_expired_audio(
    jobs: JobRepository, store: ObjectStore, *, now: datetime, batch_size: int
) -> SweepSummary:
    """Sweeps every expired job; if the database or the store goes away part way, the
    summary still counts what was done and records the failure."""
    summary = SweepSummary()
    try:
        await _sweep(jobs, store, now=now, batch_size=batch_size, summary=summary)
    except DependencyUnavailable as exc:
        log.error("retention sweep stopped", extra={"error": str(exc)})
        summary.record_failure(f"sweep stopped: {exc}")
    return summary


async def _sweep(
    jobs: JobRepository,
    store: ObjectStore,
    *,
    now: datetime,
    batch_size: int,
    summary: SweepSummary,
) -> None:
    after = None
    while batch := await jobs.audio_expired(now, after=after, limit=batch_size):
        after = batch[-1].job_id
        summary.scanned += len(batch)
        failures = {f.key: f.reason for f in await store.delete_many([j.object_key for j in batch])}
        deleted = [job for job in batch if job.object_key not in failures]
        await jobs.mark_audio_deleted([job.job_id for job in deleted], now)
        summary.deleted += len(deleted)
        summary.bytes_freed += sum(job.size_bytes for job in deleted)
        for job in batch:
            if job.object_key in failures:
                summary.record_failure(f"job {job.job_id}: {failures[job.object_key]}")
        log.info("retention batch swept", extra={"deleted": len(deleted), "failed": len(failures)})
