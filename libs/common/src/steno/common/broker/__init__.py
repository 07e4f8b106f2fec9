"""The job queue port: how the gateway hands work to transcribers.

Delivery is at least once. A consumer's handler runs to completion before its message is
acknowledged, so a handler that raises (or a process that dies) gets the message again.
"""

from __future__ import annotations

import asyncio
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
        ``handler`` returns and redelivered if it raises."""
        ...


async def deliver(handler: Handler, request: TranscriptionRequest, pause: FailurePause) -> bool:
    """Runs ``handler`` on one delivery. True if it succeeded; on failure it logs, waits out
    ``pause`` and returns False, and the caller hands the request back to its queue."""
    try:
        await handler(request)
    except Exception:
        log.exception(
            "handler failed; request handed back",
            extra={"job_id": str(request.job_id), "pause_seconds": pause.seconds},
        )
        await pause.after_failure()
        return False
    pause.succeeded()
    return True


__all__ = [
    "BrokerUnavailable",
    "FailurePause",
    "Handler",
    "JobQueue",
    "TranscriptionRequest",
    "deliver",
]
