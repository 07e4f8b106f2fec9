"""Bad requests are refused with the field that is wrong, before anything is stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from steno.common.jobs import JobError, JobState
from steno.v1 import job_pb2, lexicon_pb2_grpc
from steno.v1 import lexicon_pb2 as lex
from steno.v1 import transcription_service_pb2 as pb
from tests.fakes import make_job
from tests.integration.conftest import Gateway
from tests.integration.test_upload_api import (
    assert_nothing_left,
    chunks_of,
    metadata_message,
    upload,
)
from tests.rpc_details import facts, field_violations
from tests.support import AUDIO


async def refused(call: Callable[..., Any], request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        await asyncio.to_thread(call, request)
    return error.value


@pytest.mark.parametrize(
    ("rpc", "request_", "field"),
    [
        ("GetJob", pb.GetJobRequest(job_id=str(uuid.uuid4()), view=99), "view"),  # type: ignore[arg-type]
        ("ListJobs", pb.ListJobsRequest(view=99), "view"),  # type: ignore[arg-type]
        ("GetTranscript", pb.GetTranscriptRequest(job_id=str(uuid.uuid4()), format=99), "format"),  # type: ignore[arg-type]
    ],
    ids=["GetJob.view", "ListJobs.view", "GetTranscript.format"],
)
async def test_an_unknown_enum_value_is_invalid(
    gateway: Gateway, rpc: str, request_: Any, field: str
) -> None:
    error = await refused(getattr(gateway.sync_stub, rpc), request_)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == [field]
    assert "99 is not one of" in (error.details() or "")
    assert facts(error) == ("INVALID_FIELD", {"field": field})


@pytest.mark.parametrize(
    ("state", "error", "says"),
    [
        (JobState.CANCELLED, None, "was cancelled; it has no transcript"),
        (
            JobState.FAILED,
            JobError("INVALID_ARGUMENT", "the file has no audio stream"),
            "failed (INVALID_ARGUMENT: the file has no audio stream); it has no transcript",
        ),
    ],
)
async def test_a_transcript_of_a_job_that_ended_without_one_says_so(
    gateway: Gateway, state: JobState, error: JobError | None, says: str
) -> None:
    job = make_job(state=state, error=error, create_time=datetime.now(UTC))
    await gateway.jobs.add(job)
    refusal = await refused(
        gateway.sync_stub.GetTranscript, pb.GetTranscriptRequest(job_id=str(job.job_id))
    )
    assert refusal.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert says in (refusal.details() or "")
    assert facts(refusal) == (
        "TRANSCRIPT_NOT_READY",
        {"job_id": str(job.job_id), "state": state.value},
    )
    assert "once it is COMPLETED" not in (refusal.details() or "")


@pytest.mark.parametrize(
    "entries",
    [
        {"Kubernetes": ["cooper netties"], "Cooper": ["Cooper  Netties"]},
        {"Cooper": ["cooper netties"], "Kubernetes": ["COOPER NETTIES"]},
        {"Kubernetes": ["k8s"], "K8S": []},
    ],
    ids=["variant-twice", "other-order", "variant-is-a-phrase"],
)
async def test_a_variant_under_two_phrases_is_invalid(
    gateway: Gateway, entries: dict[str, list[str]]
) -> None:
    lexicons = lexicon_pb2_grpc.LexiconServiceStub(grpc.insecure_channel(gateway.address))
    message = lex.Lexicon(
        name="ops",
        entries=[lex.LexiconEntry(phrase=p, sounds_like=v) for p, v in entries.items()],
    )
    error = await refused(lexicons.CreateLexicon, lex.CreateLexiconRequest(lexicon=message))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    phrases = list(entries)
    assert all(repr(phrase) in (error.details() or "") for phrase in phrases)

    created = await asyncio.to_thread(
        lexicons.CreateLexicon,
        lex.CreateLexiconRequest(lexicon=lex.Lexicon(name="ops", entries=message.entries[:1])),
    )
    message.lexicon_id = created.lexicon.lexicon_id
    error = await refused(lexicons.UpdateLexicon, lex.UpdateLexiconRequest(lexicon=message))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_language_the_local_model_cannot_transcribe_is_refused_at_upload(
    gateway: Gateway, bucket_objects: Callable[..., Any]
) -> None:
    """The bundled tiny.en speaks English only: French is refused before anything is kept."""
    rows = await gateway.row_count()
    audio = (AUDIO / "speech.wav").read_bytes()
    with pytest.raises(grpc.RpcError) as error:
        await upload(gateway, [metadata_message(language="fr"), *chunks_of(audio)])
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error.value) == ["metadata.language"]
    assert "English only" in (error.value.details() or "")
    await assert_nothing_left(gateway, rows, bucket_objects)

    accepted = await upload(gateway, [metadata_message(language="en-GB"), *chunks_of(audio)])
    assert accepted.job.language == "en-GB"


async def test_the_content_type_a_client_sends_is_advisory(gateway: Gateway) -> None:
    """The job records what the bytes are, whatever the client called them."""
    audio = (AUDIO / "speech.wav").read_bytes()
    response = await upload(
        gateway, [metadata_message(content_type="video/mp4"), *chunks_of(audio)]
    )
    assert response.job.content_type == "audio/wav"
    assert response.job.state == job_pb2.JOB_STATE_QUEUED
