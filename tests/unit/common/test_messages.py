"""Domain records as steno.v1 messages: the views, the state mapping, times and durations."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import pytest

from steno.common.jobs import Job, JobError, JobState, PostProcessing, Segment
from steno.common.lexicons import LexiconEntry, Replacement
from steno.common.messages import (
    job_to_proto,
    lexicon_to_proto,
    state_from_proto,
    state_to_proto,
)
from steno.v1 import job_pb2
from tests.fakes import T0, make_job, make_lexicon, make_transcript


def completed_job() -> Job:
    job = make_job(
        language="en",
        lexicon_id="medical",
        labels={"team": "blue"},
        size_bytes=4096,
        sha256="ab" * 32,
    )
    job.start(T0 + timedelta(seconds=5))
    job.complete(
        make_transcript(
            text="hello world",
            segments=[Segment(0.0, 1.25, "hello"), Segment(1.25, 2.5, "world")],
            duration_seconds=2.5,
            language_probability=0.5,
        ),
        T0 + timedelta(seconds=30),
        PostProcessing(
            lexicon_version=3,
            text="Hello, world.",
            replacements=[Replacement("hello", "Hello", 0)],
            warnings=["something to know"],
        ),
    )
    return job


def test_basic_view_omits_the_transcript() -> None:
    message = job_to_proto(completed_job(), job_pb2.JOB_VIEW_BASIC)

    assert message.original_text == ""
    assert message.processed_text == ""
    assert len(message.segments) == 0
    assert len(message.replacements) == 0
    # Everything else is there.
    assert message.state == job_pb2.JOB_STATE_COMPLETED
    assert message.model == "tiny.en"
    assert message.duration.ToNanoseconds() == 2_500_000_000


@pytest.mark.parametrize("view", [job_pb2.JOB_VIEW_UNSPECIFIED, job_pb2.JOB_VIEW_BASIC])
def test_only_the_full_view_has_text(view: job_pb2.JobView) -> None:
    assert job_to_proto(completed_job(), view).original_text == ""


def test_full_view_includes_text_and_segments() -> None:
    message = job_to_proto(completed_job(), job_pb2.JOB_VIEW_FULL)

    assert message.original_text == "hello world"
    assert message.processed_text == "Hello, world."
    assert [(s.start.ToNanoseconds(), s.end.ToNanoseconds(), s.text) for s in message.segments] == [
        (0, 1_250_000_000, "hello"),
        (1_250_000_000, 2_500_000_000, "world"),
    ]
    assert [(r.original, r.replacement, r.offset) for r in message.replacements] == [
        ("hello", "Hello", 0)
    ]


def test_scalar_fields_are_copied() -> None:
    job = completed_job()
    message = job_to_proto(job, job_pb2.JOB_VIEW_FULL)

    assert message.job_id == str(job.job_id)
    assert message.filename == job.filename
    assert message.content_type == "audio/wav"
    assert message.size_bytes == 4096
    assert message.sha256 == "ab" * 32
    assert message.language == "en"
    assert message.lexicon_id == "medical"
    assert message.lexicon_version == 3
    assert message.language_probability == pytest.approx(0.5)
    assert list(message.warnings) == ["something to know"]
    assert message.engine == "local"
    assert message.attempts == 1
    assert message.progress == pytest.approx(1.0)
    assert dict(message.labels) == {"team": "blue"}
    assert not message.HasField("error")


def test_timestamps_are_the_same_instants() -> None:
    job = completed_job()
    job.audio_delete_time = T0 + timedelta(days=1)
    message = job_to_proto(job, job_pb2.JOB_VIEW_BASIC)

    assert message.create_time.ToDatetime(tzinfo=UTC) == T0
    assert message.start_time.ToDatetime(tzinfo=UTC) == T0 + timedelta(seconds=5)
    assert message.complete_time.ToDatetime(tzinfo=UTC) == T0 + timedelta(seconds=30)
    assert message.audio_expire_time.ToDatetime(tzinfo=UTC) == (
        T0 + timedelta(seconds=30) + job.audio_retention
    )
    assert message.audio_delete_time.ToDatetime(tzinfo=UTC) == T0 + timedelta(days=1)


def test_non_utc_times_keep_their_instant() -> None:
    local = T0.astimezone(timezone(timedelta(hours=-7)))
    message = job_to_proto(make_job(create_time=local), job_pb2.JOB_VIEW_BASIC)
    assert message.create_time.ToDatetime(tzinfo=UTC) == T0


def test_unset_times_and_duration_are_absent() -> None:
    message = job_to_proto(make_job(), job_pb2.JOB_VIEW_FULL)

    for name in (
        "start_time",
        "complete_time",
        "audio_expire_time",
        "audio_delete_time",
        "duration",
        "error",
    ):
        assert not message.HasField(name), name
    assert message.HasField("create_time")
    assert message.state == job_pb2.JOB_STATE_QUEUED


def test_sub_second_duration_is_exact_to_the_nanosecond() -> None:
    job = make_job(duration_seconds=0.000000123)
    assert job_to_proto(job, job_pb2.JOB_VIEW_BASIC).duration.ToNanoseconds() == 123


def test_error_is_copied() -> None:
    job = make_job()
    job.fail(JobError("NOT_FOUND", "the uploaded audio is gone"), T0)

    message = job_to_proto(job, job_pb2.JOB_VIEW_BASIC)

    assert message.state == job_pb2.JOB_STATE_FAILED
    assert (message.error.code, message.error.message) == (
        "NOT_FOUND",
        "the uploaded audio is gone",
    )


@pytest.mark.parametrize(
    ("state", "proto"),
    [
        (JobState.QUEUED, job_pb2.JOB_STATE_QUEUED),
        (JobState.PROCESSING, job_pb2.JOB_STATE_PROCESSING),
        (JobState.COMPLETED, job_pb2.JOB_STATE_COMPLETED),
        (JobState.FAILED, job_pb2.JOB_STATE_FAILED),
        (JobState.CANCELLED, job_pb2.JOB_STATE_CANCELLED),
    ],
)
def test_state_mapping_both_ways(state: JobState, proto: job_pb2.JobState) -> None:
    assert state_to_proto(state) == proto
    assert state_from_proto(proto) is state


def test_every_domain_state_has_a_proto_state() -> None:
    assert {state_from_proto(state_to_proto(s)) for s in JobState} == set(JobState)


@pytest.mark.parametrize("value", [job_pb2.JOB_STATE_UNSPECIFIED, 99])
def test_unspecified_or_unknown_proto_state_raises(value: int) -> None:
    with pytest.raises(ValueError):
        state_from_proto(value)


def test_a_lexicon_keeps_its_entries_version_and_times() -> None:
    lexicon = make_lexicon(
        LexiconEntry("Kubernetes", ("cooper netties", "kuber netes")),
        version=7,
        update_time=T0 + timedelta(hours=2),
    )
    message = lexicon_to_proto(lexicon)

    assert (message.lexicon_id, message.name, message.language, message.version) == (
        str(lexicon.lexicon_id), "platform team", "en", 7
    )  # fmt: skip
    assert [(e.phrase, list(e.sounds_like)) for e in message.entries] == [
        ("Kubernetes", ["cooper netties", "kuber netes"])
    ]
    assert message.create_time.ToDatetime(tzinfo=UTC) == T0
    assert message.update_time.ToDatetime(tzinfo=UTC) == T0 + timedelta(hours=2)
