"""The job queue port: how the gateway hands work to transcribers.

Delivery is at least once. A consumer's handler runs to completion before its message is
acknowledged, so a handler that raises (or a process that dies) gets the message again. A
handler that raises :class:`RetryLater` gets it again after a delay, through the broker: the
worker never sleeps on a job it cannot do yet.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from steno.common.errors import BrokerUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TranscriptionRequest:
    job_id: uuid.UUID
    tenant: str


Handler = Callable[[TranscriptionRequest], Awaitable[None]]


class RetryLater(Exception):
    """Raised by a handler to have its request delivered again in ``delay`` seconds."""

    def __init__(self, delay: float, reason: str) -> None:
        super().__init__(reason)
        self.delay = delay


class Outcome(enum.Enum):
    """What a consumer does with a delivery once its handler is done with it."""

    ACK = "ack"
    REQUEUE = "requeue"
    DELAY = "delay"


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
        redelivered if it raises anything else."""
        ...


async def deliver(
    handler: Handler, request: TranscriptionRequest, pause: FailurePause
) -> tuple[Outcome, float]:
    """Runs ``handler`` on one delivery and says what to do with it: ACK when it succeeded;
    DELAY (with the delay in seconds) when it asked to be retried later; REQUEUE on a failure,
    after logging it and waiting out ``pause``."""
    try:
        await handler(request)
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
    except Exception:
        log.exception(
            "handler failed; request handed back",
            extra={"job_id": str(request.job_id), "pause_seconds": pause.seconds},
        )
        await pause.after_failure()
        return Outcome.REQUEUE, 0.0
    pause.succeeded()
    return Outcome.ACK, 0.0


__all__ = [
    "BrokerUnavailable",
    "FailurePause",
    "Handler",
    "JobQueue",
    "Outcome",
    "RetryLater",
    "TranscriptionRequest",
    "deliver",
]
