"""JobProcessor.handle: one request in, one job in a terminal state out, exactly once."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from steno.common.broker import FailurePause, TranscriptionRequest
from steno.common.engine import EngineError
from steno.common.errors import DatabaseUnavailable, StorageUnavailable
from steno.common.jobs import Job, JobError, JobState
from steno.transcriber.pipeline import JobProcessor
from tests.fakes import (
    T0,
    FakeEngine,
    FakeJobRepository,
    FakeLexiconRepository,
    FakeObjectStore,
    make_job,
    make_transcript,
)

AUDIO = b"RIFF\x24\x08\x00\x00WAVEfmt " + b"\x01\x02" * 50
STARTED = T0 + timedelta(minutes=1)
FINISHED = T0 + timedelta(minutes=2)


class StepClock:
    """Returns STARTED on the first call and FINISHED after that."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        return STARTED if self.calls == 1 else FINISHED


@dataclass
class World:
    job: Job
    jobs: FakeJobRepository
    store: FakeObjectStore
    engine: FakeEngine
    processor: JobProcessor
    pauses: list[float]

    def stored(self) -> Job:
        return self.jobs.stored(self.job.job_id)

    async def handle(self) -> None:
        await self.processor.handle(TranscriptionRequest(self.job.job_id, self.job.tenant))


def build(job: Job | None = None, *, engine: FakeEngine | None = None) -> World:
    job = job or make_job(language="en", audio_retention=timedelta(hours=3))
    jobs = FakeJobRepository([job])
    store = FakeObjectStore({job.object_key: AUDIO})
    engine = engine or FakeEngine()
    pauses: list[float] = []

    async def record(seconds: float) -> None:
        pauses.append(seconds)

    processor = JobProcessor(
        jobs,
        FakeLexiconRepository(),
        store,
        {engine.name: engine},
        clock=StepClock(),
        new_pause=lambda: FailurePause(sleep=record),
    )
    return World(job, jobs, store, engine, processor, pauses)


@pytest.fixture
def world() -> World:
    return build()


async def test_success_completes_the_job_with_the_transcript(world: World) -> None:
    await world.handle()

    job = world.stored()
    transcript = world.engine.transcript
    assert job.state is JobState.COMPLETED
    assert job.original_text == transcript.text
    assert job.segments == transcript.segments
    assert job.language == transcript.language
    assert job.duration_seconds == transcript.duration_seconds
    assert job.model == transcript.model
    assert job.progress == 1.0
    assert job.attempts == 1
    assert job.error is None
    assert job.start_time == STARTED
    assert job.complete_time == FINISHED
    assert job.audio_expire_time == FINISHED + timedelta(hours=3)
    assert job.audio_delete_time is None


async def test_engine_gets_the_stored_audio_and_requested_language(world: World) -> None:
    await world.handle()

    assert world.engine.calls == 1
    assert world.engine.audio_bytes == [AUDIO]
    assert world.engine.languages == ["en"]


async def test_blank_language_asks_the_engine_to_detect() -> None:
    world = build(make_job(language=""))
    await world.handle()
    assert world.engine.languages == [None]


async def test_claim_and_finish_are_conditional_writes(world: World) -> None:
    await world.handle()

    assert [(expected, written) for _, expected, written in world.jobs.updates] == [
        (JobState.QUEUED, True),
        (JobState.PROCESSING, True),
    ]


@pytest.mark.parametrize("state", [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED])
async def test_duplicate_request_does_not_run_the_engine_again(state: JobState) -> None:
    world = build(make_job(state=state, attempts=1, original_text="already done"))

    await world.handle()

    assert world.engine.calls == 0
    assert world.jobs.updates == []
    assert world.stored().state is state
    assert world.stored().original_text == "already done"


async def test_second_delivery_after_success_is_a_no_op(world: World) -> None:
    await world.handle()
    first = world.stored()

    await world.handle()

    assert world.engine.calls == 1
    assert world.stored() == first


async def test_job_claimed_by_another_worker_is_left_alone(world: World) -> None:
    """The claim lost the race: the stored job moved on between get() and update()."""
    real_get = world.jobs.get

    async def racing_get(job_id: uuid.UUID, tenant: str | None = None) -> Job | None:
        job = await real_get(job_id, tenant)
        world.jobs.stored(job_id).state = JobState.PROCESSING  # another worker claims it
        return job

    world.jobs.get = racing_get  # type: ignore[method-assign]

    await world.handle()

    assert world.engine.calls == 0
    assert world.jobs.updates == [(world.job.job_id, JobState.QUEUED, False)]


async def test_unknown_job_is_dropped(world: World) -> None:
    other = make_job()

    await world.processor.handle(TranscriptionRequest(other.job_id, other.tenant))

    assert world.engine.calls == 0
    assert world.jobs.updates == []
    assert world.stored().state is JobState.QUEUED


async def test_engine_error_fails_the_job_with_its_code_and_message() -> None:
    world = build(engine=FakeEngine(error=EngineError("no speech found", code="INVALID_ARGUMENT")))

    await world.handle()

    job = world.stored()
    assert job.state is JobState.FAILED
    assert job.error == JobError("INVALID_ARGUMENT", "no speech found")
    assert job.complete_time == FINISHED
    assert job.audio_expire_time == FINISHED + world.job.audio_retention
    assert job.original_text == ""


async def test_missing_audio_fails_the_job_not_found(world: World) -> None:
    world.store.objects.clear()

    await world.handle()

    job = world.stored()
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "NOT_FOUND"
    assert "upload it again" in job.error.message
    assert world.engine.calls == 0


async def test_unavailable_store_hands_the_job_back_for_a_later_delivery(world: World) -> None:
    world.store.download_error = StorageUnavailable("the object store is unreachable")

    with pytest.raises(StorageUnavailable):
        await world.handle()
    assert world.stored().state is JobState.QUEUED

    world.store.download_error = None
    await world.handle()
    assert world.stored().state is JobState.COMPLETED


async def test_unexpected_exception_fails_the_job_internal_without_raising() -> None:
    world = build(engine=FakeEngine(error=RuntimeError("segfault in decoder")))

    await world.handle()  # must not raise: the outcome is committed

    job = world.stored()
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "INTERNAL"
    assert "segfault in decoder" in job.error.message


async def test_unknown_engine_fails_the_job_failed_precondition() -> None:
    world = build(make_job(engine="openai"))

    await world.handle()

    job = world.stored()
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "FAILED_PRECONDITION"
    assert "'openai'" in job.error.message and "local" in job.error.message
    assert world.engine.calls == 0


async def test_job_is_run_by_the_engine_it_asked_for() -> None:
    local = FakeEngine(transcript=make_transcript(model="tiny.en"))
    openai = FakeEngine(transcript=make_transcript(model="whisper-1"), engine_name="openai")
    job = make_job(engine="openai")
    jobs = FakeJobRepository([job])
    store = FakeObjectStore({job.object_key: AUDIO})
    processor = JobProcessor(jobs, store, {"local": local, "openai": openai})

    await processor.handle(TranscriptionRequest(job.job_id, job.tenant))

    assert (local.calls, openai.calls) == (0, 1)
    assert jobs.stored(job.job_id).model == "whisper-1"


@pytest.mark.parametrize(
    "error",
    [None, EngineError("bad audio"), RuntimeError("crash")],
    ids=["success", "engine-error", "crash"],
)
async def test_temporary_audio_file_is_removed(error: BaseException | None) -> None:
    world = build(engine=FakeEngine(error=error))

    await world.handle()

    [path] = world.engine.audio_paths
    assert not path.exists()
    assert not path.parent.exists()


async def test_failed_final_write_raises_so_the_request_is_redelivered(world: World) -> None:
    world.jobs.update_errors[JobState.PROCESSING] = DatabaseUnavailable("connection lost")

    with pytest.raises(DatabaseUnavailable):
        await world.handle()

    assert world.engine.calls == 1
    assert world.pauses == [0.5, 1.0, 2.0, 4.0], "five tries, pausing between them"
    assert not world.engine.audio_paths[0].exists()


async def test_failed_final_write_of_a_failure_also_raises() -> None:
    world = build(engine=FakeEngine(error=EngineError("bad audio")))
    world.jobs.update_errors[JobState.PROCESSING] = DatabaseUnavailable("connection lost")

    with pytest.raises(DatabaseUnavailable):
        await world.handle()


async def test_a_short_database_outage_at_the_final_write_is_ridden_out(world: World) -> None:
    outage = DatabaseUnavailable("connection lost")
    world.jobs.update_errors[JobState.PROCESSING] = outage
    real_update = world.jobs.update

    async def recovering(job: Job, *, expected: JobState) -> bool:
        if len(world.pauses) == 2:
            world.jobs.update_errors.clear()
        return await real_update(job, expected=expected)

    world.jobs.update = recovering  # type: ignore[method-assign]
    await world.handle()

    assert world.stored().state is JobState.COMPLETED
    assert world.engine.calls == 1


async def test_failed_claim_raises_before_the_engine_runs(world: World) -> None:
    world.jobs.update_errors[JobState.QUEUED] = DatabaseUnavailable("connection lost")

    with pytest.raises(DatabaseUnavailable):
        await world.handle()

    assert world.engine.calls == 0
    assert world.stored().state is JobState.QUEUED


async def test_cancelled_worker_hands_the_job_back_to_queued() -> None:
    """A worker stopped mid-transcription leaves the job QUEUED for the redelivered request."""
    world = build(engine=FakeEngine(error=asyncio.CancelledError()))

    with pytest.raises(asyncio.CancelledError):
        await world.handle()

    job = world.stored()
    assert job.state is JobState.QUEUED
    assert job.attempts == 1
    assert not world.engine.audio_paths[0].exists()

    world.engine.error = None
    await world.handle()
    assert world.stored().state is JobState.COMPLETED
    assert world.stored().attempts == 2
