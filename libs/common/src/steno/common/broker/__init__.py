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

import asyncio
import enum
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from steno.common.errors import BrokerUnavailable, DependencyUnavailable

log = logging.getLogger(__name__)

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


class Outcome(enum.Enum):
    """What a consumer does with a delivery once its handler is done with it."""

    # Done with: acknowledge it.
    ACK = "ack"
    # Hand the delivery back; this counts against the request's delivery limit.
    REQUEUE = "requeue"
    # Acknowledge it and send the request again, as a new message, after a delay; a new
    # message starts with a clean delivery count.
    DELAY = "delay"
    # Send it to the dead-letter queue: its handler gave up on it.
    DEAD = "dead"


class FailurePause:
    """How long a consumer waits before handing back a request its handler failed on.

    A handler fails when something it depends on (the database, the store) is down;
    requeueing at once would spin through redeliveries until it is back. The pause doubles
    with each failure in a row, up to ``ceiling`` seconds, and resets on a success.
    """

    def __init__(
        self,
        first: float = 0.5,
        ceiling: float = 30.0,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._first = first
        self._ceiling = ceiling
        self._sleep = sleep
        self._failures = 0

    @property
    def seconds(self) -> float:
        """The pause the next failure will cause."""
        return min(self._ceiling, self._first * 2.0**self._failures)

    async def after_failure(self) -> None:
        seconds = self.seconds
        self._failures += 1
        await self._sleep(seconds)

    def succeeded(self) -> None:
        self._failures = 0


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


async def deliver(
    handler: Handler, request: TranscriptionRequest, pause: FailurePause
) -> tuple[Outcome, float]:
    """Runs ``handler`` on one delivery and says what to do with it: ACK when it succeeded;
    DELAY (with the delay in seconds) when it asked to be retried later; DEAD when it gave
    up on it; REQUEUE on a failure, after logging it and waiting out ``pause``.

    A handler that could not reach a service it needs (DependencyUnavailable) gets DELAY
    too, with no delay of its own, after the pause: the outage is not the request's fault,
    so it comes back as a fresh delivery that does not count against its delivery limit.
    Otherwise a database outage longer than a few redeliveries would fail every job that
    happened to be in flight."""
    try:
        await handler(request)
    except GiveUp as hopeless:
        log.error(
            "request given up on; dead-lettered",
            extra={"job_id": str(request.job_id), "reason": str(hopeless)},
        )
        return Outcome.DEAD, 0.0
    except RetryLater as retry:
        log.info(
            "request will be retried later",
            extra={
                "job_id": str(request.job_id),
                "delay_seconds": retry.delay,
                "reason": str(retry),
            },
        )
        return Outcome.DELAY, retry.delay
    except DependencyUnavailable as exc:
        log.warning(
            "a service the handler needs is unavailable; request handed back",
            extra={
                "job_id": str(request.job_id),
                "pause_seconds": pause.seconds,
                "reason": str(exc),
            },
        )
        await pause.after_failure()
        return Outcome.DELAY, 0.0
    except Exception:
        log.exception(
            "handler failed; request handed back",
            extra={"job_id": str(request.job_id), "pause_seconds": pause.seconds},
        )
        await pause.after_failure()
        return Outcome.REQUEUE, 0.0
    pause.succeeded()
    return Outcome.ACK, 0.0


async def deliver_dead_letter(
    handler: DeadLetterHandler, letter: DeadLetter, pause: FailurePause
) -> bool:
    """Runs ``handler`` on one dead letter: True when it succeeded (acknowledge it); False
    after logging the failure and waiting out ``pause`` (hand it back). Dead letters have no
    delivery limit: there is nowhere further for them to go."""
    try:
        await handler(letter)
    except Exception:
        log.exception(
            "dead-letter handler failed; dead letter handed back",
            extra={"job_id": str(letter.request.job_id), "pause_seconds": pause.seconds},
        )
        await pause.after_failure()
        return False
    pause.succeeded()
    return True


__all__ = [
    "DEFAULT_DELIVERY_LIMIT",
    "GAVE_UP_REASON",
    "BrokerUnavailable",
    "DeadLetter",
    "DeadLetterHandler",
    "FailurePause",
    "GiveUp",
    "Handler",
    "JobQueue",
    "Outcome",
    "RetryLater",
    "TranscriptionRequest",
    "deliver",
    "deliver_dead_letter",
    "delivery_limit_reason",
]
