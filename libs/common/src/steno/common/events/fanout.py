"""Handing each incoming job update to the watchers of that job in this process, as every
events adapter does."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from steno.common.events.job_events import JobUpdate


class Subscription:
    """The updates of one job for one watcher, coalesced: a newer update replaces one not yet
    read. A slow watcher so holds one update, never a backlog; it loses nothing it needs,
    since it reads the job itself on each update."""

    def __init__(self, job_id: uuid.UUID) -> None:
        self.job_id = job_id
        self._latest: JobUpdate | None = None
        self._ready = asyncio.Event()

    def put(self, update: JobUpdate) -> None:
        self._latest = update
        self._ready.set()

    async def next(self) -> JobUpdate:
        """The latest update not yet read, once there is one."""
        await self._ready.wait()
        self._ready.clear()
        update, self._latest = self._latest, None
        assert update is not None, "set only with an update"
        return update


class Fanout:
    """The subscriptions of one process by job id: what an adapter hands each incoming
    update to."""

    def __init__(self) -> None:
        self._subscriptions: dict[uuid.UUID, set[Subscription]] = {}

    def deliver(self, update: JobUpdate) -> None:
        for subscription in self._subscriptions.get(update.job_id, ()):
            subscription.put(update)

    def watchers(self, job_id: uuid.UUID) -> int:
        """How many subscriptions the job has now."""
        return len(self._subscriptions.get(job_id, ()))

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: uuid.UUID) -> AsyncIterator[Subscription]:
        subscription = Subscription(job_id)
        self._subscriptions.setdefault(job_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            remaining = self._subscriptions[job_id]
            remaining.discard(subscription)
            if not remaining:
                del self._subscriptions[job_id]
