"""RabbitMQ stopped and started again under a connected publisher and a running consumer:
both carry on, in the same process and the same task, and no request is lost. The node is
a private one (tests/rabbitmq_node.py)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from steno.common.broker import RetryLater, TranscriptionRequest
from steno.common.broker.amqp import RECONNECT_WAIT, AmqpJobQueue
from steno.common.errors import BrokerUnavailable
from tests.rabbitmq_node import PrivateRabbitMQ


def request() -> TranscriptionRequest:
    return TranscriptionRequest(uuid.uuid4(), "default")


class Consumer:
    """A handler that records what it is given. It keeps ``busy`` until its connection goes
    (a worker in the middle of a job when the broker stops), and asks to have each request
    in ``retry_once`` again later, once."""

    def __init__(self, busy: TranscriptionRequest, retry_once: set[TranscriptionRequest]) -> None:
        self.received: set[TranscriptionRequest] = set()
        self.in_flight = asyncio.Event()
        self._busy = busy
        self._retry_once = retry_once
        self._changed = asyncio.Condition()

    async def __call__(self, got: TranscriptionRequest) -> None:
        if got == self._busy and not self.in_flight.is_set():
            self.in_flight.set()
            await asyncio.Future()  # cancelled when the connection goes
        if got in self._retry_once:
            self._retry_once.discard(got)
            raise RetryLater(1, "not yet")
        async with self._changed:
            self.received.add(got)
            self._changed.notify_all()

    async def wait_for(self, expected: set[TranscriptionRequest], timeout: float) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: expected <= self.received)


async def publish_when_back(queue: AmqpJobQueue, item: TranscriptionRequest) -> None:
    """Publishes ``item``, trying again while the connection is still being restored."""
    async with asyncio.timeout(30):
        while True:
            try:
                await queue.publish(item)
                return
            except BrokerUnavailable:
                await asyncio.sleep(0.2)


async def test_publishing_and_consuming_resume_after_a_broker_restart(
    rabbitmq: PrivateRabbitMQ,
) -> None:
    queue_name = f"steno.test.{uuid.uuid4().hex[:12]}"
    publisher = AmqpJobQueue(rabbitmq.url, queue_name)
    worker = AmqpJobQueue(rabbitmq.url, queue_name)
    await publisher.connect()
    await worker.connect()
    warm, busy, delayed = request(), request(), request()
    handler = Consumer(busy, retry_once={warm, delayed})
    consumer = asyncio.create_task(worker.consume(handler))
    try:
        # Once through a retry queue, so that the worker has one declared.
        await publisher.publish(warm)
        await handler.wait_for({warm}, timeout=30)
        # The worker is busy with one request while others wait in the queue.
        before = [busy, *(request() for _ in range(5))]
        for item in before:
            await publisher.publish(item)
        await asyncio.wait_for(handler.in_flight.wait(), 30)

        await asyncio.to_thread(rabbitmq.stop)
        began = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            await publisher.publish(request())
        failed_after = time.monotonic() - began
        print(f"publish refused after {failed_after:.1f}s with the broker down")
        assert failed_after < RECONNECT_WAIT + 2, "publish hung on a broker down"

        restarted = await asyncio.to_thread(rabbitmq.start)
        print(f"private RabbitMQ node restarted in {restarted:.1f}s")
        after = [request() for _ in range(5)]
        for item in after:
            await publish_when_back(publisher, item)
        # Delayed once more, through the worker's retry queue, after the restart.
        await publisher.publish(delayed)

        await handler.wait_for({*before, warm, *after, delayed}, timeout=30)
        assert not consumer.done(), "the consumer task carried on throughout"
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await worker.close()
        await publisher.close()
