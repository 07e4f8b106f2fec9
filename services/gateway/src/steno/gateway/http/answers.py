"""A finished job in the shape OpenAI answers a transcription with: ``json``, ``text``,
``srt``, ``vtt`` through the transcript rendering GetTranscript uses, and ``verbose_json``
with the job's language, duration and segments. Steno's engines give no word timings, so
``words`` is left out even when asked for, as OpenAI leaves it out unless asked."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from steno.common.jobs import Job
from steno.gateway.http.transcriptions import AnswerOptions
from steno.gateway.transcripts import TranscriptFormat, json_segment, render

JOB_ID_HEADER = "Steno-Job-Id"


def transcription(job: Job, options: AnswerOptions) -> Response:
    """The COMPLETED ``job``'s transcript as ``options`` ask, with its id in a header."""
    text = job.processed_text or job.original_text
    headers = {JOB_ID_HEADER: str(job.job_id)}
    match options.response_format:
        case "json":
            return JSONResponse({"text": text}, headers=headers)
        case "verbose_json":
            return JSONResponse(_verbose(job, text), headers=headers)
        case other:
            rendered = render(TranscriptFormat(other), text, job.segments, language=job.language)
            return Response(rendered.content, media_type=rendered.content_type, headers=headers)


def _verbose(job: Job, text: str) -> dict[str, Any]:
    return {
        "task": "transcribe",
        "language": job.language,
        "duration": job.duration_seconds or 0.0,
        "text": text,
        "segments": [
            {"id": number, **json_segment(segment)} for number, segment in enumerate(job.segments)
        ],
    }
