"""RabbitMQ as the job queue (aio-pika).

A durable quorum queue, persistent messages and publisher confirms: ``publish`` returns only
once RabbitMQ has the message safely. Messages are ``steno.v1.TranscriptionRequested``
protobufs with ``content_type=application/x-protobuf`` and a ``type`` header.

Delayed retries use TTL queues, one per delay in :data:`RETRY_DELAYS` (a requested delay is
rounded up to the next one): a message waits there until its TTL, then RabbitMQ dead-letters
it back to the main queue. One queue per delay means a short delay never waits behind a long
one; the queues are quorum queues with at-least-once dead-lettering, so a retry survives a
broker restart.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
)
from aiormq.exceptions import AMQPError
from google.protobuf.message import DecodeError

from steno.common.broker import FailurePause, Handler, Outcome, TranscriptionRequest, deliver
from steno.common.errors import BrokerUnavailable
from steno.v1 import events_pb2

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-protobuf"
# Seconds to wait for the broker's confirm (it withholds them during a memory alarm).
PUBLISH_TIMEOUT = 30.0
MESSAGE_TYPE = events_pb2.TranscriptionRequested.DESCRIPTOR.full_name
# Seconds a delayed retry can wait.
RETRY_DELAYS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def retry_delay(seconds: float) -> int:
    """The shortest delay in RETRY_DELAYS that is at least ``seconds`` (at most the longest)."""
    return next((delay for delay in RETRY_DELAYS if delay >= seconds), RETRY_DELAYS[-1])


def retry_queue_name(queue_name: str, delay: int) -> str:
    return f"{queue_name}.retry.{delay}s"


def encode(request: TranscriptionRequest) -> aio_pika.Message:
    body = events_pb2.TranscriptionRequested(
        job_id=str(request.job_id), tenant=request.tenant
    ).SerializeToString()
    return aio_pika.Message(
        body,
        content_type=CONTENT_TYPE,
        type=MESSAGE_TYPE,
        message_id=str(request.job_id),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def decode(message: AbstractIncomingMessage) -> TranscriptionRequest:
    """The request in ``message``; ValueError if it is not one Steno can read."""
    if message.type != MESSAGE_TYPE:
        raise ValueError(f"unexpected message type {message.type!r}")
    try:
        proto = events_pb2.TranscriptionRequested.FromString(message.body)
        return TranscriptionRequest(job_id=uuid.UUID(proto.job_id), tenant=proto.tenant)
    except DecodeError as exc:
        raise ValueError(f"undecodable {MESSAGE_TYPE}: {exc}") from exc


class AmqpJobQueue:
    def __init__(self, url: str, queue_name: str, *, prefetch: int = 1) -> None:
        self._url = url
        self._queue_name = queue_name
        self._prefetch = prefetch
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractRobustChannel | None = None
        self._retry_queues: set[str] = set()

    async def connect(self) -> None:
        try:
            self._connection = await aio_pika.connect_robust(self._url)
            self._publish_channel = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            await self._declare(self._publish_channel)
        except (AMQPError, OSError) as exc:
            raise BrokerUnavailable(f"cannot reach the broker: {exc}") from exc

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def publish(self, request: TranscriptionRequest) -> None:
        await self._publish(request, self._queue_name)

    async def publish_later(self, request: TranscriptionRequest, seconds: float) -> None:
        """Publishes ``request`` to come back to the main queue in about ``seconds``."""
        assert self._publish_channel is not None, "connect() first"
        name = retry_queue_name(self._queue_name, retry_delay(seconds))
        if name not in self._retry_queues:
            try:
                await self._publish_channel.declare_queue(
                    name, durable=True, arguments=self._retry_arguments(retry_delay(seconds))
                )
            except (AMQPError, OSError) as exc:
                raise BrokerUnavailable(f"cannot declare the retry queue: {exc}") from exc
            self._retry_queues.add(name)
        try:
            await self._publish(request, name)
        except BrokerUnavailable:
            # Declared again next time: the queue may have been deleted under us.
            self._retry_queues.discard(name)
            raise

    async def _publish(self, request: TranscriptionRequest, routing_key: str) -> None:
        assert self._publish_channel is not None, "connect() first"
        try:
            await self._publish_channel.default_exchange.publish(
                encode(request),
                routing_key=routing_key,
                mandatory=True,
                timeout=PUBLISH_TIMEOUT,
            )
        except (TimeoutError, AMQPError, OSError) as exc:
            raise BrokerUnavailable(f"the broker did not accept the job: {exc}") from exc

    def _retry_arguments(self, delay: int) -> dict[str, str | int]:
        return {
            "x-queue-type": "quorum",
            "x-message-ttl": delay * 1000,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self._queue_name,
            # At-least-once dead-lettering (quorum queues) needs reject-publish overflow.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    async def consume(self, handler: Handler) -> None:
        assert self._connection is not None, "connect() first"
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        queue = await self._declare(channel)
        pause = FailurePause()

        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                request = decode(message)
            except ValueError:
                log.exception("dropping unreadable message", extra={"type": message.type})
                await message.reject(requeue=False)
                return
            outcome, delay = await deliver(handler, request, pause)
            if outcome is Outcome.DELAY:
                try:
                    await self.publish_later(request, delay)
                except BrokerUnavailable:
                    # Redelivered at once, after a pause: never a tight retry loop.
                    log.exception("could not delay a retry; redelivering after a pause")
                    await pause.after_failure()
                    outcome = Outcome.REQUEUE
            if outcome is Outcome.REQUEUE:
                await message.nack(requeue=True)
            else:
                await message.ack()

        tag = await queue.consume(on_message)
        try:
            await asyncio.Future()
        finally:
            if not channel.is_closed:
                await queue.cancel(tag)
                await channel.close()

    async def _declare(self, channel: AbstractRobustChannel) -> AbstractRobustQueue:
        return await channel.declare_queue(
            self._queue_name, durable=True, arguments={"x-queue-type": "quorum"}
        )
