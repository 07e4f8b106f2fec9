"""The job's life: QUEUED → PROCESSING → COMPLETED or FAILED, and nothing else."""

from datetime import timedelta

import pytest

from steno.common.jobs import TERMINAL_STATES, InvalidTransition, JobError, JobState
from tests.fakes import T0, make_job, make_transcript

LATER = T0 + timedelta(minutes=3)


def test_start_takes_a_queued_job_to_processing() -> None:
    job = make_job(progress=0.5)

    job.start(T0)

    assert job.state is JobState.PROCESSING
    assert job.start_time == T0
    assert job.attempts == 1
    assert job.progress == 0.0
    assert job.complete_time is None
    assert job.audio_expire_time is None


def test_each_start_counts_an_attempt() -> None:
    job = make_job(attempts=2)
    job.start(T0)
    assert job.attempts == 3


def test_complete_stores_the_transcript_and_starts_retention() -> None:
    job = make_job(audio_retention=timedelta(hours=6), language="")
    job.start(T0)
    transcript = make_transcript(language="de", model="small", duration_seconds=9.5)

    job.complete(transcript, LATER)

    assert job.state is JobState.COMPLETED
    assert job.original_text == transcript.text
    assert job.segments == transcript.segments
    assert job.segments is not transcript.segments
    assert job.language == "de"
    assert job.model == "small"
    assert job.duration_seconds == 9.5
    assert job.progress == 1.0
    assert job.complete_time == LATER
    assert job.audio_expire_time == LATER + timedelta(hours=6)
    assert job.error is None


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.PROCESSING])
def test_fail_ends_a_live_job_with_its_reason(state: JobState) -> None:
    job = make_job(state=state, audio_retention=timedelta(minutes=30))
    error = JobError("INVALID_ARGUMENT", "the audio could not be decoded")

    job.fail(error, LATER)

    assert job.state is JobState.FAILED
    assert job.error == error
    assert job.complete_time == LATER
    assert job.audio_expire_time == LATER + timedelta(minutes=30)


def test_zero_retention_expires_audio_when_the_job_ends() -> None:
    job = make_job(state=JobState.PROCESSING, audio_retention=timedelta(0))
    job.complete(make_transcript(), LATER)
    assert job.audio_expire_time == LATER


@pytest.mark.parametrize(
    ("state", "transition"),
    [
        (JobState.PROCESSING, "start"),
        (JobState.COMPLETED, "start"),
        (JobState.FAILED, "start"),
        (JobState.CANCELLED, "start"),
        (JobState.QUEUED, "complete"),
        (JobState.COMPLETED, "complete"),
        (JobState.FAILED, "complete"),
        (JobState.CANCELLED, "complete"),
        (JobState.COMPLETED, "fail"),
        (JobState.FAILED, "fail"),
        (JobState.CANCELLED, "fail"),
    ],
)
def test_illegal_transitions_raise_and_change_nothing(state: JobState, transition: str) -> None:
    job = make_job(state=state, attempts=1)
    before = repr(job)

    with pytest.raises(InvalidTransition, match=str(job.job_id)):
        if transition == "start":
            job.start(LATER)
        elif transition == "complete":
            job.complete(make_transcript(), LATER)
        else:
            job.fail(JobError("INTERNAL", "boom"), LATER)

    assert repr(job) == before


def test_terminal_states() -> None:
    assert {s for s in JobState if s.is_terminal} == set(TERMINAL_STATES)
    assert {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED} == TERMINAL_STATES
