"""An in-process job queue: the embedded default for ``steno dev``.

Nothing survives a restart here, delayed retries and dead letters included; ``steno dev``
re-queues the jobs that were still QUEUED in the database when it starts. A request is
handled in the trace context it was published in, as a RabbitMQ message's headers carry
it, so that an upload and its transcription are one trace here too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from opentelemetry import context
from opentelemetry.context import Context

from steno.common.broker import (
    DEFAULT_DELIVERY_LIMIT,
    GAVE_UP_REASON,
    DeadLetter,
    DeadLetterHandler,
    FailurePause,
    Handler,
    Outcome,
    TranscriptionRequest,
    deliver,
    deliver_dead_letter,
    delivery_limit_reason,
)
from steno.common.broker.amqp_queues import dead_letter_queue_name


class InProcessJobQueue:
    """The same delivery rules as the RabbitMQ queue: a request whose handler fails more
    than ``delivery_limit`` times in a row becomes a dead letter; a delayed one comes back
    with a clean count."""

    def __init__(
        self,
        *,
        name: str = "in-process",
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
        new_pause: Callable[[], FailurePause] = FailurePause,
    ) -> None:
        # Only what its message counts are reported under.
        self._name = name
        self._delivery_limit = delivery_limit
        self._new_pause = new_pause
        # Each request with how many times its handler has failed on it so far, and the
        # trace context it was published in.
        self._queue: asyncio.Queue[tuple[TranscriptionRequest, int, Context]] = asyncio.Queue()
        self._dead: asyncio.Queue[DeadLetter] = asyncio.Queue()

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, request: TranscriptionRequest) -> None:
        self._queue.put_nowait((request, 0, context.get_current()))

    async def consume(self, handler: Handler) -> None:
        pause = self._new_pause()
        loop = asyncio.get_running_loop()
        while True:
            request, failures, published_in = await self._queue.get()
            token = context.attach(published_in)
            try:
                outcome, delay = await deliver(handler, request, pause)
            finally:
                context.detach(token)
            if outcome is Outcome.REQUEUE:
                failures += 1
                if failures > self._delivery_limit:
                    reason = delivery_limit_reason(failures)
                    self._dead.put_nowait(DeadLetter(request, failures, reason))
                else:
                    self._queue.put_nowait((request, failures, published_in))
            elif outcome is Outcome.DELAY:
                loop.call_later(delay, self._queue.put_nowait, (request, 0, published_in))
            elif outcome is Outcome.DEAD:
                self._dead.put_nowait(DeadLetter(request, failures + 1, GAVE_UP_REASON))

    async def message_counts(self) -> dict[str, int]:
        """Delayed retries wait outside the queue, as on RabbitMQ, and are not counted."""
        return {
            self._name: self._queue.qsize(),
            dead_letter_queue_name(self._name): self._dead.qsize(),
        }

    async def consume_dead_letters(self, handler: DeadLetterHandler) -> None:
        pause = self._new_pause()
        while True:
            letter = await self._dead.get()
            if not await deliver_dead_letter(handler, letter, pause):
                self._dead.put_nowait(letter)
