"""An in-process job queue: the embedded default for ``steno dev``.

Nothing survives a restart here, delayed retries included; ``steno dev`` re-queues the jobs
that were still QUEUED in the database when it starts.
"""

from __future__ import annotations

import asyncio

from steno.common.broker import FailurePause, Handler, Outcome, TranscriptionRequest, deliver


class InProcessJobQueue:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[TranscriptionRequest] = asyncio.Queue()

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, request: TranscriptionRequest) -> None:
        self._queue.put_nowait(request)

    async def consume(self, handler: Handler) -> None:
        pause = FailurePause()
        while True:
            request = await self._queue.get()
            outcome, delay = await deliver(handler, request, pause)
            if outcome is Outcome.REQUEUE:
                self._queue.put_nowait(request)
            elif outcome is Outcome.DELAY:
                asyncio.get_running_loop().call_later(delay, self._queue.put_nowait, request)
