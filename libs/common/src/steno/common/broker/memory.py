"""An in-process job queue: the embedded default for ``steno dev``.

Nothing survives a restart here; ``steno dev`` re-queues the jobs that were still QUEUED in
the database when it starts.
"""

from __future__ import annotations

import asyncio

from steno.common.broker import FailurePause, Handler, TranscriptionRequest, deliver


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
            if not await deliver(handler, request, pause):
                self._queue.put_nowait(request)
