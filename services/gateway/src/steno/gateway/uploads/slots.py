"""How many uploads one gateway takes at once, and the commits it still has to finish."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from steno.common.jobs import Job
from steno.gateway.uploads.refusals import UploadsBusy

log = logging.getLogger(__name__)


class UploadSlots:
    """An upload holds a slot while it streams and while it commits after its client has
    sent everything; more uploads than ``limit`` at once are refused with UploadsBusy."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._taken = 0
        self._commits: set[asyncio.Task[Job]] = set()

    def take(self) -> None:
        if self._taken >= self._limit:
            raise UploadsBusy(self._limit)
        self._taken += 1

    def give_back(self) -> None:
        self._taken -= 1

    async def finish(self, commit: Coroutine[Any, Any, Job], *, name: str) -> Job:
        """Runs ``commit`` as a task of its own, so that a client going away now cannot
        split the object from its row, and gives the slot back when it ends."""
        task = asyncio.create_task(commit, name=name)
        self._commits.add(task)
        task.add_done_callback(self._committed)
        return await asyncio.shield(task)

    async def drain(self) -> None:
        """Waits for the commits still running (on shutdown, before the adapters close)."""
        await asyncio.gather(*self._commits, return_exceptions=True)

    def _committed(self, task: asyncio.Task[Job]) -> None:
        self._commits.discard(task)
        self.give_back()
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("upload not recorded", extra={"task": task.get_name(), "error": str(error)})
