"""Translation between domain records and ``steno.v1`` messages (the only place both meet)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from steno.common.jobs import Job, JobState, Segment
from steno.common.lexicons import Lexicon
from steno.v1 import job_pb2, lexicon_pb2

# Job fields every view carries as they are, and those that are times.
_JOB_FIELDS = (
    "filename",
    "content_type",
    "size_bytes",
    "sha256",
    "language",
    "lexicon_id",
    "lexicon_version",
    "engine",
    "model",
    "attempts",
    "progress",
    "labels",
    "warnings",
)
_JOB_TIMES = (
    "create_time",
    "start_time",
    "complete_time",
    "audio_expire_time",
    "audio_delete_time",
)


def job_to_proto(job: Job, view: job_pb2.JobView) -> job_pb2.Job:
    fields: dict[str, Any] = {name: getattr(job, name) for name in _JOB_FIELDS}
    fields.update((name, _timestamp(getattr(job, name))) for name in _JOB_TIMES)
    message = job_pb2.Job(
        job_id=str(job.job_id),
        state=state_to_proto(job.state),
        language_probability=job.language_probability or 0.0,
        **fields,
    )
    if job.duration_seconds is not None:
        message.duration.CopyFrom(_duration(job.duration_seconds))
    if job.error is not None:
        message.error.code = job.error.code
        message.error.message = job.error.message
    if view == job_pb2.JOB_VIEW_FULL:
        message.original_text = job.original_text
        message.processed_text = job.processed_text
        message.segments.extend(segment_to_proto(s) for s in job.segments)
        message.replacements.extend(
            job_pb2.Replacement(original=r.original, replacement=r.replacement, offset=r.offset)
            for r in job.replacements
        )
    return message


def state_to_proto(state: JobState) -> job_pb2.JobState:
    return cast(job_pb2.JobState, job_pb2.JobState.Value(f"JOB_STATE_{state.value}"))


def state_from_proto(state: int) -> JobState:
    """The domain state; ValueError for UNSPECIFIED or an unknown number."""
    name = job_pb2.JobState.Name(state).removeprefix("JOB_STATE_")
    return JobState(name)


def segment_to_proto(segment: Segment) -> job_pb2.Segment:
    return job_pb2.Segment(
        start=_duration(segment.start), end=_duration(segment.end), text=segment.text
    )


def lexicon_to_proto(lexicon: Lexicon) -> lexicon_pb2.Lexicon:
    return lexicon_pb2.Lexicon(
        lexicon_id=str(lexicon.lexicon_id),
        name=lexicon.name,
        language=lexicon.language,
        version=lexicon.version,
        entries=[
            lexicon_pb2.LexiconEntry(phrase=e.phrase, sounds_like=e.sounds_like)
            for e in lexicon.entries
        ],
        create_time=_timestamp(lexicon.create_time),
        update_time=_timestamp(lexicon.update_time),
    )


def _duration(seconds: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(round(seconds * 1e9))
    return duration


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    timestamp = Timestamp()
    timestamp.FromDatetime(value)
    return timestamp
