"""Completion webhooks end to end, on RabbitMQ and Postgres: a gateway, a worker with a fake
engine, the webhook consumer, and a local receiver. Each job's end reaches the receiver as
one event signed with the tenant's secret, through failures and a receiver that was down,
and never at an address the operator has not allowed."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
import pytest
from standardwebhooks.webhooks import Webhook

from steno.cli import main
from steno.cli.dev import DevSettings
from steno.common.adapters import Adapters, open_adapters
from steno.common.broker import TranscriptionRequest
from steno.common.errors import BrokerUnavailable
from steno.common.settings.webhooks import WebhookSettings
from steno.common.webhooks.consumer import webhook_consumers
from steno.gateway.service import build_gateway
from steno.janitor.service import run_once
from steno.transcriber.service import build_processor, consumers
from steno.v1 import job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb
from tests.fakes import FakeEngine
from tests.integration.test_upload_api import chunks_of, metadata_message
from tests.support import AUDIO, outer_env
from tests.webhook_receiver import WebhookReceiver

MASTER_SECRET = "the operator's master secret"
T = TypeVar("T")


@dataclass
class Stack:
    stub: transcription_service_pb2_grpc.TranscriptionServiceStub
    receiver: WebhookReceiver
    address: str
    # What the gateway and the worker share: their webhook queue among them.
    adapters: Adapters
    settings: DevSettings

    async def upload(self, url: str | None = None) -> str:
        audio = (AUDIO / "speech.wav").read_bytes()
        metadata = metadata_message(webhook_url=url or self.receiver.url)
        response = await self.stub.UploadAudio(iter([metadata, *chunks_of(audio)]))
        return response.job.job_id

    async def job(self, job_id: str) -> job_pb2.Job:
        return (await self.stub.GetJob(pb.GetJobRequest(job_id=job_id))).job

    async def deliveries(self, job_id: str, count: int) -> list[job_pb2.WebhookDelivery]:
        """The job's attempts, once there are ``count``."""

        async def recorded() -> list[job_pb2.WebhookDelivery]:
            attempts = list((await self.job(job_id)).webhook_deliveries)
            return attempts if len(attempts) >= count else []

        return await eventually(recorded, what=f"{count} webhook attempts of job {job_id}")


async def eventually(check: Callable[[], Awaitable[T]], *, what: str, timeout: float = 20) -> T:
    """``check``'s first truthy result, polled; fails after ``timeout`` s."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    return result


@pytest.fixture
def receiver() -> WebhookReceiver:
    receiver = WebhookReceiver()
    receiver.start()
    yield receiver
    with contextlib.suppress(AssertionError):
        receiver.stop()


@pytest.fixture
async def stack(settings: DevSettings, receiver: WebhookReceiver) -> AsyncIterator[Stack]:
    webhooks = WebhookSettings(
        secret=MASTER_SECRET, allow=f"127.0.0.1:{receiver.port}", backoff_seconds=1
    )
    settings = settings.model_copy(update={"webhooks": webhooks})
    async with open_adapters(settings) as adapters:
        gateway = build_gateway(settings, adapters)
        port = await gateway.start("127.0.0.1", 0)
        processor = build_processor(settings, adapters, {"local": FakeEngine()})
        work = [
            asyncio.create_task(consumer)
            for consumer in (
                *consumers(processor, adapters.queue),
                *webhook_consumers(settings.webhooks, adapters),
            )
        ]
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
                yield Stack(stub, receiver, f"127.0.0.1:{port}", adapters, settings)
        finally:
            for task in work:
                task.cancel()
            await asyncio.gather(*work, return_exceptions=True)
            await gateway.stop(0)


def tenant_secret_from_cli(tenant: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "steno.cli", "tenants", "webhook-secret", tenant],
        env={**outer_env(), "STENO_WEBHOOK_SECRET": MASTER_SECRET},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def test_each_job_end_reaches_the_receiver_once_signed_with_the_tenants_secret(
    stack: Stack,
) -> None:
    completed = await stack.upload()
    cancelled_upload = await stack.upload()
    await stack.stub.CancelJob(pb.CancelJobRequest(job_id=cancelled_upload))
    await stack.deliveries(completed, 1)
    await stack.deliveries(cancelled_upload, 1)
    verifier = Webhook(tenant_secret_from_cli("default"))
    events = {}
    for received in stack.receiver.delivered():
        event = verifier.verify(received.body, received.headers)
        events[event["data"]["job_id"]] = (event, received.headers["webhook-id"])
    assert len(stack.receiver.received) == 2, "one request per job"
    event, event_id = events[completed]
    assert event["type"] == "job.completed"
    assert event["data"]["state"] == "COMPLETED"
    assert event["data"]["error"] is None
    assert event["data"]["links"]["transcript"].endswith(f"GetTranscript?job_id={completed}")
    [delivery] = (await stack.job(completed)).webhook_deliveries
    assert (delivery.event_id, delivery.attempt, delivery.status_code) == (event_id, 1, 204)
    assert delivery.error == ""
    cancelled, _ = events[cancelled_upload]
    assert (cancelled["type"], cancelled["data"]["links"]["transcript"]) == ("job.cancelled", None)
    # Signed with another tenant's secret, the event would not verify.
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(tenant_secret_from_cli("another")).verify(
            stack.receiver.received[0].body, stack.receiver.received[0].headers
        )


async def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(
    stack: Stack,
) -> None:
    stack.receiver.answer_with([500, 503])
    job_id = await stack.upload()
    attempts = await stack.deliveries(job_id, 3)
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 500), (2, 503), (3, 204)]
    assert [a.error for a in attempts] == [
        "the receiver answered 500",
        "the receiver answered 503",
        "",
    ]
    assert attempts[1].attempt_time.ToDatetime() > attempts[0].attempt_time.ToDatetime()
    ids = {r.headers["webhook-id"] for r in stack.receiver.received}
    assert len(stack.receiver.received) == 3 and len(ids) == 1, "retries keep the event's id"


async def test_a_receiver_that_was_down_gets_the_event_once_it_is_back(stack: Stack) -> None:
    stack.receiver.stop()
    job_id = await stack.upload()
    [down] = await stack.deliveries(job_id, 1)
    assert down.status_code == 0
    assert "could not reach the receiver" in down.error
    stack.receiver.start()  # the same port
    attempts = await stack.deliveries(job_id, 2)
    assert attempts[-1].status_code == 204
    assert len(stack.receiver.delivered()) == 1


async def test_a_name_that_resolves_to_a_refused_address_is_refused_at_send_time(
    stack: Stack,
) -> None:
    # Allowed at upload (a name), but localhost is 127.0.0.1, and only 127.0.0.1:port by
    # that address is on the allow-list.
    job_id = await stack.upload(f"http://localhost:{stack.receiver.port}/hooks/steno")
    [refused] = await stack.deliveries(job_id, 1)
    assert refused.status_code == 0
    assert refused.error.startswith("refused: localhost resolves to ")
    assert "a loopback address" in refused.error
    assert stack.receiver.received == []


async def test_steno_upload_webhook_names_the_url(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STENO_API_KEY", raising=False)
    args = ["upload", str(AUDIO / "speech.wav"), "--webhook", stack.receiver.url]
    assert await asyncio.to_thread(main, [*args, "--server", stack.address]) == 0
    job_id = capsys.readouterr().out.strip()
    assert (await stack.job(job_id)).webhook_url == stack.receiver.url
    [delivery] = await stack.deliveries(job_id, 1)
    assert delivery.status_code == 204


async def test_an_event_the_broker_did_not_take_is_sent_after_a_janitor_run(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gap at-least-once closes with the janitor: the job ended, its event was not
    queued, and no attempt was ever made. A job whose event went out is left alone."""
    sent = await stack.upload()
    await stack.deliveries(sent, 1)

    async def broker_refuses(request: TranscriptionRequest) -> None:
        raise BrokerUnavailable("the broker is down")

    with monkeypatch.context() as outage:
        outage.setattr(stack.adapters.webhooks, "publish", broker_refuses)
        lost = await stack.upload()

        async def completed() -> job_pb2.Job | None:
            job = await stack.job(lost)
            return job if job.state == job_pb2.JOB_STATE_COMPLETED else None

        ended = await eventually(completed, what=f"job {lost} completed")
    assert list(ended.webhook_deliveries) == []

    past_the_grace = datetime.now(UTC) + timedelta(minutes=11)
    _, reconciled = await run_once(stack.settings, clock=lambda: past_the_grace)

    assert (reconciled.webhooks_requeued, reconciled.errors) == (1, [])
    [delivery] = await stack.deliveries(lost, 1)
    assert delivery.status_code == 204
    verifier = Webhook(tenant_secret_from_cli("default"))
    events = [verifier.verify(r.body, r.headers) for r in stack.receiver.received]
    assert sorted(e["data"]["job_id"] for e in events) == sorted([sent, lost])
    assert next(e for e in events if e["data"]["job_id"] == lost)["type"] == "job.completed"
    assert len((await stack.job(sent)).webhook_deliveries) == 1
