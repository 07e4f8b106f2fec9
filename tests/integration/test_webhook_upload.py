"""An upload may name a webhook: its URL is kept on the job, unless Steno may not call it,
which is INVALID_ARGUMENT (WEBHOOK_URL_REFUSED) before anything is stored."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest

from steno.cli.dev import DevSettings
from steno.common.adapters import open_adapters
from steno.common.settings.webhooks import WebhookSettings
from steno.gateway.service import build_gateway
from steno.v1 import transcription_service_pb2 as pb
from steno.v1 import transcription_service_pb2_grpc
from tests.integration.test_upload_api import chunks_of, metadata_message
from tests.rpc_details import facts, field_violations
from tests.support import AUDIO

Stub = transcription_service_pb2_grpc.TranscriptionServiceStub


@contextlib.asynccontextmanager
async def serving(settings: DevSettings, webhooks: WebhookSettings) -> AsyncIterator[Stub]:
    """A gateway with these webhook settings, and a stub to call it with."""
    settings = settings.model_copy(update={"webhooks": webhooks})
    async with open_adapters(settings) as adapters:
        service = build_gateway(settings, adapters)
        port = await service.start("127.0.0.1", 0)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
        await service.stop(0)


@pytest.fixture
async def stub(settings: DevSettings) -> AsyncIterator[Stub]:
    """A gateway with webhooks on and no allow-list."""
    async with serving(settings, WebhookSettings(secret="master-secret")) as stub:
        yield stub


async def upload(stub: Stub, url: str) -> pb.Job:
    audio = (AUDIO / "speech.wav").read_bytes()
    messages = [metadata_message(webhook_url=url), *chunks_of(audio)]
    response: pb.UploadAudioResponse = await stub.UploadAudio(iter(messages))
    return response.job


async def test_the_webhook_url_is_kept_on_the_job(
    stub: Stub,
) -> None:
    job = await upload(stub, "https://hooks.example.com/steno?source=test")
    assert job.webhook_url == "https://hooks.example.com/steno?source=test"
    got = await stub.GetJob(pb.GetJobRequest(job_id=job.job_id))
    assert got.job.webhook_url == job.webhook_url
    assert list(got.job.webhook_deliveries) == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:8080/hook", "127.0.0.1, a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("file:///etc/passwd", "must start with http:// or https://"),
    ],
)
async def test_a_webhook_steno_may_not_call_is_refused_at_upload(
    stub: Stub, url: str, says: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await upload(stub, url)
    error = refused.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert says in (error.details() or "")
    assert facts(error) == ("WEBHOOK_URL_REFUSED", {"field": "metadata.webhook_url"})
    assert field_violations(error) == ["metadata.webhook_url"]


async def test_a_webhook_is_refused_when_webhooks_are_off(settings: DevSettings) -> None:
    async with serving(settings, WebhookSettings()) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await upload(stub, "https://hooks.example.com/steno")
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "STENO_WEBHOOK_SECRET" in (refused.value.details() or "")


async def test_the_http_api_refuses_it_with_400_and_the_same_reason(settings: DevSettings) -> None:
    settings = settings.model_copy(update={"webhooks": WebhookSettings(secret="master-secret")})
    async with open_adapters(settings) as adapters:
        service = build_gateway(settings, adapters)
        await service.start("127.0.0.1", 0)
        port = await service.http.start("127.0.0.1", 0)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                answer = await client.post(
                    "/v1/audio/transcriptions",
                    data={"model": "whisper-1", "webhook_url": "http://10.0.0.1/hook"},
                    files={"file": ("speech.wav", (AUDIO / "speech.wav").read_bytes())},
                )
        finally:
            await service.stop(0)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == ("webhook_url_refused", "webhook_url")
    assert "10.0.0.1, a private address" in error["message"]
