"""The backlog gauges: read on the service's loop when scraped, kept briefly, and left out
(never waited on for long) when their source is slow or failing."""

from __future__ import annotations

import asyncio
import time
from typing import Generic, TypeVar

import pytest

from steno.common.backlog_metrics import BacklogCollector
from steno.common.errors import DatabaseUnavailable
from steno.common.jobs import JobState

T = TypeVar("T")


class Counts(Generic[T]):
    """A source that counts how often it is read; ``delay`` or ``error`` make it slow or
    failing."""

    def __init__(self, value: T, *, delay: float = 0, error: Exception | None = None) -> None:
        self.value, self.delay, self.error = value, delay, error
        self.reads = 0

    async def __call__(self) -> T:
        self.reads += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.value


JOBS = {JobState.QUEUED: 2, JobState.COMPLETED: 5}
QUEUES = {"steno.requests": 2, "steno.requests.dead": 0}


async def scrape(collector: BacklogCollector) -> dict[str, dict[str, float]]:
    """Each family's samples by label value, collected from another thread as the metrics
    server does."""
    families = await asyncio.to_thread(lambda: list(collector.collect()))
    return {f.name: {next(iter(s.labels.values())): s.value for s in f.samples} for f in families}


async def test_the_counts_of_the_moment_are_reported() -> None:
    collector = BacklogCollector()
    async with collector.reporting(Counts(JOBS), Counts(QUEUES)):
        assert await scrape(collector) == {
            "steno_jobs": {"QUEUED": 2, "COMPLETED": 5},
            "steno_queue_messages": {"steno.requests": 2, "steno.requests.dead": 0},
        }


async def test_nothing_is_reported_outside_a_running_service() -> None:
    collector = BacklogCollector()
    assert await scrape(collector) == {"steno_jobs": {}, "steno_queue_messages": {}}
    async with collector.reporting(Counts(JOBS), Counts(QUEUES)):
        pass
    assert await scrape(collector) == {"steno_jobs": {}, "steno_queue_messages": {}}


async def test_scrapes_close_together_share_one_read() -> None:
    jobs, queues = Counts(JOBS), Counts(QUEUES)
    collector = BacklogCollector(max_age=60)
    async with collector.reporting(jobs, queues):
        for _ in range(3):
            await scrape(collector)
    assert (jobs.reads, queues.reads) == (1, 1)


async def test_counts_older_than_max_age_are_read_again() -> None:
    jobs = Counts(JOBS)
    collector = BacklogCollector(max_age=0)
    async with collector.reporting(jobs, Counts(QUEUES)):
        await scrape(collector)
        await scrape(collector)
    assert jobs.reads == 2


async def test_a_slow_database_delays_the_scrape_by_the_timeout_only() -> None:
    collector = BacklogCollector(read_timeout=0.2)
    async with collector.reporting(Counts(JOBS, delay=30), Counts(QUEUES)):
        started = time.monotonic()
        scraped = await scrape(collector)
        assert time.monotonic() - started < 2
    assert scraped["steno_jobs"] == {}
    assert scraped["steno_queue_messages"] == QUEUES


async def test_a_failing_source_leaves_out_its_family_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = Counts(JOBS, error=DatabaseUnavailable("the database is unavailable"))
    collector = BacklogCollector()
    async with collector.reporting(down, Counts(QUEUES)):
        scraped = await scrape(collector)
    assert scraped == {"steno_jobs": {}, "steno_queue_messages": QUEUES}
    assert "metrics read failed" in caplog.messages


async def test_a_scrape_on_the_loops_own_thread_does_not_wait_for_it() -> None:
    collector = BacklogCollector()
    async with collector.reporting(Counts(JOBS), Counts(QUEUES)):
        on_loop = {f.name: f.samples for f in collector.collect()}
    assert on_loop == {"steno_jobs": [], "steno_queue_messages": []}
