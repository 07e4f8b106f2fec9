"""The retention sweep: delete the audio of ended jobs whose retention ran out.

The janitor runs it on a schedule and AdminService.RunCleanup on demand, so it lives here.
Jobs are taken in batches ordered by id; each batch is one bulk delete in the object store,
then one update stamping ``audio_delete_time`` on the jobs whose audio is gone. An object
that is already missing counts as deleted, and only the sweep whose update stamps a job
counts it, so two sweeps racing each other neither fail nor count a job twice.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from steno.common.errors import DependencyUnavailable
from steno.common.jobs import AudioExpiry, JobRepository
from steno.common.storage import ObjectStore

log = logging.getLogger(__name__)

# At most this many failures and job ids are kept in the summary; the counts are always exact.
MAX_REPORTED_ERRORS = 20
MAX_REPORTED_JOB_IDS = 1000


@dataclass(frozen=True)
class SweepFailure:
    reason: str
    job_id: str = ""


@dataclass
class SweepSummary:
    scanned: int = 0
    deleted: int = 0
    failed: int = 0
    bytes_freed: int = 0
    aborted_uploads: int = 0
    failures: list[SweepFailure] = field(default_factory=list)
    # The jobs deleted (or, in a dry run, that would be), up to MAX_REPORTED_JOB_IDS.
    job_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def errors(self) -> list[str]:
        return [f"job {f.job_id}: {f.reason}" if f.job_id else f.reason for f in self.failures]

    def as_dict(self) -> dict[str, Any]:
        summary = asdict(self)
        del summary["failures"], summary["job_ids"]
        return {**summary, "errors": self.errors}

    def record_failure(self, reason: str, *, job_id: str = "") -> None:
        self.failed += 1
        if len(self.failures) < MAX_REPORTED_ERRORS:
            self.failures.append(SweepFailure(reason, job_id))

    def record_deleted(self, job_ids: list[str], size_bytes: int) -> None:
        self.deleted += len(job_ids)
        self.bytes_freed += size_bytes
        room = MAX_REPORTED_JOB_IDS - len(self.job_ids)
        self.job_ids.extend(job_ids[: max(room, 0)])


async def sweep_expired_audio(
    jobs: JobRepository,
    store: ObjectStore,
    *,
    now: datetime,
    batch_size: int,
    expiry: AudioExpiry | None = None,
    dry_run: bool = False,
) -> SweepSummary:
    """Sweeps every job ``expiry`` covers (by default, every expired job at ``now``); a dry run
    reports what it would delete and changes nothing. If the database or the store goes
    away part way, the summary still counts what was done and records the failure."""
    summary = SweepSummary()
    try:
        await _sweep(jobs, store, expiry or AudioExpiry(now), batch_size, dry_run, summary)
    except DependencyUnavailable as exc:
        log.error("retention sweep stopped", extra={"error": str(exc)})
        summary.record_failure(f"sweep stopped: {exc}")
    return summary


async def _sweep(
    jobs: JobRepository,
    store: ObjectStore,
    expiry: AudioExpiry,
    batch_size: int,
    dry_run: bool,
    summary: SweepSummary,
) -> None:
    after = None
    while batch := await jobs.audio_expired(expiry, after=after, limit=batch_size):
        after = batch[-1].job_id
        summary.scanned += len(batch)
        if dry_run:
            summary.record_deleted([str(j.job_id) for j in batch], sum(j.size_bytes for j in batch))
            continue
        failures = {f.key: f.reason for f in await store.delete_many([j.object_key for j in batch])}
        gone = [job for job in batch if job.object_key not in failures]
        stamped = set(await jobs.mark_audio_deleted([job.job_id for job in gone], expiry.now))
        ours = [job for job in gone if job.job_id in stamped]
        summary.record_deleted([str(j.job_id) for j in ours], sum(j.size_bytes for j in ours))
        for job in batch:
            if job.object_key in failures:
                summary.record_failure(failures[job.object_key], job_id=str(job.job_id))
        log.info("retention batch swept", extra={"deleted": len(ours), "failed": len(failures)})
