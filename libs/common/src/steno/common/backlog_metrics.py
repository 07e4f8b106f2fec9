"""``steno_jobs{state}`` and ``steno_queue_messages{queue}``: the jobs in each state, as the
database counts them, and the messages waiting in the job queue, as the broker does.

They are read when Prometheus scrapes rather than refreshed by a task on a timer: nothing
is read while nobody scrapes, and a scrape sees the counts of that moment instead of those
of up to a period ago. The reads run on the service's event loop, where its database and
broker connections live, handed over from the metrics server's thread; a scrape waits at
most ``read_timeout`` seconds for them and otherwise answers without the family that did
not come (the failure is logged), so a slow database delays ``/metrics`` by seconds at
worst and never hangs it. What was read is kept for ``max_age`` seconds, so that several
Prometheus servers scraping cost one count.

One kind of process reports them, the gateway (in ``steno dev``, the one process): every
gateway replica reports the same figures, which dashboards take the max of.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from steno.common.adapters import Adapters
from steno.common.db.job_counts import count_jobs_by_state
from steno.common.jobs import JobState

log = logging.getLogger(__name__)

T = TypeVar("T")
JobCounts = Callable[[], Awaitable[Mapping[JobState, int]]]
QueueCounts = Callable[[], Awaitable[Mapping[str, int]]]

READ_TIMEOUT = 2.0
MAX_AGE = 5.0


@dataclass(frozen=True)
class _Sources:
    loop: asyncio.AbstractEventLoop
    jobs: JobCounts
    queues: QueueCounts


@dataclass(frozen=True)
class _Counts:
    """What one read got: None for a source that failed or did not answer in time."""

    jobs: Mapping[JobState, int] | None
    queues: Mapping[str, int] | None
    read_at: float


class BacklogCollector(Collector):
    """Reports nothing until a service runs :meth:`reporting`."""

    def __init__(self, *, read_timeout: float = READ_TIMEOUT, max_age: float = MAX_AGE) -> None:
        self._read_timeout = read_timeout
        self._max_age = max_age
        self._sources: _Sources | None = None
        self._counts: _Counts | None = None
        # Concurrent scrapes wait for one read instead of each making their own.
        self._lock = threading.Lock()

    @contextlib.asynccontextmanager
    async def reporting(self, jobs: JobCounts, queues: QueueCounts) -> AsyncIterator[None]:
        """Reports what ``jobs`` and ``queues`` count, read on this event loop, for the
        block."""
        if self._sources is not None:
            raise RuntimeError("the backlog is reported already, by another service here")
        self._sources = _Sources(asyncio.get_running_loop(), jobs, queues)
        try:
            yield
        finally:
            self._sources = self._counts = None

    def describe(self) -> Iterator[Metric]:
        return _families(None)

    def collect(self) -> Iterator[Metric]:
        return _families(self._current())

    def _current(self) -> _Counts | None:
        sources = self._sources
        if sources is None:
            return None
        with self._lock:
            counts = self._counts
            fresh = counts is not None and time.monotonic() - counts.read_at < self._max_age
            # A scrape from the loop's own thread (a test's) cannot wait for the loop.
            if not fresh and not _running_on(sources.loop):
                counts = self._counts = self._read(sources)
            return counts

    def _read(self, sources: _Sources) -> _Counts:
        future = asyncio.run_coroutine_threadsafe(self._read_all(sources), sources.loop)
        try:
            # A little longer than the reads may take: this only catches a stalled loop.
            return future.result(self._read_timeout + 1)
        except TimeoutError:
            future.cancel()
            log.warning("the event loop did not answer the metrics scrape in time")
            return _Counts(None, None, time.monotonic())

    async def _read_all(self, sources: _Sources) -> _Counts:
        jobs, queues = await asyncio.gather(
            self._within_timeout("jobs by state", sources.jobs()),
            self._within_timeout("queued messages", sources.queues()),
        )
        return _Counts(jobs, queues, time.monotonic())

    async def _within_timeout(self, what: str, read: Awaitable[T]) -> T | None:
        try:
            async with asyncio.timeout(self._read_timeout):
                return await read
        except TimeoutError:
            log.warning("metrics read timed out", extra={"read": what})
        except Exception as exc:
            log.warning("metrics read failed", extra={"read": what, "error": str(exc)})
        return None


def _running_on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _families(counts: _Counts | None) -> Iterator[Metric]:
    jobs = GaugeMetricFamily("steno_jobs", "Jobs in each state", labels=["state"])
    queues = GaugeMetricFamily(
        "steno_queue_messages", "Messages waiting in each job queue", labels=["queue"]
    )
    if counts is not None and counts.jobs is not None:
        for state, count in counts.jobs.items():
            jobs.add_metric([state.value], count)
    if counts is not None and counts.queues is not None:
        for queue, count in counts.queues.items():
            queues.add_metric([queue], count)
    yield jobs
    yield queues


BACKLOG = BacklogCollector()
REGISTRY.register(BACKLOG)


def report_backlog(adapters: Adapters) -> contextlib.AbstractAsyncContextManager[None]:
    """Reports the jobs of ``adapters``' database and the messages of its job queue."""
    return BACKLOG.reporting(
        lambda: count_jobs_by_state(adapters.database), adapters.queue.message_counts
    )
