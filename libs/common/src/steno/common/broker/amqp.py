"""RabbitMQ as the job queue (aio-pika).

A durable quorum queue, persistent messages and publisher confirms: ``publish`` returns only
once RabbitMQ has the message safely. Messages are ``steno.v1.TranscriptionRequested``
protobufs with ``content_type=application/x-protobuf`` and a ``type`` header.

The main queue has a delivery limit (``x-delivery-limit``): RabbitMQ counts every delivery
that is not acknowledged, whether the consumer handed it back or its connection went away
with it (a worker killed mid-job), and past the limit dead-letters the message to
``{queue}.dead``, where :meth:`AmqpJobQueue.consume_dead_letters` picks it up.

Delayed retries use TTL queues, one per delay in :data:`RETRY_DELAYS` (a requested delay is
rounded up to the next one): a message waits there until its TTL, then RabbitMQ dead-letters
it back to the main queue. One queue per delay means a short delay never waits behind a long
one. A retry is published as a new message and the delivery it replaces acknowledged; and
RabbitMQ counts deliveries per message in a queue (``x-delivery-count``), so a message that
comes back from a retry queue starts again at zero, whatever headers it carries. A request
delayed any number of times is never dead-lettered for it (the integration tests check
both). All of these are quorum queues with at-least-once dead-lettering, so nothing in them
is lost in a broker restart.

Queue arguments are fixed when a queue is created; a deployment whose queues were created
with other arguments is refused at start-up with :class:`QueueArgumentsMismatch`.

The connection is aio-pika's robust connection: after the broker restarts or the connection
drops, it reconnects in the background and reopens the channels, re-declaring their queues
and restarting their consumers. Meanwhile ``publish`` fails fast with BrokerUnavailable; a
handler that was running when the connection went is cancelled (its delivery is returned by
the broker, and counts as one), and the consumer carries on with the next delivery once the
connection is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
)
from aiormq.exceptions import AMQPError, ChannelInvalidStateError, ChannelPreconditionFailed
from google.protobuf.message import DecodeError
from yarl import URL

from steno.common.broker.delivery import FailurePause, Outcome, deliver, deliver_dead_letter
from steno.common.broker.job_queue import (
    DEFAULT_DELIVERY_LIMIT,
    GAVE_UP_REASON,
    DeadLetter,
    DeadLetterHandler,
    Handler,
    TranscriptionRequest,
    delivery_limit_reason,
)
from steno.common.errors import BrokerUnavailable
from steno.v1 import events_pb2

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-protobuf"
# Seconds to wait for the broker's confirm (it withholds them during a memory alarm).
PUBLISH_TIMEOUT = 30.0
# Seconds between reconnection attempts while the broker is away, unless the URL sets
# ``reconnect_interval`` itself.
RECONNECT_INTERVAL = 2.0
# Seconds a publish waits for a lost connection to come back before giving up. A dropped
# connection to a running broker is back within milliseconds; a broker that is down stays
# down for longer than a caller should wait.
RECONNECT_WAIT = 3.0
MESSAGE_TYPE = events_pb2.TranscriptionRequested.DESCRIPTOR.full_name
# Seconds a stopping consumer gives its in-flight handlers to hand their work back.
HAND_BACK_TIMEOUT = 20.0
# Seconds a delayed retry can wait.
RETRY_DELAYS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# The exceptions of a broker that is unreachable, went away, or refused an operation.
# aiormq raises ChannelInvalidStateError (a RuntimeError) for a closed channel.
BROKER_ERRORS = (AMQPError, ChannelInvalidStateError, OSError, TimeoutError)

QueueArguments = dict[str, str | int]


class QueueArgumentsMismatch(BrokerUnavailable):
    """A queue exists on the broker with other arguments than Steno declares.

    RabbitMQ never changes the arguments of an existing queue, so this does not go away by
    retrying: someone has to delete the queue (once it is drained) or point Steno at a new
    one.
    """


def retry_delay(seconds: float) -> int:
    """The shortest delay in RETRY_DELAYS that is at least ``seconds`` (at most the longest)."""
    return next((delay for delay in RETRY_DELAYS if delay >= seconds), RETRY_DELAYS[-1])


def retry_queue_name(queue_name: str, delay: int) -> str:
    return f"{queue_name}.retry.{delay}s"


def dead_letter_queue_name(queue_name: str) -> str:
    return f"{queue_name}.dead"


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


def death_reason(headers: dict[str, Any]) -> str | None:
    """Why RabbitMQ dead-lettered a message (``delivery_limit``, ``rejected``, ``expired``,
    ``maxlen``), from the headers it adds when it does; None if there are none."""
    reason = headers.get("x-first-death-reason")
    if reason is None:
        deaths = headers.get("x-death")
        if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
            reason = deaths[0].get("reason")
    if isinstance(reason, bytes):
        reason = reason.decode(errors="replace")
    return None if reason is None else str(reason)


class AmqpJobQueue:
    def __init__(
        self,
        url: str,
        queue_name: str,
        *,
        prefetch: int = 1,
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
    ) -> None:
        self._url = url
        self._queue_name = queue_name
        self._dead_letter_queue = dead_letter_queue_name(queue_name)
        self._prefetch = prefetch
        self._delivery_limit = delivery_limit
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractRobustChannel | None = None
        # Retry queues declared on this connection; forgotten when it reconnects, in case
        # the broker came back without them.
        self._retry_queues: set[str] = set()

    async def connect(self) -> None:
        options: dict[str, Any] = {}
        if "reconnect_interval" not in URL(self._url).query:
            options["reconnect_interval"] = RECONNECT_INTERVAL
        try:
            connection = await aio_pika.connect_robust(self._url, **options)
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"cannot reach the broker: {exc}") from exc
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            await self._declare(channel)
        except BaseException as exc:
            # A robust connection left open would keep reconnecting in the background.
            await connection.close()
            if isinstance(exc, ChannelPreconditionFailed):
                raise self._mismatch(exc) from exc
            if isinstance(exc, BROKER_ERRORS):
                raise BrokerUnavailable(f"cannot set up the queues: {exc}") from exc
            raise
        connection.reconnect_callbacks.add(self._on_reconnect)
        self._connection = connection
        self._publish_channel = channel

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._publish_channel = None

    async def publish(self, request: TranscriptionRequest) -> None:
        await self._publish(request, self._queue_name)

    async def publish_later(self, request: TranscriptionRequest, seconds: float) -> None:
        """Publishes ``request`` to come back to the main queue in about ``seconds``."""
        delay = retry_delay(seconds)
        name = retry_queue_name(self._queue_name, delay)
        if name not in self._retry_queues:
            channel = await self._ready_channel()
            try:
                # Not robust: after a reconnection the cache is cleared instead, and the
                # queue declared again by the next retry that needs it.
                await channel.declare_queue(
                    name, durable=True, arguments=self._retry_arguments(delay), robust=False
                )
            except ChannelPreconditionFailed as exc:
                raise self._mismatch(exc) from exc
            except BROKER_ERRORS as exc:
                raise BrokerUnavailable(f"cannot declare the retry queue: {exc}") from exc
            self._retry_queues.add(name)
        try:
            await self._publish(request, name)
        except BrokerUnavailable:
            # Declared again next time: the queue may have been deleted under us.
            self._retry_queues.discard(name)
            raise

    async def _ready_channel(self) -> AbstractRobustChannel:
        """The publishing channel, once it is open: waits up to RECONNECT_WAIT seconds for a
        lost connection to be restored, then raises BrokerUnavailable."""
        assert self._publish_channel is not None, "connect() first"
        try:
            async with asyncio.timeout(RECONNECT_WAIT):
                await self._publish_channel.ready()
        except TimeoutError:
            raise BrokerUnavailable(
                "the connection to the broker is down; reconnecting in the background"
            ) from None
        return self._publish_channel

    async def _publish(self, request: TranscriptionRequest, routing_key: str) -> None:
        channel = await self._ready_channel()
        try:
            await channel.default_exchange.publish(
                encode(request),
                routing_key=routing_key,
                mandatory=True,
                timeout=PUBLISH_TIMEOUT,
            )
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"the broker did not accept the job: {exc}") from exc

    def _on_reconnect(self, *_: object) -> None:
        log.info("reconnected to the broker", extra={"queue": self._queue_name})
        self._retry_queues.clear()

    def _main_arguments(self) -> QueueArguments:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self._delivery_limit,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self._dead_letter_queue,
            # At-least-once dead-lettering (quorum queues) needs reject-publish overflow.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    def _retry_arguments(self, delay: int) -> QueueArguments:
        return {
            "x-queue-type": "quorum",
            "x-message-ttl": delay * 1000,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self._queue_name,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    async def _declare(self, channel: AbstractRobustChannel) -> AbstractRobustQueue:
        """Declares the dead-letter queue, then the main queue that dead-letters into it."""
        await self._declare_dead_letters(channel)
        return await channel.declare_queue(
            self._queue_name, durable=True, arguments=self._main_arguments()
        )

    async def _declare_dead_letters(self, channel: AbstractRobustChannel) -> AbstractRobustQueue:
        # No delivery limit: there is nowhere further for a dead letter to go.
        return await channel.declare_queue(
            self._dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )

    def _mismatch(self, exc: ChannelPreconditionFailed) -> QueueArgumentsMismatch:
        return QueueArgumentsMismatch(
            f"the queues of {self._queue_name!r} exist with other arguments than Steno "
            "declares (another STENO_AMQP_DELIVERY_LIMIT, or made by an older version): "
            f"{exc}; delete the queue named there once it is drained, or set "
            "STENO_AMQP_QUEUE to a new name"
        )

    async def consume(self, handler: Handler) -> None:
        pause = FailurePause()

        async def on_request(
            message: AbstractIncomingMessage, request: TranscriptionRequest
        ) -> None:
            try:
                outcome, delay = await deliver(handler, request, pause)
            except asyncio.CancelledError:
                # The worker is stopping and its handler has handed the job back: a fresh
                # message for it, so that a clean stop does not count against the request's
                # delivery limit (an unsettled delivery would). If the broker is what went
                # away, there is nothing to do: it delivers the message again itself.
                with contextlib.suppress(Exception):
                    await self._publish(request, self._queue_name)
                    await _settle(message, message.ack())
                raise
            if outcome is Outcome.DELAY:
                try:
                    await self.publish_later(request, delay)
                except BrokerUnavailable:
                    # Redelivered at once, after a pause: never a tight retry loop.
                    log.exception("could not delay a retry; redelivering after a pause")
                    await pause.after_failure()
                    outcome = Outcome.REQUEUE
            if outcome is Outcome.REQUEUE:
                # reject, not nack: RabbitMQ 4.3 stopped counting nacks as deliveries.
                await _settle(message, message.reject(requeue=True))
            elif outcome is Outcome.DEAD:
                await _settle(message, message.reject(requeue=False))
            else:
                await _settle(message, message.ack())

        await self._consume(self._declare, on_request, _dead_letter_unreadable)

    async def consume_dead_letters(self, handler: DeadLetterHandler) -> None:
        pause = FailurePause()

        async def on_request(
            message: AbstractIncomingMessage, request: TranscriptionRequest
        ) -> None:
            letter = self._dead_letter(request, message.headers)
            if await deliver_dead_letter(handler, letter, pause):
                await _settle(message, message.ack())
            else:
                await _settle(message, message.nack(requeue=True))

        await self._consume(self._declare_dead_letters, on_request, _drop_unreadable)

    def _dead_letter(self, request: TranscriptionRequest, headers: dict[str, Any]) -> DeadLetter:
        reason = death_reason(headers)
        if reason == "delivery_limit":
            # The limit counts redeliveries: the message was delivered once more than that.
            deliveries = self._delivery_limit + 1
            return DeadLetter(request, deliveries, delivery_limit_reason(deliveries))
        readable = {
            "rejected": GAVE_UP_REASON,
            "expired": "expired in the queue",
            "maxlen": "dropped by the queue's length limit",
        }
        if reason is None:
            return DeadLetter(request, None, "dead-lettered by the broker")
        return DeadLetter(request, None, readable.get(reason, f"dead-lettered ({reason})"))

    async def _consume(
        self,
        declare: Callable[[AbstractRobustChannel], Awaitable[AbstractRobustQueue]],
        on_request: Callable[[AbstractIncomingMessage, TranscriptionRequest], Awaitable[None]],
        on_unreadable: Callable[[AbstractIncomingMessage], Awaitable[None]],
    ) -> None:
        """Consumes the queue ``declare`` declares on a channel of its own until cancelled,
        handing each message's request to ``on_request`` (and a message that carries none to
        ``on_unreadable``, from within the handling of the decoding error).

        The robust connection restores the channel, its queue and the consumer after a
        reconnection, so this keeps consuming across broker restarts without doing anything.
        """
        assert self._connection is not None, "connect() first"
        # aio-pika runs each delivery's callback as a task of its own: kept here, so that
        # stopping the consumer can stop them and wait for them to hand their work back.
        in_flight: set[asyncio.Task[None]] = set()

        async def tracked(message: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            assert task is not None
            in_flight.add(task)
            try:
                request = decode(message)
            except ValueError:
                await on_unreadable(message)
            else:
                await on_request(message, request)
            finally:
                in_flight.discard(task)

        # Started while the connection is being restored, a consumer waits for it.
        await self._connection.ready()
        try:
            channel = await self._connection.channel()
        except (*BROKER_ERRORS, RuntimeError) as exc:
            # aio-pika raises a bare RuntimeError for a connection that closed meanwhile.
            raise BrokerUnavailable(f"cannot open a channel: {exc}") from exc
        try:
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await declare(channel)
            tag = await queue.consume(tracked)
        except BaseException as exc:
            await _close(channel)
            if isinstance(exc, ChannelPreconditionFailed):
                raise self._mismatch(exc) from exc
            if isinstance(exc, BROKER_ERRORS):
                raise BrokerUnavailable(f"cannot start consuming: {exc}") from exc
            raise
        try:
            await asyncio.Future()
        finally:
            if not channel.is_closed:
                with contextlib.suppress(*BROKER_ERRORS):
                    await queue.cancel(tag, timeout=5)
            # Deliveries being handled are stopped, and get to hand their work back (a job to
            # QUEUED) before the channel goes; unacknowledged, they are delivered again.
            for task in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.wait(in_flight, timeout=HAND_BACK_TIMEOUT)
            # Closed even when the connection is down: a robust channel left open would be
            # restored, consumer and all, when the connection comes back.
            await _close(channel)


async def _settle(message: AbstractIncomingMessage, settling: Awaitable[None]) -> None:
    """Acknowledges, hands back or rejects a delivery. If the channel it came on is gone,
    the broker has already taken the delivery back and delivers it again: nothing to do."""
    try:
        await settling
    except BROKER_ERRORS as exc:
        log.warning(
            "could not settle a delivery: the broker will deliver it again",
            extra={"message_id": message.message_id, "reason": str(exc)},
        )


async def _dead_letter_unreadable(message: AbstractIncomingMessage) -> None:
    log.exception("unreadable message moved to the dead-letter queue", extra={"type": message.type})
    await _settle(message, message.reject(requeue=False))


async def _drop_unreadable(message: AbstractIncomingMessage) -> None:
    # It was unreadable on the main queue too; nobody can act on it.
    log.error(
        "dropping an unreadable dead letter",
        extra={"type": message.type, "bytes": len(message.body)},
    )
    await _settle(message, message.ack())


async def _close(channel: AbstractRobustChannel) -> None:
    with contextlib.suppress(*BROKER_ERRORS):
        await channel.close()
