"""The job queue port: how the gateway hands work to transcribers.

Delivery is at least once. A consumer's handler runs to completion before its message is
acknowledged, so a handler that raises (or a process that dies) gets the message again.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from steno.common.errors import BrokerUnavailable


@dataclass(frozen=True, slots=True)
class TranscriptionRequest:
    job_id: uuid.UUID
    tenant: str


Handler = Callable[[TranscriptionRequest], Awaitable[None]]


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


__all__ = ["BrokerUnavailable", "Handler", "JobQueue", "TranscriptionRequest"]
