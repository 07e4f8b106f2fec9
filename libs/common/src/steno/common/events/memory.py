"""Job events within one process: the embedded default, for ``steno dev`` (where gateway and
transcriber share the process, and so one instance)."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager

from steno.common.events.fanout import Fanout, Subscription
from steno.common.events.job_events import JobUpdate


class InProcessJobEvents:
    def __init__(self) -> None:
        self._fanout = Fanout()

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, update: JobUpdate) -> None:
        self._fanout.deliver(update)

    def subscribe(self, job_id: uuid.UUID) -> AbstractAsyncContextManager[Subscription]:
        return self._fanout.subscribe(job_id)
