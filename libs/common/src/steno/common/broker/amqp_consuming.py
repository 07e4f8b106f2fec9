"""Consuming one RabbitMQ queue until cancelled: a channel of its own, each delivery decoded
and handed on, and on stopping the deliveries being handled given the time to hand their
work back before the channel goes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
)
from aiormq.exceptions import ChannelPreconditionFailed

from steno.common.broker.amqp_messages import decode
from steno.common.broker.amqp_queues import BROKER_ERRORS
from steno.common.broker.job_queue import TranscriptionRequest
from steno.common.errors import BrokerUnavailable

log = logging.getLogger(__name__)

# Seconds a stopping consumer gives its in-flight handlers to hand their work back.
HAND_BACK_TIMEOUT = 20.0


async def consume_queue(
    connection: AbstractRobustConnection,
    *,
    prefetch: int,
    declare: Callable[[AbstractRobustChannel], Awaitable[AbstractRobustQueue]],
    on_request: Callable[[AbstractIncomingMessage, TranscriptionRequest], Awaitable[None]],
    on_unreadable: Callable[[AbstractIncomingMessage], Awaitable[None]],
    mismatch: Callable[[ChannelPreconditionFailed], Exception],
) -> None:
    """Consumes the queue ``declare`` declares on a channel of its own until cancelled,
    handing each message's request to ``on_request`` (and a message that carries none to
    ``on_unreadable``, from within the handling of the decoding error).

    The robust connection restores the channel, its queue and the consumer after a
    reconnection, so this keeps consuming across broker restarts without doing anything.
    """
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
    await connection.ready()
    try:
        channel = await connection.channel()
    except (*BROKER_ERRORS, RuntimeError) as exc:
        # aio-pika raises a bare RuntimeError for a connection that closed meanwhile.
        raise BrokerUnavailable(f"cannot open a channel: {exc}") from exc
    try:
        await channel.set_qos(prefetch_count=prefetch)
        queue = await declare(channel)
        tag = await queue.consume(tracked)
    except BaseException as exc:
        await _close(channel)
        if isinstance(exc, ChannelPreconditionFailed):
            raise mismatch(exc) from exc
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


async def settle(message: AbstractIncomingMessage, settling: Awaitable[None]) -> None:
    """Acknowledges, hands back or rejects a delivery. If the channel it came on is gone,
    the broker has already taken the delivery back and delivers it again: nothing to do."""
    try:
        await settling
    except BROKER_ERRORS as exc:
        log.warning(
            "could not settle a delivery: the broker will deliver it again",
            extra={"message_id": message.message_id, "reason": str(exc)},
        )


async def _close(channel: AbstractRobustChannel) -> None:
    with contextlib.suppress(*BROKER_ERRORS):
        await channel.close()
