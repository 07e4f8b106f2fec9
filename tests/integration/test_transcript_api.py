"""GetTranscript over gRPC: the formats, and the errors a person can act on."""

from __future__ import annotations

import json
import uuid

import grpc
import pytest

from steno.common.jobs import JobState, PostProcessing, Segment
from steno.v1 import transcription_service_pb2 as pb
from tests.fakes import T0, make_job, make_transcript
from tests.integration.conftest import Gateway

SEGMENTS = [Segment(0.0, 1.5, "we run Kubernetes"), Segment(1.5, 3.25, "on Thursdays")]


async def completed_job(gateway: Gateway) -> str:
    job = make_job()
    await gateway.jobs.add(job)
    job.start(T0)
    assert await gateway.jobs.update(job, expected=JobState.QUEUED)
    transcript = make_transcript(text="we run cooper netties on Thursdays")
    post = PostProcessing(
        lexicon_version=1, text="we run Kubernetes on Thursdays", segments=SEGMENTS
    )
    job.complete(transcript, T0, post)
    assert await gateway.jobs.update(job, expected=JobState.PROCESSING)
    return str(job.job_id)


@pytest.mark.parametrize(
    ("fmt", "content_type", "expected"),
    [
        (pb.TRANSCRIPT_FORMAT_UNSPECIFIED, "text/plain", "we run Kubernetes on Thursdays"),
        (pb.TRANSCRIPT_FORMAT_TEXT, "text/plain", "we run Kubernetes on Thursdays"),
        (pb.TRANSCRIPT_FORMAT_SRT, "application/x-subrip", "00:00:01,500 --> 00:00:03,250"),
        (pb.TRANSCRIPT_FORMAT_VTT, "text/vtt", "00:00:01.500 --> 00:00:03.250"),
        (pb.TRANSCRIPT_FORMAT_JSON, "application/json", '"text": "we run Kubernetes'),
    ],
)
async def test_a_completed_job_gives_its_processed_transcript_in_every_format(
    gateway: Gateway, fmt: pb.TranscriptFormat, content_type: str, expected: str
) -> None:
    job_id = await completed_job(gateway)

    response = await gateway.stub.GetTranscript(pb.GetTranscriptRequest(job_id=job_id, format=fmt))

    assert response.content_type.startswith(content_type)
    assert expected in response.content
    assert [
        (s.start.ToMilliseconds(), s.end.ToMilliseconds(), s.text) for s in response.segments
    ] == [
        (0, 1500, "we run Kubernetes"),
        (1500, 3250, "on Thursdays"),
    ]
    if fmt == pb.TRANSCRIPT_FORMAT_JSON:
        assert json.loads(response.content)["segments"][1] == {
            "start": 1.5,
            "end": 3.25,
            "text": "on Thursdays",
        }


async def test_an_unfinished_job_has_no_transcript_yet(gateway: Gateway) -> None:
    job = make_job()
    await gateway.jobs.add(job)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.stub.GetTranscript(pb.GetTranscriptRequest(job_id=str(job.job_id)))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "is QUEUED" in (caught.value.details() or "")


@pytest.mark.parametrize(
    ("job_id", "fmt", "code"),
    [
        (str(uuid.uuid4()), pb.TRANSCRIPT_FORMAT_TEXT, grpc.StatusCode.NOT_FOUND),
        ("not-a-uuid", pb.TRANSCRIPT_FORMAT_TEXT, grpc.StatusCode.INVALID_ARGUMENT),
        (str(uuid.uuid4()), 99, grpc.StatusCode.INVALID_ARGUMENT),
    ],
    ids=["unknown-job", "malformed-id", "unknown-format"],
)
async def test_bad_requests_get_specific_codes(
    gateway: Gateway, job_id: str, fmt: int, code: grpc.StatusCode
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.stub.GetTranscript(pb.GetTranscriptRequest(job_id=job_id, format=fmt))  # type: ignore[arg-type]
    assert caught.value.code() == code
