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
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
)
from aiormq.exceptions import ChannelPreconditionFailed
from yarl import URL

from steno.common.broker.amqp_consuming import consume_queue, settle
from steno.common.broker.amqp_messages import death_reason, encode
from steno.common.broker.amqp_queues import (
    BROKER_ERRORS,
    QueueArgumentsMismatch,
    dead_letter_queue_name,
    main_arguments,
    retry_arguments,
    retry_delay,
    retry_queue_name,
)
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

log = logging.getLogger(__name__)

# Seconds to wait for the broker's confirm (it withholds them during a memory alarm).
PUBLISH_TIMEOUT = 30.0
# Seconds between reconnection attempts while the broker is away, unless the URL sets
# ``reconnect_interval`` itself.
RECONNECT_INTERVAL = 2.0
# Seconds a publish waits for a lost connection to come back before giving up. A dropped
# connection to a running broker is back within milliseconds; a broker that is down stays
# down for longer than a caller should wait.
RECONNECT_WAIT = 3.0


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
                    name,
                    durable=True,
                    arguments=retry_arguments(delay, self._queue_name),
                    robust=False,
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

    async def message_counts(self) -> dict[str, int]:
        """Ready messages, as a passive declaration reports them, on a channel of its own: a
        queue deleted under us closes the channel it was declared on."""
        assert self._connection is not None, "connect() first"
        try:
            async with self._connection.channel() as stats:
                counts = {}
                for name in (self._queue_name, self._dead_letter_queue):
                    queue = await stats.declare_queue(name, passive=True, robust=False)
                    counts[name] = queue.declaration_result.message_count or 0
                return counts
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"cannot count the queued messages: {exc}") from exc

    def _on_reconnect(self, *_: object) -> None:
        log.info("reconnected to the broker", extra={"queue": self._queue_name})
        self._retry_queues.clear()

    async def _declare(self, channel: AbstractRobustChannel) -> AbstractRobustQueue:
        """Declares the dead-letter queue, then the main queue that dead-letters into it."""
        await self._declare_dead_letters(channel)
        return await channel.declare_queue(
            self._queue_name,
            durable=True,
            arguments=main_arguments(self._delivery_limit, self._dead_letter_queue),
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
                    await settle(message, message.ack())
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
                await settle(message, message.reject(requeue=True))
            elif outcome is Outcome.DEAD:
                await settle(message, message.reject(requeue=False))
            else:
                await settle(message, message.ack())

        await self._consume(self._declare, on_request, _dead_letter_unreadable)

    async def consume_dead_letters(self, handler: DeadLetterHandler) -> None:
        pause = FailurePause()

        async def on_request(
            message: AbstractIncomingMessage, request: TranscriptionRequest
        ) -> None:
            letter = self._dead_letter(request, message.headers)
            if await deliver_dead_letter(handler, letter, pause):
                await settle(message, message.ack())
            else:
                await settle(message, message.nack(requeue=True))

        await self._consume(self._declare_dead_letters, on_request, _drop_unreadable)

    async def _consume(
        self,
        declare: Callable[[AbstractRobustChannel], Awaitable[AbstractRobustQueue]],
        on_request: Callable[[AbstractIncomingMessage, TranscriptionRequest], Awaitable[None]],
        on_unreadable: Callable[[AbstractIncomingMessage], Awaitable[None]],
    ) -> None:
        assert self._connection is not None, "connect() first"
        await consume_queue(
            self._connection,
            prefetch=self._prefetch,
            declare=declare,
            on_request=on_request,
            on_unreadable=on_unreadable,
            mismatch=self._mismatch,
        )

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


async def _dead_letter_unreadable(message: AbstractIncomingMessage) -> None:
    log.exception("unreadable message moved to the dead-letter queue", extra={"type": message.type})
    await settle(message, message.reject(requeue=False))


async def _drop_unreadable(message: AbstractIncomingMessage) -> None:
    # It was unreadable on the main queue too; nobody can act on it.
    log.error(
        "dropping an unreadable dead letter",
        extra={"type": message.type, "bytes": len(message.body)},
    )
    await settle(message, message.ack())
