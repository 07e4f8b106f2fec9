"""How many jobs are in each state, for the ``steno_jobs`` gauge: one grouped count, which
Postgres answers from the ``(state, create_time)`` index."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from steno.common.db.schema import jobs
from steno.common.db.transaction import fetch_all
from steno.common.jobs import JobState


async def count_jobs_by_state(engine: AsyncEngine) -> dict[JobState, int]:
    """Every state, those without a job at 0."""
    query = select(jobs.c.state, func.count().label("jobs")).group_by(jobs.c.state)
    counts = dict.fromkeys(JobState, 0)
    counts.update({JobState(row.state): row.jobs for row in await fetch_all(engine, query)})
    return counts
