"""Leases: one worker at a time owns a PROCESSING job; an abandoned job is taken over, a
cancelled one is let go, and only the owner's result is kept."""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from steno.common.broker import GiveUp, RetryLater, TranscriptionRequest
from steno.common.jobs import Job, JobState, Transcript
from steno.common.lexicons import Lexicon
from steno.transcriber.engines.port import TranscriptionOptions
from steno.transcriber.pipeline import JobProcessor
from tests.fakes import (
    T0,
    FakeEngine,
    FakeJobRepository,
    FakeLexiconRepository,
    FakeObjectStore,
    make_job,
    make_lexicon,
)

AUDIO = b"RIFF\x24\x08\x00\x00WAVEfmt "
LEASE = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class BlockingEngine(FakeEngine):
    """Runs until ``release`` is set, or until cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.cancelled = False

    async def transcribe(self, audio: Path, options: TranscriptionOptions) -> Transcript:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return await super().transcribe(audio, options)


def processor(jobs: FakeJobRepository, engine: FakeEngine, clock: Clock, job: Job) -> JobProcessor:
    return JobProcessor(
        jobs,
        FakeLexiconRepository(),
        FakeObjectStore({job.object_key: AUDIO}),
        {"local": engine},
        lease_seconds=LEASE,
        progress_interval=0.01,
        clock=clock,
    )


def request(job: Job) -> TranscriptionRequest:
    return TranscriptionRequest(job.job_id, job.tenant)


async def test_a_claim_leases_the_job_to_its_worker() -> None:
    job, clock, engine = make_job(), Clock(), BlockingEngine()
    jobs = FakeJobRepository([job])
    worker = processor(jobs, engine, clock, job)
    handling = asyncio.create_task(worker.handle(request(job)))
    await engine.started.wait()

    stored = jobs.stored(job.job_id)
    assert stored.state is JobState.PROCESSING
    assert stored.lease_owner == worker.worker_id
    assert stored.lease_expire_time == T0 + timedelta(seconds=LEASE)
    engine.release.set()
    await handling
    done = jobs.stored(job.job_id)
    assert done.state is JobState.COMPLETED
    assert (done.lease_owner, done.lease_expire_time) == ("", None)


async def test_a_job_leased_to_a_live_worker_comes_back_after_its_lease() -> None:
    job = make_job(
        state=JobState.PROCESSING,
        attempts=1,
        lease_owner="other",
        lease_expire_time=T0 + timedelta(seconds=20),
    )
    jobs, clock, engine = FakeJobRepository([job]), Clock(), FakeEngine()

    with pytest.raises(RetryLater) as retry:
        await processor(jobs, engine, clock, job).handle(request(job))

    assert 20 <= retry.value.delay <= 21
    assert engine.calls == 0
    assert jobs.stored(job.job_id).lease_owner == "other"


async def test_a_job_whose_lease_ran_out_is_taken_over_and_finished_once() -> None:
    job = make_job(
        state=JobState.PROCESSING,
        attempts=1,
        lease_owner="dead-worker",
        lease_expire_time=T0 - timedelta(seconds=1),
    )
    jobs, clock, engine = FakeJobRepository([job]), Clock(), FakeEngine()

    await processor(jobs, engine, clock, job).handle(request(job))

    done = jobs.stored(job.job_id)
    assert done.state is JobState.COMPLETED
    assert done.attempts == 2
    assert done.segments == engine.transcript.segments, "one worker's segments, once"


async def test_the_old_workers_late_result_is_refused() -> None:
    """A worker whose lease ran out while it ran (it stalled) finds another owner at the
    end: its write is refused and the other worker's result stands."""
    job, clock, engine = make_job(), Clock(), BlockingEngine()
    jobs = FakeJobRepository([job])
    slow = processor(jobs, engine, clock, job)
    handling = asyncio.create_task(slow.handle(request(job)))
    await engine.started.wait()
    # Its lease is taken over by another worker that completes the job.
    stolen = copy.deepcopy(jobs.stored(job.job_id))
    stolen.take_over(T0, owner="fast", lease_until=T0 + timedelta(seconds=LEASE))
    assert await jobs.update(stolen, expected=JobState.PROCESSING, owner=slow.worker_id)

    await handling

    assert engine.cancelled, "the heartbeat noticed and stopped the engine"
    assert jobs.stored(job.job_id).lease_owner == "fast"
    assert jobs.stored(job.job_id).state is JobState.PROCESSING


async def test_a_cancelled_job_stops_its_engine_and_stays_cancelled() -> None:
    job, clock, engine = make_job(), Clock(), BlockingEngine()
    jobs = FakeJobRepository([job])
    handling = asyncio.create_task(processor(jobs, engine, clock, job).handle(request(job)))
    await engine.started.wait()

    cancelled = copy.deepcopy(jobs.stored(job.job_id))
    cancelled.cancel(T0)
    assert await jobs.update(cancelled, expected=JobState.PROCESSING)
    async with asyncio.timeout(5):
        await handling  # returns: the request is done with

    assert engine.cancelled
    assert jobs.stored(job.job_id).state is JobState.CANCELLED


async def test_the_heartbeat_renews_the_lease() -> None:
    job, clock, engine = make_job(), Clock(), BlockingEngine()
    jobs = FakeJobRepository([job])
    handling = asyncio.create_task(processor(jobs, engine, clock, job).handle(request(job)))
    await engine.started.wait()
    clock.now = T0 + timedelta(seconds=25)

    async with asyncio.timeout(5):
        while jobs.stored(job.job_id).lease_expire_time != clock.now + timedelta(seconds=LEASE):
            await asyncio.sleep(0.01)
    engine.release.set()
    await handling
    assert jobs.stored(job.job_id).state is JobState.COMPLETED


async def test_a_job_this_worker_lost_track_of_is_taken_back_at_once() -> None:
    """Its own earlier attempt could not store the outcome: no one else to wait for."""
    job = make_job()
    jobs, clock, engine = FakeJobRepository([job]), Clock(), FakeEngine()
    worker = processor(jobs, engine, clock, job)
    stranded = copy.deepcopy(jobs.stored(job.job_id))
    stranded.start(T0, owner=worker.worker_id, lease_until=T0 + timedelta(seconds=LEASE))
    assert await jobs.update(stranded, expected=JobState.QUEUED)

    await worker.handle(request(job))

    assert jobs.stored(job.job_id).state is JobState.COMPLETED
    assert jobs.stored(job.job_id).attempts == 2


async def test_an_abandoned_job_out_of_attempts_is_given_up_on() -> None:
    """Every worker that took it died: no further worker gets it, the request is
    dead-lettered and the job FAILED."""
    job = make_job(
        state=JobState.PROCESSING,
        attempts=5,
        lease_owner="dead-again",
        lease_expire_time=T0 - timedelta(seconds=1),
    )
    jobs, clock, engine = FakeJobRepository([job]), Clock(), FakeEngine()

    with pytest.raises(GiveUp, match="stopped 5 times"):
        await processor(jobs, engine, clock, job).handle(request(job))

    failed = jobs.stored(job.job_id)
    assert failed.state is JobState.FAILED
    assert failed.error is not None and failed.error.code == "ABORTED"
    assert engine.calls == 0


async def test_a_second_delivery_of_a_running_job_is_dropped_on_the_same_worker() -> None:
    job, clock, engine = make_job(), Clock(), BlockingEngine()
    jobs = FakeJobRepository([job])
    worker = processor(jobs, engine, clock, job)
    first = asyncio.create_task(worker.handle(request(job)))
    await engine.started.wait()

    await worker.handle(request(job))  # returns at once: the first delivery settles it

    engine.release.set()
    await first
    assert engine.calls == 1
    assert jobs.stored(job.job_id).attempts == 1


async def test_the_lease_is_renewed_before_the_engine_runs_too() -> None:
    """A job cancelled while its worker is still fetching what it needs (a slow download or
    lexicon) is let go then, before the engine ever runs."""
    lexicon = make_lexicon()
    job = make_job(lexicon_id=str(lexicon.lexicon_id))
    fetching, never = asyncio.Event(), asyncio.Event()

    class SlowLexicons(FakeLexiconRepository):
        async def get(self, lexicon_id: uuid.UUID, tenant: str) -> Lexicon | None:
            fetching.set()
            await never.wait()
            return None

    jobs, clock, engine = FakeJobRepository([job]), Clock(), FakeEngine()
    worker = JobProcessor(
        jobs,
        SlowLexicons([lexicon]),
        FakeObjectStore({job.object_key: AUDIO}),
        {"local": engine},
        lease_seconds=LEASE,
        progress_interval=0.01,
        clock=clock,
    )
    handling = asyncio.create_task(worker.handle(request(job)))
    await fetching.wait()
    cancelled = copy.deepcopy(jobs.stored(job.job_id))
    cancelled.cancel(T0)
    assert await jobs.update(cancelled, expected=JobState.PROCESSING)

    async with asyncio.timeout(5):
        await handling
    assert engine.calls == 0
    assert jobs.stored(job.job_id).state is JobState.CANCELLED
