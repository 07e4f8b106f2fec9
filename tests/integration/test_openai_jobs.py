"""Jobs on the OpenAI engine, end to end on the real parts: the gateway, RabbitMQ with its
delay queues, Postgres, S3 and the official client against a local fake of the API. What
each classified error does to the job, not just to the engine call."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from steno.common.jobs import Job, JobState
from steno.common.retry_policy import RetryPolicy
from steno.transcriber.engines.openai import OpenAIEngine
from steno.transcriber.pipeline import JobProcessor
from steno.v1 import transcription_service_pb2 as pb
from tests.integration.conftest import Gateway
from tests.integration.test_upload_api import chunks_of, queued_messages, upload
from tests.support import AUDIO

if TYPE_CHECKING:
    from tests.openai_server import FakeOpenAI

KEY = "sk-test-jobs-0123456789SECRET"


@pytest.fixture
async def consuming(gateway: Gateway, openai_server: FakeOpenAI) -> AsyncIterator[None]:
    """A transcriber consuming the test's queue with the OpenAI engine: up to three
    attempts, the first retry after one second."""
    engine = OpenAIEngine(api_key=KEY, base_url=openai_server.base_url)
    processor = JobProcessor(
        gateway.jobs,
        gateway.lexicons,
        gateway.store,
        {"openai": engine},
        retry=RetryPolicy(max_attempts=3, first=1, ceiling=2),
    )
    consumer = asyncio.create_task(gateway.queue.consume(processor.handle))
    yield
    consumer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await consumer
    await engine.close()


async def run_job(gateway: Gateway) -> Job:
    """Uploads the speech fixture for the OpenAI engine and waits until its job ends."""
    metadata = pb.UploadMetadata(filename="speech.wav", engine="openai")
    messages = [pb.UploadAudioRequest(metadata=metadata)]
    response = await upload(gateway, messages + chunks_of((AUDIO / "speech.wav").read_bytes()))
    job_id = uuid.UUID(response.job.job_id)
    async with asyncio.timeout(30):
        while (job := await gateway.jobs.get(job_id)) is None or not job.state.is_terminal:
            await asyncio.sleep(0.05)
    return job


@pytest.mark.usefixtures("consuming")
async def test_a_rate_limited_job_is_retried_later_through_the_broker_and_completes(
    gateway: Gateway, openai_server: FakeOpenAI
) -> None:
    openai_server.fail(
        429, "Rate limit reached", type="requests", code="rate_limit_exceeded",
        headers={"retry-after": "1"},
    )  # fmt: skip

    job = await run_job(gateway)

    assert job.state is JobState.COMPLETED, job.error
    assert job.attempts == 2
    assert job.engine == "openai" and job.model == "whisper-1"
    assert job.segments and job.segments[-1].end == pytest.approx(8.03, abs=0.1)
    first, second = openai_server.requests
    assert second.at - first.at >= 1.0, "retried after the delay, through the delay queue"
    assert await queued_messages(gateway.settings) == 0


@pytest.mark.usefixtures("consuming")
async def test_out_of_quota_fails_the_job_after_one_request(
    gateway: Gateway, openai_server: FakeOpenAI
) -> None:
    openai_server.fail(
        429, "You exceeded your current quota", type="insufficient_quota",
        code="insufficient_quota",
    )  # fmt: skip

    job = await run_job(gateway)

    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "RESOURCE_EXHAUSTED"
    assert "quota" in job.error.message
    assert job.attempts == 1
    assert len(openai_server.requests) == 1, "no retry storm"


@pytest.mark.usefixtures("consuming")
async def test_a_rejected_key_fails_the_job_with_a_clear_message(
    gateway: Gateway, openai_server: FakeOpenAI
) -> None:
    openai_server.fail(
        401, f"Incorrect API key provided: {KEY[:8]}***", type="invalid_request_error",
        code="invalid_api_key",
    )  # fmt: skip

    job = await run_job(gateway)

    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "UNAUTHENTICATED"
    assert "OPENAI_API_KEY" in job.error.message
    assert KEY[:8] not in job.error.message
    assert len(openai_server.requests) == 1


@pytest.mark.usefixtures("consuming")
async def test_an_engine_that_stays_down_fails_the_job_after_its_attempts(
    gateway: Gateway, openai_server: FakeOpenAI
) -> None:
    for _ in range(3):
        openai_server.fail(503, "The server is overloaded", type="server_error")

    job = await run_job(gateway)

    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "UNAVAILABLE"
    assert "all 3 attempts" in job.error.message
    assert job.attempts == 3
    assert len(openai_server.requests) == 3
