"""The delivery limit and the dead-letter queue on the real RabbitMQ: a request that keeps
failing, or whose worker keeps dying, ends up in ``{queue}.dead`` and is handed on once; a
request that is only ever delayed or hit by outages never does."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import aio_pika
import pytest

from steno.common.broker import DeadLetter, RetryLater, TranscriptionRequest
from steno.common.broker.amqp import AmqpJobQueue
from steno.common.broker.amqp_messages import encode
from steno.common.broker.amqp_queues import (
    RETRY_DELAYS,
    QueueArgumentsMismatch,
    dead_letter_queue_name,
    retry_queue_name,
)
from steno.common.errors import DatabaseUnavailable


@pytest.fixture
async def queue_name(amqp_url: str) -> AsyncIterator[str]:
    """A queue of this test's own; it, its dead-letter and its retry queues are deleted
    afterwards."""
    name = f"steno.test.{uuid.uuid4().hex[:12]}"
    yield name
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue in (
            name,
            dead_letter_queue_name(name),
            *(retry_queue_name(name, delay) for delay in RETRY_DELAYS),
        ):
            await channel.queue_delete(queue)


@contextlib.asynccontextmanager
async def connected(amqp_url: str, queue_name: str, **options: Any) -> AsyncIterator[AmqpJobQueue]:
    queue = AmqpJobQueue(amqp_url, queue_name, **options)
    await queue.connect()
    try:
        yield queue
    finally:
        await queue.close()


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


async def ready_messages(amqp_url: str, queue_name: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        count = queue.declaration_result.message_count
        assert count is not None
        return count


async def eventually(condition: Callable[[], Coroutine[Any, Any, bool]], what: str) -> None:
    """Polls ``condition`` until it holds; fails after 30 seconds."""
    try:
        async with asyncio.timeout(30):
            while not await condition():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out after 30s waiting for {what}") from None


class DeadLetters:
    """A dead-letter handler that keeps what it is given."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []
        self.arrived = asyncio.Event()

    async def __call__(self, letter: DeadLetter) -> None:
        self.letters.append(letter)
        self.arrived.set()


def request() -> TranscriptionRequest:
    return TranscriptionRequest(uuid.uuid4(), "default")


async def test_a_request_whose_handler_always_fails_is_dead_lettered_once_past_the_limit(
    amqp_url: str, queue_name: str
) -> None:
    poison, others = request(), [request() for _ in range(3)]
    calls: list[TranscriptionRequest] = []
    handled: set[TranscriptionRequest] = set()
    all_handled = asyncio.Event()

    async def handler(got: TranscriptionRequest) -> None:
        calls.append(got)
        if got == poison:
            raise RuntimeError("the engine crashed")
        handled.add(got)
        if handled == set(others):
            all_handled.set()

    dead_letters = DeadLetters()
    async with connected(amqp_url, queue_name, delivery_limit=2) as queue:
        await queue.publish(poison)
        for other in others:
            await queue.publish(other)
        async with running(queue.consume(handler), queue.consume_dead_letters(dead_letters)):
            async with asyncio.timeout(30):
                await all_handled.wait()
                await dead_letters.arrived.wait()

            async def drained() -> bool:
                return (
                    await ready_messages(amqp_url, queue_name) == 0
                    and await ready_messages(amqp_url, dead_letter_queue_name(queue_name)) == 0
                )

            await eventually(drained, "both queues to be empty")

    assert calls.count(poison) == 3, "delivered once, then twice more: the limit"
    [letter] = dead_letters.letters
    assert letter.request == poison
    assert letter.deliveries == 3
    assert letter.reason.startswith("delivered 3 times")


async def test_a_request_whose_worker_dies_every_time_is_dead_lettered_past_the_limit(
    amqp_url: str, queue_name: str
) -> None:
    """Each worker's connection goes away mid-job, the message unacknowledged: RabbitMQ
    counts that as a delivery too."""
    poison = request()
    async with connected(amqp_url, queue_name, delivery_limit=1) as publisher:
        await publisher.publish(poison)
        for _ in range(2):
            started = asyncio.Event()

            async def hang(got: TranscriptionRequest, started: asyncio.Event = started) -> None:
                started.set()
                await asyncio.Future()

            async with connected(amqp_url, queue_name, delivery_limit=1) as worker:
                consumer = asyncio.create_task(worker.consume(hang))
                await asyncio.wait_for(started.wait(), 30)
                await worker.close()  # the worker dies
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)

        dead_letters = DeadLetters()
        async with running(publisher.consume_dead_letters(dead_letters)):
            await asyncio.wait_for(dead_letters.arrived.wait(), 30)

    assert [letter.request for letter in dead_letters.letters] == [poison]
    assert dead_letters.letters[0].deliveries == 2
    assert await ready_messages(amqp_url, queue_name) == 0


@pytest.mark.parametrize(
    "failure",
    [RetryLater(1, "rate limited"), DatabaseUnavailable("the database is unavailable")],
    ids=["retry-later", "dependency-unavailable"],
)
async def test_a_request_delayed_more_often_than_the_limit_is_not_dead_lettered(
    amqp_url: str, queue_name: str, failure: Exception
) -> None:
    """Each delay goes through a retry queue as a new message, and RabbitMQ counts
    deliveries per message: three delays against a limit of one dead-letter nothing."""
    subject = request()
    calls: list[TranscriptionRequest] = []
    done = asyncio.Event()

    async def handler(got: TranscriptionRequest) -> None:
        calls.append(got)
        if len(calls) <= 3:
            raise failure
        done.set()

    dead_letters = DeadLetters()
    async with connected(amqp_url, queue_name, delivery_limit=1) as queue:
        await queue.publish(subject)
        async with running(queue.consume(handler), queue.consume_dead_letters(dead_letters)):
            await asyncio.wait_for(done.wait(), 60)

    assert calls == [subject] * 4
    assert dead_letters.letters == []
    assert await ready_messages(amqp_url, dead_letter_queue_name(queue_name)) == 0


async def test_an_unreadable_message_is_dropped_through_the_dead_letter_queue(
    amqp_url: str, queue_name: str
) -> None:
    handled: list[TranscriptionRequest] = []
    after = request()
    done = asyncio.Event()

    async def handler(got: TranscriptionRequest) -> None:
        handled.append(got)
        done.set()

    dead_letters = DeadLetters()
    async with connected(amqp_url, queue_name) as queue:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            garbage = aio_pika.Message(b"\xff not a protobuf", type="something.Else")
            await channel.default_exchange.publish(garbage, routing_key=queue_name)
        await queue.publish(after)
        async with running(queue.consume(handler), queue.consume_dead_letters(dead_letters)):
            await asyncio.wait_for(done.wait(), 30)

            async def dead_letter_queue_empty() -> bool:
                return await ready_messages(amqp_url, dead_letter_queue_name(queue_name)) == 0

            await eventually(dead_letter_queue_empty, "the dead-letter queue to be empty")

    assert handled == [after]
    assert dead_letters.letters == []


async def test_a_queue_declared_with_other_arguments_is_refused_with_what_to_do(
    amqp_url: str, queue_name: str
) -> None:
    """Raising the delivery limit of an existing deployment, or starting this version on a
    queue an older one created, fails at start-up with a message an operator can act on."""
    async with connected(amqp_url, queue_name, delivery_limit=5):
        pass

    changed = AmqpJobQueue(amqp_url, queue_name, delivery_limit=10)
    with pytest.raises(QueueArgumentsMismatch) as caught:
        await changed.connect()
    message = str(caught.value)
    assert queue_name in message and "x-delivery-limit" in message
    assert "STENO_AMQP_QUEUE" in message
    assert "\n" not in message

    # The refused queue still works with the arguments it was created with.
    async with connected(amqp_url, queue_name, delivery_limit=5) as queue:
        await queue.publish(request())
        assert await ready_messages(amqp_url, queue_name) == 1


async def test_a_queue_an_older_version_created_is_refused_with_what_to_do(
    amqp_url: str, queue_name: str
) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "quorum"})
        await channel.default_exchange.publish(encode(request()), routing_key=queue_name)

    with pytest.raises(QueueArgumentsMismatch, match="STENO_AMQP_QUEUE"):
        await AmqpJobQueue(amqp_url, queue_name).connect()
    assert await ready_messages(amqp_url, queue_name) == 1, "nothing was lost"


async def test_a_worker_stopped_cleanly_again_and_again_does_not_use_up_the_limit(
    amqp_url: str, queue_name: str
) -> None:
    """Rolling restarts: each stop hands the job back as a fresh message, so a request is
    never dead-lettered for its workers having been stopped."""
    job = request()
    async with connected(amqp_url, queue_name, delivery_limit=1) as queue:
        await queue.publish(job)
        for _ in range(3):
            started = asyncio.Event()

            async def busy(got: TranscriptionRequest, started: asyncio.Event = started) -> None:
                started.set()
                await asyncio.Future()  # until the worker stops

            consumer = asyncio.create_task(queue.consume(busy))
            await asyncio.wait_for(started.wait(), 30)
            consumer.cancel()  # SIGTERM: the consumer stops, its handler is cancelled
            await asyncio.gather(consumer, return_exceptions=True)

        handled: list[TranscriptionRequest] = []
        done = asyncio.Event()

        async def finish(got: TranscriptionRequest) -> None:
            handled.append(got)
            done.set()

        dead_letters = DeadLetters()
        async with running(queue.consume(finish), queue.consume_dead_letters(dead_letters)):
            await asyncio.wait_for(done.wait(), 30)

    assert handled == [job]
    assert dead_letters.letters == []
