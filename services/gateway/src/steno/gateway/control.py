"""Cancelling and deleting a job at a client's request."""

from __future__ import annotations

import logging
import uuid

from steno.common.clock import Clock, utc_now
from steno.common.errors import StorageUnavailable
from steno.common.jobs import Job, JobRepository
from steno.common.storage import ObjectStore

log = logging.getLogger(__name__)

# Conditional writes a cancel tries before giving up: each lost race means the job moved on
# (QUEUED → PROCESSING, or to its end), and a job has few moves to make.
CANCEL_ATTEMPTS = 3


class JobNotFound(LookupError):
    """The job does not exist (any more)."""

    def __init__(self, job_id: uuid.UUID, reason: str = "") -> None:
        super().__init__(f"no job {job_id}" + (f": {reason}" if reason else ""))
        self.job_id = job_id


class NothingToCancel(Exception):
    """The job has already ended."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.job_id} is {job.state.value}; nothing to cancel")
        self.job_id = job.job_id
        self.state = job.state.value


class CancelRaced(Exception):
    """The job kept changing under the cancel."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.job_id} kept changing while being cancelled; try again")
        self.job_id = job.job_id


async def cancel_job(jobs: JobRepository, job: Job, *, clock: Clock = utc_now) -> Job:
    """Ends a QUEUED or PROCESSING job as CANCELLED and returns it.

    The write is conditional on the state just read, so a cancel and a worker's own writes
    never overwrite each other: if the job moved on meanwhile, it is read again and the
    cancel applies to what it is now. A worker transcribing the job finds out on its next
    write and stops; a request still queued for it finds a job with nothing to do.
    """
    for _ in range(CANCEL_ATTEMPTS):
        if job.state.is_terminal:
            raise NothingToCancel(job)
        expected = job.state
        job.cancel(clock())
        if await jobs.update(job, expected=expected):
            log.info(
                "job cancelled",
                extra={"job_id": str(job.job_id), "tenant": job.tenant, "state": job.state.value},
            )
            return job
        current = await jobs.get(job.job_id, tenant=job.tenant)
        if current is None:
            raise JobNotFound(job.job_id, "it was deleted")
        job = current
    raise CancelRaced(job)


async def delete_job(jobs: JobRepository, store: ObjectStore, job: Job) -> None:
    """Deletes the job's audio, then the job. If the audio cannot be deleted the job stays,
    so that the audio is never left behind without a record pointing at it; the client can
    simply try again."""
    failures = await store.delete_many([job.object_key])
    if failures:
        raise StorageUnavailable(
            f"could not delete the audio of job {job.job_id} ({failures[0].reason}); "
            "the job was kept"
        )
    await jobs.delete(job.job_id)
    log.info(
        "job deleted",
        extra={"job_id": str(job.job_id), "tenant": job.tenant, "state": job.state.value},
    )
