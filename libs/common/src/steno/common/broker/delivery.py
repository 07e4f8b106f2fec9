"""Running a handler on one delivery, the same way for every queue adapter: what its outcome
means for the delivery (acknowledge, hand back, delay, dead-letter), and the pause that keeps
a consumer from spinning through redeliveries while a service it needs is down."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable

from steno.common.broker.job_queue import (
    DeadLetter,
    DeadLetterHandler,
    GiveUp,
    Handler,
    RetryLater,
    TranscriptionRequest,
)
from steno.common.errors import DependencyUnavailable

log = logging.getLogger(__name__)


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
        _log(logging.ERROR, "request given up on; dead-lettered", request, reason=str(hopeless))
        return Outcome.DEAD, 0.0
    except RetryLater as retry:
        _log(
            logging.INFO,
            "request will be retried later",
            request,
            delay_seconds=retry.delay,
            reason=str(retry),
        )
        return Outcome.DELAY, retry.delay
    except DependencyUnavailable as exc:
        _log(
            logging.WARNING,
            "a service the handler needs is unavailable; request handed back",
            request,
            pause_seconds=pause.seconds,
            reason=str(exc),
        )
        await pause.after_failure()
        return Outcome.DELAY, 0.0
    except Exception:
        _log(
            logging.ERROR,
            "handler failed; request handed back",
            request,
            exc_info=True,
            pause_seconds=pause.seconds,
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
        _log(
            logging.ERROR,
            "dead-letter handler failed; dead letter handed back",
            letter.request,
            exc_info=True,
            pause_seconds=pause.seconds,
        )
        await pause.after_failure()
        return False
    pause.succeeded()
    return True


def _log(
    level: int,
    message: str,
    request: TranscriptionRequest,
    *,
    exc_info: bool = False,
    **fields: object,
) -> None:
    log.log(level, message, exc_info=exc_info, extra={"job_id": str(request.job_id), **fields})
