"""One attempt per message, recorded before it is acknowledged; retried with backoff within
the retry window; a refused address is a final failure; the request goes to the address
that was checked."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import httpx
import pytest

from steno.common.broker import DeadLetter, RetryLater, TranscriptionRequest
from steno.common.broker.amqp_queues import RETRY_DELAYS
from steno.common.jobs import Job
from steno.common.webhooks.addresses import AddressPolicy, IPAddress
from steno.common.webhooks.delivery import WebhookDispatcher, WebhookQueueingJobRepository
from steno.common.webhooks.sending import WebhookSender
from tests.fakes import T0, FakeJobRepository, make_job

PUBLIC = "93.184.216.34"


class Names:
    """A resolver with made-up answers: each name has one address."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = {name: [ipaddress.ip_address(a)] for name, a in answers.items()}

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        return self.answers[host]


class Receiver:
    """An httpx transport that answers with ``statuses`` in turn and keeps the requests."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.statuses.pop(0))


def ended_job(url: str = "https://hooks.example.com/steno") -> Job:
    job = make_job(webhook_url=url)
    job.start(T0)
    job.cancel(T0)
    return job


def dispatcher(
    jobs: FakeJobRepository,
    receiver: Receiver,
    *,
    now: timedelta = timedelta(0),
    names: dict[str, str] | None = None,
    retry_for: timedelta = timedelta(minutes=1),
) -> WebhookDispatcher:
    sender = WebhookSender(
        AddressPolicy(),
        timeout=1,
        resolver=Names(names or {"hooks.example.com": PUBLIC}),
        transport=httpx.MockTransport(receiver),
    )
    return WebhookDispatcher(
        jobs,
        sender,
        master_secret="master",
        backoff_seconds=10,
        retry_for=retry_for,
        clock=lambda: T0 + now,
    )


async def test_the_request_goes_to_the_checked_address_naming_the_host() -> None:
    job = ended_job()
    jobs, receiver = FakeJobRepository([job]), Receiver(200)
    await dispatcher(jobs, receiver).handle(TranscriptionRequest(job.job_id, job.tenant))
    [request] = receiver.requests
    assert request.url.host == PUBLIC
    assert request.headers["host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    [delivery] = await jobs.webhook_deliveries(job.job_id)
    assert (delivery.attempt, delivery.status_code, delivery.delivered) == (1, 200, True)


async def test_a_failure_is_recorded_then_retried_with_a_growing_delay() -> None:
    job = ended_job()
    jobs, receiver = FakeJobRepository([job]), Receiver(500, 502, 200)
    send = dispatcher(jobs, receiver)
    request = TranscriptionRequest(job.job_id, job.tenant)
    delays = []
    for _ in range(2):
        with pytest.raises(RetryLater) as retry:
            await send.handle(request)
        delays.append(retry.value.delay)
    await send.handle(request)
    assert delays == [10, 20]
    statuses = [d.status_code for d in await jobs.webhook_deliveries(job.job_id)]
    assert statuses == [500, 502, 200]
    # A redelivered message for an event already delivered sends nothing.
    await send.handle(request)
    assert len(receiver.requests) == 3


async def test_the_delay_grows_no_longer_than_the_brokers_longest_delay_queue() -> None:
    job = ended_job()
    jobs, receiver = FakeJobRepository([job]), Receiver(*[503] * 10)
    send = dispatcher(jobs, receiver, retry_for=timedelta(days=2))
    delays = []
    for _ in range(10):
        with pytest.raises(RetryLater) as retry:
            await send.handle(TranscriptionRequest(job.job_id, job.tenant))
        delays.append(retry.value.delay)
    assert delays == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, RETRY_DELAYS[-1]]


async def test_a_name_resolving_to_a_private_address_is_refused_and_not_retried() -> None:
    job = ended_job("https://rebind.example.com/")
    jobs, receiver = FakeJobRepository([job]), Receiver()
    await dispatcher(jobs, receiver, names={"rebind.example.com": "10.0.0.7"}).handle(
        TranscriptionRequest(job.job_id, job.tenant)
    )
    assert receiver.requests == []
    [delivery] = await jobs.webhook_deliveries(job.job_id)
    assert delivery.status_code == 0
    assert delivery.error.startswith("refused: rebind.example.com resolves to 10.0.0.7, a private")


async def test_no_retry_is_scheduled_past_the_retry_window() -> None:
    job = ended_job()
    jobs, receiver = FakeJobRepository([job]), Receiver(503)
    late = dispatcher(jobs, receiver, now=timedelta(seconds=55))
    await late.handle(TranscriptionRequest(job.job_id, job.tenant))
    [delivery] = await jobs.webhook_deliveries(job.job_id)
    assert delivery.error == "the receiver answered 503"


async def test_a_dead_letter_is_recorded_as_the_last_failed_attempt() -> None:
    job = ended_job()
    jobs = FakeJobRepository([job])
    letter = DeadLetter(TranscriptionRequest(job.job_id, job.tenant), 6, "rejected")
    await dispatcher(jobs, Receiver()).give_up(letter)
    [delivery] = await jobs.webhook_deliveries(job.job_id)
    assert (delivery.status_code, delivery.error) == (0, "given up on: rejected")


class Published:
    def __init__(self) -> None:
        self.requests: list[TranscriptionRequest] = []

    async def publish(self, request: TranscriptionRequest) -> None:
        self.requests.append(request)


async def test_only_the_write_that_ends_a_job_with_a_webhook_queues_its_event() -> None:
    with_hook, without = make_job(webhook_url="https://hooks.example.com/"), make_job()
    queue = Published()
    jobs = WebhookQueueingJobRepository(FakeJobRepository([with_hook, without]), queue)  # type: ignore[arg-type]
    for job in (with_hook, without):
        job.start(T0)
        await jobs.update(job, expected=job.state.QUEUED)
    assert queue.requests == []
    for job in (with_hook, without):
        job.cancel(T0)
        await jobs.update(job, expected=job.state.PROCESSING)
    # A racing writer whose condition no longer holds queues nothing.
    await jobs.update(with_hook, expected=with_hook.state.PROCESSING)
    assert queue.requests == [TranscriptionRequest(with_hook.job_id, with_hook.tenant)]
