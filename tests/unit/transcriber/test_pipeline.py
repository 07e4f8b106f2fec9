"""JobProcessor.handle: one request in, one job in a terminal state out, exactly once."""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from steno.common.broker import FailurePause, RetryLater, TranscriptionRequest
from steno.common.disk_space import Disk
from steno.common.errors import DatabaseUnavailable, StorageUnavailable
from steno.common.jobs import Job, JobError, JobState, PostProcessing, Segment, Transcript
from steno.common.lexicons import LexiconEntry, Replacement
from steno.common.retry_policy import RetryPolicy
from steno.transcriber.engines.port import EngineError, EngineUnavailable, TranscriptionOptions
from steno.transcriber.pipeline import JobProcessor
from tests.fakes import (
    T0,
    FakeEngine,
    FakeJobRepository,
    FakeLexiconRepository,
    FakeObjectStore,
    make_job,
    make_lexicon,
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
    lexicons: FakeLexiconRepository
    store: FakeObjectStore
    engine: FakeEngine
    processor: JobProcessor
    pauses: list[float]

    def stored(self) -> Job:
        return self.jobs.stored(self.job.job_id)

    async def handle(self) -> None:
        await self.processor.handle(TranscriptionRequest(self.job.job_id, self.job.tenant))


def build(
    job: Job | None = None,
    *,
    engine: FakeEngine | None = None,
    lexicons: FakeLexiconRepository | None = None,
    retry: RetryPolicy | None = None,
    progress_interval: float = 60.0,
    scratch: Disk | None = None,
) -> World:
    job = job or make_job(language="en", audio_retention=timedelta(hours=3))
    jobs = FakeJobRepository([job])
    lexicons = lexicons or FakeLexiconRepository()
    store = FakeObjectStore({job.object_key: AUDIO})
    engine = engine or FakeEngine()
    pauses: list[float] = []

    async def record(seconds: float) -> None:
        pauses.append(seconds)

    processor = JobProcessor(
        jobs,
        lexicons,
        store,
        {engine.name: engine},
        retry=retry or RetryPolicy(),
        progress_interval=progress_interval,
        clock=StepClock(),
        new_pause=lambda: FailurePause(sleep=record),
        scratch=scratch,
    )
    return World(job, jobs, lexicons, store, engine, processor, pauses)


@dataclass
class HalfwayEngine(FakeEngine):
    """Reports half the audio done, then waits for ``release`` before finishing."""

    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def transcribe(self, audio: Path, options: TranscriptionOptions) -> Transcript:
        options.on_progress(0.5)
        await self.release.wait()
        return await super().transcribe(audio, options)


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
    assert job.error.message == "transcription failed unexpectedly (RuntimeError); see the log"


async def test_a_job_for_an_engine_this_worker_lacks_is_left_for_another() -> None:
    """Transcribers may run different engines: the job goes back for one that runs its
    engine, and fails FAILED_PRECONDITION only when its attempts are used up."""
    world = build(make_job(engine="openai"), retry=RetryPolicy(max_attempts=2, first=1))

    with pytest.raises(RetryLater):
        await world.handle()
    assert world.stored().state is JobState.QUEUED
    await world.handle()

    job = world.stored()
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "FAILED_PRECONDITION"
    assert "'openai' engine" in job.error.message and "local" in job.error.message
    assert "STENO_ENGINES" in job.error.message
    assert world.engine.calls == 0


async def test_a_job_the_scratch_disk_has_no_room_for_is_put_off_not_failed(
    tmp_path: Path,
) -> None:
    """However often: the job is not at fault, the disk is."""
    full = Disk("scratch", tmp_path, critical_free_bytes=2**62)
    world = build(retry=RetryPolicy(max_attempts=2, first=5), scratch=full)
    world.store.download_error = AssertionError("downloaded to a full disk")
    delays = []
    for _ in range(3):
        with pytest.raises(RetryLater) as retry:
            await world.handle()
        delays.append(retry.value.delay)
        assert "storage full: the scratch disk" in str(retry.value)
        assert world.stored().state is JobState.QUEUED
    assert delays == [5, 10, 20], "backing off"
    assert world.engine.calls == 0

    full.critical_free_bytes = 0  # room again
    world.store.download_error = None
    await world.handle()
    assert world.stored().state is JobState.COMPLETED


async def test_job_is_run_by_the_engine_it_asked_for() -> None:
    local = FakeEngine(transcript=make_transcript(model="tiny.en"))
    openai = FakeEngine(transcript=make_transcript(model="whisper-1"), engine_name="openai")
    job = make_job(engine="openai")
    jobs = FakeJobRepository([job])
    store = FakeObjectStore({job.object_key: AUDIO})
    processor = JobProcessor(
        jobs, FakeLexiconRepository(), store, {"local": local, "openai": openai}
    )

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

    async def recovering(job: Job, *, expected: JobState, owner: str | None = None) -> bool:
        if len(world.pauses) == 2:
            world.jobs.update_errors.clear()
        return await real_update(job, expected=expected, owner=owner)

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


KUBERNETES = LexiconEntry("Kubernetes", ("cooper netties",))


def with_lexicon(*entries: LexiconEntry, text: str) -> World:
    lexicon = make_lexicon(*entries, version=4)
    transcript = make_transcript(
        text=text, segments=[Segment(0.0, 1.0, text)], language_probability=0.75
    )
    return build(
        make_job(lexicon_id=str(lexicon.lexicon_id)),
        engine=FakeEngine(transcript=transcript),
        lexicons=FakeLexiconRepository([lexicon]),
    )


async def test_the_lexicon_corrects_text_and_segments_and_biases_the_engine() -> None:
    world = with_lexicon(KUBERNETES, text="we run cooper netties daily")

    await world.handle()

    job = world.stored()
    assert job.state is JobState.COMPLETED
    assert job.original_text == "we run cooper netties daily"
    assert job.processed_text == "we run Kubernetes daily"
    assert job.segments == [Segment(0.0, 1.0, "we run Kubernetes daily")]
    assert job.replacements == [Replacement("cooper netties", "Kubernetes", 7)]
    assert job.lexicon_version == 4
    assert job.language_probability == 0.75
    assert job.warnings == []
    assert list(world.engine.options[0].vocabulary) == ["Kubernetes"]


async def test_the_job_uses_the_lexicon_as_it_is_when_the_job_runs() -> None:
    """Updated after the upload: the worker applies, and records, the newer version."""
    world = with_lexicon(KUBERNETES, text="ask neve")
    [lexicon] = await world.lexicons.list_lexicons("default", limit=1, after=None)
    lexicon.entries.append(LexiconEntry("Niamh", ("neve",)))
    lexicon.version = 5
    assert await world.lexicons.update(lexicon, expected_version=4)

    await world.handle()

    assert world.stored().lexicon_version == 5
    assert world.stored().processed_text == "ask Niamh"


async def test_a_lexicon_deleted_before_the_job_ran_completes_it_with_a_warning() -> None:
    world = build(make_job(lexicon_id=str(uuid.uuid4())))

    await world.handle()

    job = world.stored()
    assert job.state is JobState.COMPLETED
    assert job.original_text == world.engine.transcript.text
    assert job.processed_text == ""
    assert job.lexicon_version == 0
    assert len(job.warnings) == 1 and "was deleted" in job.warnings[0]


async def test_a_post_processing_failure_keeps_the_original_and_warns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = with_lexicon(KUBERNETES, text="we run cooper netties daily")

    def broken(self: object, text: str) -> None:
        raise RuntimeError("rewrite exploded")

    monkeypatch.setattr("steno.transcriber.rewriting.Rewriter.apply", broken)
    await world.handle()

    job = world.stored()
    assert job.state is JobState.COMPLETED
    assert job.original_text == "we run cooper netties daily"
    assert job.processed_text == ""
    assert job.segments == world.engine.transcript.segments
    assert job.replacements == []
    assert job.lexicon_version == 4
    assert len(job.warnings) == 1 and "rewrite exploded" in job.warnings[0]


async def test_an_unreachable_lexicon_store_hands_the_job_back() -> None:
    world = with_lexicon(KUBERNETES, text="x")
    world.lexicons.error = DatabaseUnavailable("connection lost")

    with pytest.raises(DatabaseUnavailable):
        await world.handle()

    assert world.stored().state is JobState.QUEUED
    assert world.engine.calls == 0


async def test_an_unavailable_engine_hands_the_job_back_to_be_retried_later() -> None:
    world = build(
        engine=FakeEngine(error=EngineUnavailable("rate limited", retry_after=None)),
        retry=RetryPolicy(max_attempts=3, first=10, ceiling=25),
    )

    delays = []
    for _ in range(2):
        with pytest.raises(RetryLater) as retry:
            await world.handle()
        delays.append(retry.value.delay)
        assert world.stored().state is JobState.QUEUED

    assert delays == [10, 20], "backoff doubles per attempt"
    await world.handle()  # the third attempt is the last

    job = world.stored()
    assert job.state is JobState.FAILED
    assert job.attempts == 3
    assert job.error is not None and job.error.code == "UNAVAILABLE"
    assert "all 3 attempts" in job.error.message and "rate limited" in job.error.message
    assert world.engine.calls == 3


async def test_the_providers_retry_hint_wins_when_it_is_longer() -> None:
    world = build(
        engine=FakeEngine(error=EngineUnavailable("slow down", retry_after=42)),
        retry=RetryPolicy(max_attempts=3, first=1, ceiling=25),
    )
    with pytest.raises(RetryLater) as retry:
        await world.handle()
    assert retry.value.delay == 42


async def test_progress_is_written_while_the_engine_runs() -> None:
    engine = HalfwayEngine()
    world = build(engine=engine, progress_interval=0.01)
    handling = asyncio.create_task(world.handle())

    async with asyncio.timeout(5):
        while world.stored().progress != 0.5:
            await asyncio.sleep(0.01)
    assert world.stored().state is JobState.PROCESSING
    engine.release.set()
    await handling
    assert world.stored().progress == 1.0


async def test_a_failing_progress_write_does_not_cost_the_transcript() -> None:
    engine = HalfwayEngine()
    world = build(engine=engine, progress_interval=0.01)
    real_update = world.jobs.update
    failed = asyncio.Event()

    async def progress_fails(job: Job, *, expected: JobState, owner: str | None = None) -> bool:
        if job.state is JobState.PROCESSING and job.progress == 0.5:
            failed.set()
            raise RuntimeError("statement timeout")
        return await real_update(job, expected=expected, owner=owner)

    world.jobs.update = progress_fails  # type: ignore[method-assign]
    handling = asyncio.create_task(world.handle())
    async with asyncio.timeout(5):
        await failed.wait()
    engine.release.set()
    await handling

    assert world.stored().state is JobState.COMPLETED
    assert world.stored().original_text == world.engine.transcript.text


async def test_a_hand_back_rides_out_a_short_database_outage() -> None:
    world = build(engine=FakeEngine(error=EngineUnavailable("rate limited")))
    real_update = world.jobs.update
    blips = 2

    async def flaky(job: Job, *, expected: JobState, owner: str | None = None) -> bool:
        nonlocal blips
        if job.state is JobState.QUEUED and expected is JobState.PROCESSING and blips:
            blips -= 1
            raise DatabaseUnavailable("connection lost")
        return await real_update(job, expected=expected, owner=owner)

    world.jobs.update = flaky  # type: ignore[method-assign]
    with pytest.raises(RetryLater):
        await world.handle()

    assert world.stored().state is JobState.QUEUED, "not left PROCESSING for good"
    assert world.pauses == [0.5, 1.0]


async def test_a_worker_stopped_during_post_processing_hands_the_job_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = with_lexicon(KUBERNETES, text="we run cooper netties daily")
    entered, release = threading.Event(), threading.Event()

    def slow_post_process(transcript: Transcript, lexicon: object) -> PostProcessing:
        entered.set()
        release.wait(5)
        return PostProcessing()

    monkeypatch.setattr("steno.transcriber.pipeline.post_process", slow_post_process)
    handling = asyncio.create_task(world.handle())
    assert await asyncio.to_thread(entered.wait, 5)
    handling.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await handling

    assert world.stored().state is JobState.QUEUED
