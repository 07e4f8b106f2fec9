"""The pause after a failed handler, and the in-process queue's redelivery, delays and dead
letters."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from steno.common.broker import (
    DeadLetter,
    FailurePause,
    GiveUp,
    JobQueue,
    Outcome,
    RetryLater,
    TranscriptionRequest,
    deliver,
)
from steno.common.broker.amqp_messages import death_reason
from steno.common.broker.amqp_queues import RETRY_DELAYS, retry_delay
from steno.common.broker.memory import InProcessJobQueue
from steno.common.errors import DatabaseUnavailable
from tests.support import FailsOnce, consume_until_success


async def test_the_pause_doubles_up_to_its_ceiling_and_resets_on_success() -> None:
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    pause = FailurePause(0.5, 4.0, sleep=record)
    for _ in range(5):
        await pause.after_failure()
    pause.succeeded()
    await pause.after_failure()
    assert slept == [0.5, 1.0, 2.0, 4.0, 4.0, 0.5]


async def test_in_process_queue_redelivers_what_its_handler_failed_on() -> None:
    queue = InProcessJobQueue()
    request = TranscriptionRequest(uuid.uuid4(), "default")
    handler = FailsOnce()

    await queue.publish(request)
    await consume_until_success(queue, handler, timeout=10)

    assert handler.calls == [request, request]


async def test_in_process_queue_delays_a_request_its_handler_asked_to_retry_later() -> None:
    queue = InProcessJobQueue()
    request = TranscriptionRequest(uuid.uuid4(), "default")
    handler = FailsOnce(RetryLater(0.2, "rate limited"))

    await queue.publish(request)
    await consume_until_success(queue, handler, timeout=10)

    assert handler.calls == [request, request]
    assert handler.times[1] - handler.times[0] >= 0.2


def test_a_retry_delay_rounds_up_to_the_next_retry_queue() -> None:
    assert [retry_delay(s) for s in (0, 0.3, 1, 1.5, 7, 600, 10**6)] == [
        1, 1, 1, 2, 10, 600, RETRY_DELAYS[-1]
    ]  # fmt: skip


async def test_a_handler_that_cannot_reach_a_dependency_is_delayed_not_requeued() -> None:
    """An outage is not the request's fault: it comes back as a fresh delivery, after the
    pause, so it does not count against the request's delivery limit."""
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    async def handler(request: TranscriptionRequest) -> None:
        raise DatabaseUnavailable("the database is unavailable")

    request = TranscriptionRequest(uuid.uuid4(), "default")
    outcome = await deliver(handler, request, FailurePause(0.5, 4.0, sleep=record))

    assert outcome == (Outcome.DELAY, 0.0)
    assert slept == [0.5]


def test_the_reason_rabbitmq_dead_lettered_a_message_is_read_from_its_headers() -> None:
    assert death_reason({"x-first-death-reason": "delivery_limit"}) == "delivery_limit"
    assert death_reason({"x-death": [{"reason": "rejected", "count": 1}]}) == "rejected"
    assert death_reason({}) is None


QueueFactory = Callable[[int], JobQueue]


def quick_pause() -> FailurePause:
    return FailurePause(0.001, 0.001)


@pytest.fixture
def new_queue() -> QueueFactory:
    """An in-process queue with the given delivery limit (the AMQP queue's delivery rules
    are checked against RabbitMQ in tests/integration/test_dead_letters.py)."""
    return lambda limit: InProcessJobQueue(delivery_limit=limit, new_pause=quick_pause)


class DeadLetters:
    """Collects what a queue's dead-letter consumer hands on."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []
        self.arrived = asyncio.Event()

    async def __call__(self, letter: DeadLetter) -> None:
        self.letters.append(letter)
        self.arrived.set()


@contextlib.asynccontextmanager
async def running(*coroutines: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Runs consumers for the duration of the block."""
    tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_request_that_keeps_failing_becomes_a_dead_letter_after_the_limit(
    new_queue: QueueFactory,
) -> None:
    """Delivered once, then again up to the limit; then handed to the dead-letter consumer
    (once) while the other requests go on being handled."""
    queue = new_queue(2)
    poison = TranscriptionRequest(uuid.uuid4(), "default")
    others = [TranscriptionRequest(uuid.uuid4(), "default") for _ in range(3)]
    calls: list[TranscriptionRequest] = []
    handled: set[TranscriptionRequest] = set()
    all_handled = asyncio.Event()

    async def handler(request: TranscriptionRequest) -> None:
        calls.append(request)
        if request == poison:
            raise RuntimeError("the engine crashed")
        handled.add(request)
        if handled == set(others):
            all_handled.set()

    dead_letters = DeadLetters()
    await queue.publish(poison)
    for request in others:
        await queue.publish(request)
    async with running(queue.consume(handler), queue.consume_dead_letters(dead_letters)):
        await asyncio.wait_for(dead_letters.arrived.wait(), 10)
        await asyncio.wait_for(all_handled.wait(), 10)
        # Time for a second dead letter or a fourth delivery, were there to be one.
        for _ in range(20):
            await asyncio.sleep(0)

    assert calls.count(poison) == 3
    [letter] = dead_letters.letters
    assert letter.request == poison
    assert letter.deliveries == 3
    assert "delivered 3 times" in letter.reason


async def test_retries_asked_for_and_outages_do_not_count_towards_the_limit(
    new_queue: QueueFactory,
) -> None:
    queue = new_queue(1)
    request = TranscriptionRequest(uuid.uuid4(), "default")
    failures: list[Exception] = [
        *(RetryLater(0.001, "rate limited") for _ in range(3)),
        *(DatabaseUnavailable("the database is unavailable") for _ in range(3)),
    ]
    done = asyncio.Event()

    async def handler(got: TranscriptionRequest) -> None:
        if failures:
            raise failures.pop(0)
        done.set()

    dead_letters = DeadLetters()
    await queue.publish(request)
    async with running(queue.consume(handler), queue.consume_dead_letters(dead_letters)):
        await asyncio.wait_for(done.wait(), 10)

    assert dead_letters.letters == []


async def test_a_dead_letter_whose_handler_fails_is_handed_over_again(
    new_queue: QueueFactory,
) -> None:
    queue = new_queue(0)
    request = TranscriptionRequest(uuid.uuid4(), "default")

    async def handler(got: TranscriptionRequest) -> None:
        raise RuntimeError("the engine crashed")

    attempts: list[DeadLetter] = []
    marked = asyncio.Event()

    async def mark_failed(letter: DeadLetter) -> None:
        attempts.append(letter)
        if len(attempts) == 1:
            raise DatabaseUnavailable("the database is unavailable")
        marked.set()

    await queue.publish(request)
    async with running(queue.consume(handler), queue.consume_dead_letters(mark_failed)):
        await asyncio.wait_for(marked.wait(), 10)

    assert [letter.request for letter in attempts] == [request, request]
    assert attempts[0].deliveries == 1


async def test_a_request_its_handler_gives_up_on_becomes_a_dead_letter_at_once() -> None:
    queue = InProcessJobQueue(delivery_limit=5)
    request = TranscriptionRequest(uuid.uuid4(), "default")
    calls: list[TranscriptionRequest] = []
    letters: list[DeadLetter] = []
    given_up = asyncio.Event()

    async def hopeless(delivered: TranscriptionRequest) -> None:
        calls.append(delivered)
        raise GiveUp("it kills its workers")

    async def record(letter: DeadLetter) -> None:
        letters.append(letter)
        given_up.set()

    await queue.publish(request)
    tasks = [
        asyncio.create_task(queue.consume(hopeless)),
        asyncio.create_task(queue.consume_dead_letters(record)),
    ]
    try:
        await asyncio.wait_for(given_up.wait(), 10)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert calls == [request], "not delivered again"
    assert [letter.request for letter in letters] == [request]
