"""What a job's "transcribe job" span says about how the job ended."""

from __future__ import annotations

from opentelemetry.trace import Span, StatusCode

from steno.common.jobs import Job, JobState


def record_outcome(span: Span, job: Job) -> None:
    """The job's state, and for a transcribed job the model and the length of its audio; a
    failed job's span is an error with the job's reason."""
    outcome: dict[str, str | float] = {"steno.state": job.state.value}
    if job.model:
        outcome["steno.model"] = job.model
    if job.duration_seconds is not None:
        outcome["steno.audio_seconds"] = job.duration_seconds
    span.set_attributes(outcome)
    if job.state is JobState.FAILED and job.error:
        span.set_status(StatusCode.ERROR, job.error.message)
