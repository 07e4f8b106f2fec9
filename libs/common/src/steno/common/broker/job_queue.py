"""The job queue port: how the gateway hands work to transcribers.

Delivery is at least once. A consumer's handler runs to completion before its message is
acknowledged, so a handler that raises (or a process that dies) gets the message again. A
handler that raises :class:`RetryLater` gets it again after a delay, through the broker: the
worker never sleeps on a job it cannot do yet.

A request is not delivered forever, though: one whose handler fails, or whose worker dies,
more than ``delivery_limit`` times in a row goes to the dead letters instead, where
:meth:`JobQueue.consume_dead_letters` hands it on (to mark its job FAILED), so that one bad
job cannot take workers down over and over while the others wait. Only failures that may be
the request's own count: a delayed retry (RetryLater) and a handler that could not reach a
service it needs (DependencyUnavailable) come back as a fresh delivery with a clean count.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

# How many times a request is delivered again after its handler failed on it or its worker
# died, before it is dead-lettered: at most ``DEFAULT_DELIVERY_LIMIT + 1`` deliveries.
DEFAULT_DELIVERY_LIMIT = 5


@dataclass(frozen=True, slots=True)
class TranscriptionRequest:
    job_id: uuid.UUID
    tenant: str


Handler = Callable[[TranscriptionRequest], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A request the queue gave up on.

    ``deliveries`` is how many times it was delivered, when the queue knows; ``reason`` says
    why it was given up on, for a person (it ends up in the job's error message).
    """

    request: TranscriptionRequest
    deliveries: int | None
    reason: str


DeadLetterHandler = Callable[[DeadLetter], Awaitable[None]]


def delivery_limit_reason(deliveries: int) -> str:
    """The reason of a request dead-lettered at the delivery limit."""
    return (
        f"delivered {deliveries} times, and each time its worker failed or stopped "
        "before finishing it"
    )


class RetryLater(Exception):
    """Raised by a handler to have its request delivered again in ``delay`` seconds."""

    def __init__(self, delay: float, reason: str) -> None:
        super().__init__(reason)
        self.delay = delay


# Why a request its handler gave up on is a dead letter (RabbitMQ says "rejected").
GAVE_UP_REASON = "rejected by a consumer"


class GiveUp(Exception):
    """Raised by a handler whose request must not be tried again (it keeps killing the
    workers that take it, say): the request goes to the dead-letter queue, ``reason`` with
    it."""


class JobQueue(Protocol):
    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, request: TranscriptionRequest) -> None:
        """Returns once the broker has the request durably; raises BrokerUnavailable if not."""
        ...

    async def consume(self, handler: Handler) -> None:
        """Feeds requests to ``handler`` until cancelled. A request is acknowledged after
        ``handler`` returns, delivered again after a delay if it raises RetryLater, and
        redelivered if it raises anything else, up to the queue's delivery limit; past it,
        the request becomes a dead letter."""
        ...

    async def consume_dead_letters(self, handler: DeadLetterHandler) -> None:
        """Feeds dead letters to ``handler`` until cancelled, each acknowledged after
        ``handler`` returns and delivered again (after a pause) if it raises."""
        ...

    async def message_counts(self) -> dict[str, int]:
        """The messages waiting (not yet delivered) in the requests' queue and the dead
        letters', by queue name; raises BrokerUnavailable if the broker cannot say."""
        ...
