"""The job pipeline: one TranscriptionRequest in, one job in a terminal state out.

Steps: load the job, claim it (QUEUED → PROCESSING, once, however often the request is
delivered), load its lexicon, download the audio to a temporary file, run the engine (its
progress written as it goes), apply the lexicon, store the transcript and mark the job
COMPLETED, or FAILED with a reason a person understands. The temporary file is removed in
every case. Returning means the outcome is committed and the request may be acknowledged;
raising means it must be delivered again. A worker cancelled while the engine runs, or one
that cannot reach the object store or database, hands the job back to QUEUED first; an
engine that is only temporarily unavailable gets the job back later through the broker
(RetryLater), until the job has used its attempts; a job whose audio the scratch disk has
no room for does too, however often. All of it runs under the job's lease (see
:mod:`.leasing`), in a "transcribe job" span with one child span per step.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import tempfile
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from prometheus_client import Counter, Histogram

from steno.common.broker import (
    DeadLetter,
    FailurePause,
    GiveUp,
    RetryLater,
    TranscriptionRequest,
)
from steno.common.clock import Clock, utc_now
from steno.common.disk_space import Disk, StorageFull
from steno.common.errors import DependencyUnavailable
from steno.common.faults import TRANSCRIBER_BEFORE_ENGINE, Faults
from steno.common.jobs import Job, JobError, JobRepository, JobState, PostProcessing, Transcript
from steno.common.lexicons import Lexicon, LexiconRepository
from steno.common.logs import Stopwatch
from steno.common.retry_policy import RetryPolicy
from steno.common.storage import ObjectStore
from steno.common.tracing import tracer
from steno.transcriber.engines.port import (
    Engine,
    EngineError,
    EngineUnavailable,
    TranscriptionOptions,
)
from steno.transcriber.job_span import record_outcome
from steno.transcriber.leasing import LeaseLost, Leases, Progress
from steno.transcriber.postprocess import post_process
from steno.transcriber.rewriting import vocabulary

log = logging.getLogger(__name__)

JOBS_FINISHED = Counter("steno_jobs_finished_total", "Jobs a worker finished", ["state"])
TRANSCRIBE_SECONDS = Histogram(
    "steno_transcribe_seconds", "Engine time per job", buckets=(1, 5, 15, 60, 300, 1200, 3600)
)

_T = TypeVar("_T")


class JobProcessor:
    def __init__(
        self,
        jobs: JobRepository,
        lexicons: LexiconRepository,
        store: ObjectStore,
        engines: Mapping[str, Engine],
        *,
        retry: RetryPolicy = RetryPolicy(),
        progress_interval: float = 2.0,
        lease_seconds: float = 60.0,
        clock: Clock = utc_now,
        new_pause: Callable[[], FailurePause] = FailurePause,
        commit_attempts: int = 5,
        scratch: Disk | None = None,
        faults: Faults | None = None,
    ) -> None:
        self._jobs = jobs
        self._faults = faults or Faults()
        self._lexicons = lexicons
        self._store = store
        self._engines = engines
        self._retry = retry
        # Who holds a job's lease: unique per processor, readable in the database.
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._leases = Leases(
            jobs, self.worker_id, timedelta(seconds=lease_seconds), progress_interval, clock
        )
        # The jobs this worker is running, each with the time it has been at it.
        self._running: dict[uuid.UUID, Stopwatch] = {}
        self._clock = clock
        self._new_pause = new_pause
        self._commit_attempts = commit_attempts
        # Where audio is downloaded to (the temporary directory), and its free space to keep.
        self._scratch = scratch or Disk("scratch", Path(tempfile.gettempdir()))

    async def handle(self, request: TranscriptionRequest) -> None:
        if request.job_id in self._running:
            # A second delivery of a job this worker is running: the first one's outcome
            # settles it.
            log.info("duplicate request for a running job", extra={"job_id": str(request.job_id)})
            return
        self._running[request.job_id] = Stopwatch()
        try:
            with tracer.start_as_current_span(
                "transcribe job", attributes={"steno.job_id": str(request.job_id)}
            ) as span:
                job = await self._claim(request)
                if job is not None:
                    span.set_attributes({"steno.tenant": job.tenant, "steno.engine": job.engine})
                    await self._run(job)
                    record_outcome(span, job)
        finally:
            del self._running[request.job_id]

    async def _run(self, job: Job) -> None:
        context = {"job_id": str(job.job_id), "tenant": job.tenant}
        log.info(
            "job started", extra={**context, "state": job.state.value, "attempt": job.attempts}
        )
        progress = Progress()
        try:
            transcript, post = await self._leases.hold(job, progress, self._work(job, progress))
        except (asyncio.CancelledError, DependencyUnavailable):
            # The worker is stopping, or the store is down rather than the audio bad: hand
            # the job back, so that the request, delivered again, finds it QUEUED.
            await self._hand_back(job)
            raise
        except StorageFull as exc:
            await self._put_off(job, str(exc))
        except EngineUnavailable as exc:
            await self._retry_later(
                job, f"the {job.engine} engine was unavailable ({exc})", "UNAVAILABLE",
                hint=exc.retry_after,
            )  # fmt: skip
        except LeaseLost:
            # Cancelled, deleted, or taken over: the job is someone else's now; the request
            # is done with.
            log.info("job no longer this worker's; transcription stopped", extra=context)
        except EngineNotHere as exc:
            # Another transcriber may run it: leave the job for one of them, a few times.
            await self._retry_later(job, str(exc), "FAILED_PRECONDITION")
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
            # The exception's text stays in the log: it may hold SQL or paths.
            message = f"transcription failed unexpectedly ({type(exc).__name__}); see the log"
            await self._fail(job, JobError("INTERNAL", message))
        else:
            job.complete(transcript, self._clock(), post)
            await self._finish(job)

    async def _post_process(
        self, job: Job, transcript: Transcript, lexicon: Lexicon | None
    ) -> PostProcessing:
        if job.lexicon_id and lexicon is None:
            return PostProcessing(
                warnings=[
                    f"lexicon {job.lexicon_id} was deleted before the job ran; "
                    "the text is the engine's own"
                ]
            )
        # Matching a large lexicon is CPU work: keep it off the event loop.
        return await asyncio.to_thread(post_process, transcript, lexicon)

    async def _claim(self, request: TranscriptionRequest) -> Job | None:
        """The job, now PROCESSING and leased to this worker; None if there is nothing to
        do. A job another worker holds a live lease on comes back after that lease would
        run out (RetryLater): its worker may have died, or may finish it first."""
        job = await self._jobs.get(request.job_id)
        if job is None:
            log.warning("request for an unknown job dropped", extra={"job_id": str(request.job_id)})
            return None
        if job.tenant != request.tenant:
            # Only a forged or corrupted message can name another tenant than its job's:
            # acting on it would run one tenant's job on another's say-so.
            log.warning(
                "request whose tenant is not its job's dropped",
                extra={"job_id": str(job.job_id), "tenant": request.tenant},
            )
            return None
        now = self._clock()
        context = {"job_id": str(job.job_id), "tenant": job.tenant, "state": job.state.value}
        if job.state is JobState.QUEUED:
            job.start(now, owner=self.worker_id, lease_until=self._leases.until(now))
            claimed = await self._jobs.update(job, expected=JobState.QUEUED)
        elif job.state is JobState.PROCESSING and (
            job.lease_expired(now) or self._lost_track_of(job)
        ):
            # Unless it was this worker's, the lease must still be out when the write lands.
            expired_by = None if self._lost_track_of(job) else now
            if job.attempts >= self._retry.max_attempts:
                await self._give_up_on(job, expired_by)
            previous = job.lease_owner or None
            job.take_over(now, owner=self.worker_id, lease_until=self._leases.until(now))
            claimed = await self._jobs.update(
                job, expected=JobState.PROCESSING, owner=previous, expired_by=expired_by
            )
            if claimed:
                log.warning("abandoned job taken over", extra={**context, "from": previous})
        elif job.state is JobState.PROCESSING:
            assert job.lease_expire_time is not None
            wait = (job.lease_expire_time - now).total_seconds() + self._leases.interval
            raise RetryLater(wait, f"job {job.job_id} is leased to {job.lease_owner}")
        else:
            log.info("duplicate request ignored", extra=context)
            return None
        if not claimed:
            log.info("job claimed by another worker", extra=context)
            return None
        return job

    async def _give_up_on(self, job: Job, expired_by: datetime | None) -> None:
        """An abandoned job that has used its attempts: every worker that took it stopped
        before finishing (it may crash the engine). FAILED, and its request dead-lettered
        rather than handed to yet another worker."""
        previous = job.lease_owner or None
        reason = f"its worker stopped {job.attempts} times before finishing it"
        job.fail(_gave_up(reason), self._clock())
        if await self._jobs.update(
            job, expected=JobState.PROCESSING, owner=previous, expired_by=expired_by
        ):
            JOBS_FINISHED.labels(job.state.value).inc()
        raise GiveUp(reason)

    async def give_up(self, letter: DeadLetter) -> None:
        """The queue gave up on the job's request (it kept failing, or kept killing its
        worker): FAILED with the queue's reason, unless it already ended."""
        job = await self._jobs.get(letter.request.job_id)
        if job is None or job.state.is_terminal:
            return
        state = job.state
        job.fail(_gave_up(f"it was {letter.reason}"), self._clock())
        if await self._jobs.update(job, expected=state):
            JOBS_FINISHED.labels(job.state.value).inc()
            log.error(
                "job dead-lettered",
                extra={"job_id": str(job.job_id), "tenant": job.tenant, "state": "FAILED"},
            )

    def _lost_track_of(self, job: Job) -> bool:
        """Leased to this worker, which is not running it (``handle`` lets one delivery of a
        job in at a time): an earlier attempt here could not store its outcome (the database
        was down), so there is no one to wait for."""
        return job.lease_owner == self.worker_id

    async def _lexicon(self, job: Job) -> Lexicon | None:
        """The job's lexicon as it is now: the version this job uses and records."""
        if not job.lexicon_id:
            return None
        return await self._lexicons.get(uuid.UUID(job.lexicon_id), job.tenant)

    async def _work(self, job: Job, progress: Progress) -> tuple[Transcript, PostProcessing]:
        """Everything between the claim and the outcome, all of it under the lease."""
        lexicon = await self._lexicon(job)
        transcript = await self._transcribe(job, lexicon, progress)
        with tracer.start_as_current_span("lexicon"):
            return transcript, await self._post_process(job, transcript, lexicon)

    async def _transcribe(
        self, job: Job, lexicon: Lexicon | None, progress: Progress
    ) -> Transcript:
        engine = self._engines.get(job.engine)
        if engine is None:
            raise EngineNotHere(
                f"no transcriber that took the job runs the {job.engine!r} engine "
                f"(this one runs: {', '.join(sorted(self._engines))}); set STENO_ENGINES"
            )
        self._scratch.check_room(job.size_bytes)
        with tempfile.TemporaryDirectory(prefix="steno-", dir=self._scratch.path) as workdir:
            audio = Path(workdir) / "audio"
            with tracer.start_as_current_span("download"):
                await self._store.download(job.object_key, audio)
            self._faults.hit(TRANSCRIBER_BEFORE_ENGINE, job.filename)
            options = TranscriptionOptions(
                language=job.language or None,
                vocabulary=vocabulary(lexicon.entries) if lexicon else (),
                on_progress=progress.report,
            )
            stopwatch = Stopwatch()
            with TRANSCRIBE_SECONDS.time(), tracer.start_as_current_span("transcribe"):
                transcript = await engine.transcribe(audio, options)
        log.info(
            "transcription finished",
            extra={
                "job_id": str(job.job_id),
                "engine": job.engine,
                "model": transcript.model,
                "audio_seconds": round(transcript.duration_seconds, 3),
                "duration_ms": stopwatch.elapsed_ms(),
            },
        )
        return transcript

    async def _retry_later(
        self, job: Job, reason: str, code: str, *, hint: float | None = None
    ) -> None:
        """Hands the job back to be tried again after a backoff, through the broker, or
        fails it with ``code`` once it has used its attempts."""
        if job.attempts >= self._retry.max_attempts:
            await self._fail(
                job,
                JobError(code, f"{reason}, on all {job.attempts} attempts; try again later"),
            )
            return
        delay = self._retry.delay(job.attempts, hint)
        await self._hand_back(job)
        raise RetryLater(delay, f"attempt {job.attempts}: {reason}")

    async def _put_off(self, job: Job, reason: str) -> None:
        """Hands the job back to be tried again after a backoff, however often: it is not
        the job's fault that this worker has no room for its audio."""
        await self._hand_back(job)
        raise RetryLater(self._retry.delay(job.attempts, None), f"attempt {job.attempts}: {reason}")

    async def _fail(self, job: Job, error: JobError) -> None:
        job.fail(error, self._clock())
        await self._finish(job)

    async def _hand_back(self, job: Job) -> None:
        """PROCESSING → QUEUED, riding out a short database outage: a job left PROCESSING
        would be taken for another worker's by every later delivery."""
        job.release()
        await self._write(job)
        log.info(
            "job handed back",
            extra={"job_id": str(job.job_id), "tenant": job.tenant, "state": job.state.value},
        )

    async def _finish(self, job: Job) -> None:
        """Commits the terminal state (the result exists only in memory)."""
        with tracer.start_as_current_span("commit"):
            written = await self._write(job)
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
                "duration_ms": self._running[job.job_id].elapsed_ms(),
            },
        )

    async def _write(self, job: Job) -> bool:
        """Writes the job over its PROCESSING row, retrying through a short database
        outage; raises, so the request is delivered again, if it cannot. False if the row
        is no longer PROCESSING."""
        pause = self._new_pause()
        for attempt in range(1, self._commit_attempts + 1):
            try:
                return await self._jobs.update(
                    job, expected=JobState.PROCESSING, owner=self.worker_id
                )
            except DependencyUnavailable:
                if attempt == self._commit_attempts:
                    raise
                log.warning(
                    "could not store the job; retrying",
                    extra={"job_id": str(job.job_id), "attempt": attempt},
                )
                await pause.after_failure()
        raise AssertionError("unreachable: the last attempt returns or raises")


def _gave_up(reason: str) -> JobError:
    return JobError(
        "ABORTED",
        f"Steno gave up on this job: {reason}; the audio may crash the engine, so check it, "
        "then upload it again",
    )


class EngineNotHere(Exception):
    """The job asks for an engine this transcriber does not run."""
