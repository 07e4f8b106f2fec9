"""The job pipeline: one TranscriptionRequest in, one job in a terminal state out.

Steps: load the job, claim it (QUEUED → PROCESSING, once, however often the request is
delivered), download the audio to a temporary file, run the engine, store the transcript
and mark the job COMPLETED, or FAILED with a reason a person understands. The temporary
file is removed in every case. Returning means the outcome is committed and the request
may be acknowledged; raising means it must be delivered again. A worker cancelled while the
engine runs, or one that cannot reach the object store, hands the job back to QUEUED first.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import Counter, Histogram

from steno.common.broker import FailurePause, TranscriptionRequest
from steno.common.engine import Engine, EngineError
from steno.common.errors import DependencyUnavailable
from steno.common.jobs import Job, JobError, JobRepository, JobState, Transcript
from steno.common.storage import ObjectStore

log = logging.getLogger(__name__)

JOBS_FINISHED = Counter("steno_jobs_finished_total", "Jobs a worker finished", ["state"])
TRANSCRIBE_SECONDS = Histogram(
    "steno_transcribe_seconds", "Engine time per job", buckets=(1, 5, 15, 60, 300, 1200, 3600)
)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class JobProcessor:
    def __init__(
        self,
        jobs: JobRepository,
        store: ObjectStore,
        engines: Mapping[str, Engine],
        *,
        clock: Clock = utc_now,
        new_pause: Callable[[], FailurePause] = FailurePause,
        commit_attempts: int = 5,
    ) -> None:
        self._jobs = jobs
        self._store = store
        self._engines = engines
        self._clock = clock
        self._new_pause = new_pause
        self._commit_attempts = commit_attempts

    async def handle(self, request: TranscriptionRequest) -> None:
        job = await self._claim(request)
        if job is None:
            return
        context = {"job_id": str(job.job_id), "tenant": job.tenant}
        log.info(
            "job started", extra={**context, "state": job.state.value, "attempt": job.attempts}
        )
        try:
            transcript = await self._transcribe(job)
        except (asyncio.CancelledError, DependencyUnavailable):
            # The worker is stopping, or the store is down rather than the audio bad: hand
            # the job back, so that the request, delivered again, finds it QUEUED.
            await self._hand_back(job)
            raise
        except EngineError as exc:
            await self._fail(job, JobError(exc.code, str(exc)))
        except FileNotFoundError:
            await self._fail(
                job,
                JobError(
                    "NOT_FOUND", "the uploaded audio is no longer in storage; upload it again"
                ),
            )
        except Exception as exc:
            log.exception("job crashed", extra=context)
            await self._fail(job, JobError("INTERNAL", f"transcription failed unexpectedly: {exc}"))
        else:
            job.complete(transcript, self._clock())
            await self._finish(job)

    async def _claim(self, request: TranscriptionRequest) -> Job | None:
        """The job, now PROCESSING on this worker; None if there is nothing to do."""
        job = await self._jobs.get(request.job_id)
        if job is None:
            log.warning("request for an unknown job dropped", extra={"job_id": str(request.job_id)})
            return None
        if job.state is not JobState.QUEUED:
            log.info(
                "duplicate request ignored",
                extra={"job_id": str(job.job_id), "tenant": job.tenant, "state": job.state.value},
            )
            return None
        job.start(self._clock())
        if not await self._jobs.update(job, expected=JobState.QUEUED):
            log.info("job claimed by another worker", extra={"job_id": str(job.job_id)})
            return None
        return job

    async def _transcribe(self, job: Job) -> Transcript:
        engine = self._engines.get(job.engine)
        if engine is None:
            raise EngineError(
                f"engine {job.engine!r} is not configured on this transcriber; "
                f"available: {', '.join(sorted(self._engines))}",
                code="FAILED_PRECONDITION",
            )
        with tempfile.TemporaryDirectory(prefix="steno-") as workdir:
            audio = Path(workdir) / "audio"
            await self._store.download(job.object_key, audio)
            with TRANSCRIBE_SECONDS.time():
                return await engine.transcribe(audio, language=job.language or None)

    async def _fail(self, job: Job, error: JobError) -> None:
        job.fail(error, self._clock())
        await self._finish(job)

    async def _hand_back(self, job: Job) -> None:
        job.release()
        await self._jobs.update(job, expected=JobState.PROCESSING)
        log.info(
            "job handed back",
            extra={"job_id": str(job.job_id), "tenant": job.tenant, "state": job.state.value},
        )

    async def _finish(self, job: Job) -> None:
        """Commits the terminal state, retrying through a short database outage (the result
        exists only in memory); raises, so the request is delivered again, if it cannot."""
        pause = self._new_pause()
        for attempt in range(1, self._commit_attempts + 1):
            try:
                written = await self._jobs.update(job, expected=JobState.PROCESSING)
                break
            except DependencyUnavailable:
                if attempt == self._commit_attempts:
                    raise
                log.warning(
                    "could not store the result; retrying",
                    extra={"job_id": str(job.job_id), "attempt": attempt},
                )
                await pause.after_failure()
        if not written:
            log.warning(
                "job changed under this worker; result dropped", extra={"job_id": str(job.job_id)}
            )
            return
        JOBS_FINISHED.labels(job.state.value).inc()
        log.info(
            "job finished",
            extra={
                "job_id": str(job.job_id),
                "tenant": job.tenant,
                "state": job.state.value,
                **({"error": job.error.message} if job.error else {}),
            },
        )
