"""RabbitMQ as the job queue (aio-pika).

A durable quorum queue, persistent messages and publisher confirms: ``publish`` returns only
once RabbitMQ has the message safely. Messages are ``steno.v1.TranscriptionRequested``
protobufs with ``content_type=application/x-protobuf`` and a ``type`` header.
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

from steno.common.broker import FailurePause, Handler, TranscriptionRequest, deliver
from steno.common.errors import BrokerUnavailable
from steno.v1 import events_pb2

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-protobuf"
# Seconds to wait for the broker's confirm (it withholds them during a memory alarm).
PUBLISH_TIMEOUT = 30.0
MESSAGE_TYPE = events_pb2.TranscriptionRequested.DESCRIPTOR.full_name


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
        self._consume_channel: AbstractRobustChannel | None = None

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
        assert self._publish_channel is not None, "connect() first"
        try:
            await self._publish_channel.default_exchange.publish(
                encode(request),
                routing_key=self._queue_name,
                mandatory=True,
                timeout=PUBLISH_TIMEOUT,
            )
        except (TimeoutError, AMQPError, OSError) as exc:
            raise BrokerUnavailable(f"the broker did not accept the job: {exc}") from exc

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
            if await deliver(handler, request, pause):
                await message.ack()
            else:
                await message.nack(requeue=True)

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
