"""Job events through RabbitMQ (aio-pika), so a watcher on any gateway replica sees changes
made by any process.

Updates are ``steno.v1.JobUpdated`` protobufs (``content_type=application/x-protobuf`` and a
``type`` header) published to a durable topic exchange with the job id as routing key.
Being hints, they are sent without publisher confirms, not persisted, and expire unread
after a minute. Each subscribing process declares one queue of its own, exclusive and
auto-deleted (it goes when the process does), bound with ``#``, and hands what arrives to the
subscribers of that job in the process.

The connection is robust: after a broker restart aio-pika declares the exchange and the queue
again, binds and consumes. Events published meanwhile are lost; watchers' periodic re-reads
cover the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC

import aio_pika
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
)
from aiormq.exceptions import AMQPError
from google.protobuf.message import DecodeError

from steno.common.broker.amqp_messages import CONTENT_TYPE
from steno.common.errors import BrokerUnavailable
from steno.common.events.fanout import Fanout, Subscription
from steno.common.events.job_events import JobUpdate
from steno.common.jobs import JobState
from steno.v1 import events_pb2, job_pb2

log = logging.getLogger(__name__)

MESSAGE_TYPE = events_pb2.JobUpdated.DESCRIPTOR.full_name
# Seconds a publish may take before the update is given up: a job write never waits longer
# for its event.
PUBLISH_TIMEOUT = 2.0
# Seconds to set up this process's queue before watchers make do with re-reads.
LISTEN_TIMEOUT = 10.0
# An update nobody consumed within this long is stale: the watcher has re-read the job since.
EXPIRATION_SECONDS = 60
# Bounds the broker's memory for a process that stopped keeping up; the oldest go first.
MAX_QUEUED = 10_000


def encode(update: JobUpdate) -> aio_pika.Message:
    proto = events_pb2.JobUpdated(
        job_id=str(update.job_id),
        tenant=update.tenant,
        state=f"JOB_STATE_{update.state.value}",
        progress=update.progress,
    )
    proto.update_time.FromDatetime(update.update_time)
    return aio_pika.Message(
        proto.SerializeToString(),
        content_type=CONTENT_TYPE,
        type=MESSAGE_TYPE,
        delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
        expiration=EXPIRATION_SECONDS,
    )


def decode(message: AbstractIncomingMessage) -> JobUpdate:
    """The update in ``message``; ValueError if it is not one Steno can read."""
    if message.type != MESSAGE_TYPE:
        raise ValueError(f"unexpected message type {message.type!r}")
    try:
        proto = events_pb2.JobUpdated.FromString(message.body)
        state = JobState(job_pb2.JobState.Name(proto.state).removeprefix("JOB_STATE_"))
        return JobUpdate(
            job_id=uuid.UUID(proto.job_id),
            tenant=proto.tenant,
            state=state,
            progress=proto.progress,
            update_time=proto.update_time.ToDatetime(tzinfo=UTC),
        )
    except DecodeError as exc:
        raise ValueError(f"undecodable {MESSAGE_TYPE}: {exc}") from exc


class AmqpJobEvents:
    def __init__(self, url: str, exchange_name: str) -> None:
        self._url = url
        self._exchange_name = exchange_name
        self._fanout = Fanout()
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        # This process's queue, declared on the first subscription: a process that only
        # publishes (a transcriber) never has one.
        self._queue: AbstractRobustQueue | None = None
        self._listening = asyncio.Lock()

    @property
    def queue_name(self) -> str | None:
        """The name of this process's queue, once it has one."""
        return self._queue.name if self._queue is not None else None

    async def connect(self) -> None:
        try:
            self._connection = await aio_pika.connect_robust(self._url)
            channel = await self._connection.channel(publisher_confirms=False)
            self._exchange = await self._declare_exchange(channel)
        except (AMQPError, OSError) as exc:
            raise BrokerUnavailable(f"cannot reach the broker: {exc}") from exc

    async def close(self) -> None:
        connection, self._connection, self._queue = self._connection, None, None
        if connection is not None:
            await connection.close()

    async def publish(self, update: JobUpdate) -> None:
        assert self._connection is not None and self._exchange is not None, "connect() first"
        # While reconnecting, publishing would wait for the connection: fail at once instead.
        if not self._connection.connected.is_set():
            raise BrokerUnavailable("not connected to the broker")
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                await self._exchange.publish(
                    encode(update), routing_key=str(update.job_id), mandatory=False
                )
        # A channel being restored raises ChannelInvalidStateError, a RuntimeError.
        except (TimeoutError, AMQPError, OSError, RuntimeError) as exc:
            raise BrokerUnavailable(f"the broker did not take the job event: {exc!r}") from exc

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: uuid.UUID) -> AsyncIterator[Subscription]:
        async with self._fanout.subscribe(job_id) as subscription:
            await self._listen()
            yield subscription

    async def _listen(self) -> None:
        """Declares, binds and consumes this process's queue, once. If the broker cannot be
        reached, subscribers get no events until a later subscription succeeds here, and
        watchers fall back on re-reading the job."""
        async with self._listening:
            if self._queue is not None:
                return
            assert self._connection is not None, "connect() first"
            try:
                async with asyncio.timeout(LISTEN_TIMEOUT):
                    self._queue = await self._declare_queue()
            except (TimeoutError, AMQPError, OSError, RuntimeError) as exc:
                log.warning(
                    "cannot listen for job events; watchers will re-read jobs instead",
                    extra={"error": repr(exc)},
                )

    async def _declare_queue(self) -> AbstractRobustQueue:
        assert self._connection is not None
        channel = await self._connection.channel(publisher_confirms=False)
        exchange = await self._declare_exchange(channel)
        # Named here rather than by the server, so that the robust channel can declare it
        # again under the same name after a reconnection.
        queue = await channel.declare_queue(
            f"{self._exchange_name}.{uuid.uuid4().hex}",
            exclusive=True,
            auto_delete=True,
            arguments={"x-max-length": MAX_QUEUED},
        )
        await queue.bind(exchange, routing_key="#")
        await queue.consume(self._on_message, no_ack=True)
        log.info("listening for job events", extra={"queue": queue.name})
        return queue

    async def _declare_exchange(self, channel: AbstractRobustChannel) -> AbstractExchange:
        return await channel.declare_exchange(
            self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            update = decode(message)
        except ValueError:
            log.warning("dropping an unreadable job event", extra={"type": message.type})
            return
        self._fanout.deliver(update)
