"""The retention sweep: 10,000 expired jobs (1,000 with ``--quick``, 50 with ``--tiny``)
deleted by the janitor's batched sweep (one query, one bulk DeleteObjects and one UPDATE a
batch) against a one-by-one baseline (one query, one DeleteObject and one UPDATE a job), on
Postgres and S3; and the plan of the sweep's query on a table where most jobs are not
expired."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, insert, select, text, update

from bench.harness import Figure, Scale, ab_rounds
from bench.stack import Stack
from steno.common.db import SqlJobRepository, create_engine
from steno.common.db.jobs import job_row
from steno.common.db.schema import jobs as jobs_table
from steno.common.jobs import AudioExpiry, Job, JobState
from steno.common.storage.s3 import S3Store
from steno.common.sweep import sweep_expired_audio

NOW = datetime.now(UTC)
BATCH = 500


def _rows(count: int, *, expired: bool) -> list[dict[str, object]]:
    """``count`` ended jobs as table rows, their audio expired an hour ago or not for days."""
    expire = NOW - timedelta(hours=1) if expired else NOW + timedelta(days=30)
    rows = []
    for _ in range(count):
        job_id = uuid.uuid4()
        job = Job(
            job_id=job_id, tenant="bench", state=JobState.COMPLETED, object_key=f"audio/{job_id}",
            filename="bench.wav", content_type="audio/wav", size_bytes=16, sha256="0" * 64,
            audio_retention=timedelta(0), create_time=NOW - timedelta(days=2),
            audio_expire_time=expire,
        )  # fmt: skip
        rows.append(job_row(job, NOW))
    return rows


class Sweeps:
    """Expired jobs with their objects, put in place before each measurement, and the two
    ways of deleting them; all on one event loop, which the database pool is bound to."""

    def __init__(self, base: Stack, count: int) -> None:
        env = base.env
        self.count = count
        self.loop = asyncio.new_event_loop()
        self.engine = create_engine(env["STENO_DATABASE_URL"])
        self.bucket = env["STENO_S3_BUCKET"]
        self.store = S3Store(env["STENO_S3_ENDPOINT"], access_key=env["STENO_S3_ACCESS_KEY"],
                             secret_key=env["STENO_S3_SECRET_KEY"], bucket=self.bucket)  # fmt: skip
        self.minio = base.s3.client()
        self.loop.run_until_complete(self.store.ensure_ready())
        self._threads = concurrent.futures.ThreadPoolExecutor(16)

    def measure(self, sweep: Callable[[], Awaitable[int]]) -> float:
        """Jobs deleted per second by ``sweep``, on a fresh set of expired jobs."""
        self.loop.run_until_complete(self._seed())
        start = time.perf_counter()
        deleted = self.loop.run_until_complete(sweep())
        elapsed = time.perf_counter() - start
        assert deleted == self.count, f"{sweep.__name__} deleted {deleted} of {self.count}"
        return deleted / elapsed

    async def _seed(self) -> None:
        rows = _rows(self.count, expired=True)
        async with self.engine.begin() as conn:
            await conn.execute(insert(jobs_table), rows)

        def put(key: str) -> None:
            self.minio.put_object(self.bucket, key, io.BytesIO(b"x" * 16), 16)

        await asyncio.gather(
            *(asyncio.wrap_future(self._threads.submit(put, str(r["object_key"]))) for r in rows)
        )

    async def batched(self) -> int:
        summary = await sweep_expired_audio(
            SqlJobRepository(self.engine), self.store, now=NOW, batch_size=BATCH
        )
        assert summary.failed == 0, summary.errors
        return summary.deleted

    async def one_by_one(self) -> int:
        """The baseline: a query, a DeleteObject and an UPDATE for each job."""
        deleted = 0
        query = (
            select(jobs_table.c.job_id, jobs_table.c.object_key)
            .where(_due())
            .order_by(jobs_table.c.job_id)
            .limit(1)
        )
        while True:
            async with self.engine.begin() as conn:
                row = (await conn.execute(query)).first()
            if row is None:
                return deleted
            await asyncio.to_thread(self.minio.remove_object, self.bucket, row.object_key)
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(jobs_table)
                    .where(jobs_table.c.job_id == row.job_id)
                    .values(audio_delete_time=NOW)
                )
            deleted += 1

    def sweep_plan(self, expired: int) -> str:
        """EXPLAIN of the sweep's query with ``expired`` jobs due among ten times as many
        whose audio is already deleted and as many whose audio is kept: the due ones must be
        found through the index of stored audio, not by walking every job."""

        async def explain() -> str:
            deleted = [
                {**row, "audio_delete_time": NOW} for row in _rows(expired * 10, expired=True)
            ]
            async with self.engine.begin() as conn:
                await conn.execute(insert(jobs_table), _rows(expired, expired=True))
                await conn.execute(insert(jobs_table), _rows(expired, expired=False))
                await conn.execute(insert(jobs_table), deleted)
                await conn.execute(text("ANALYZE jobs"))
            repository = SqlJobRepository(self.engine)
            query = repository.audio_expired_query(AudioExpiry(NOW), after=None, limit=BATCH)
            async with self.engine.begin() as conn:
                compiled = query.compile(
                    conn.sync_connection, compile_kwargs={"literal_binds": True}
                )
                plan = await conn.execute(text(f"EXPLAIN {compiled}"))
                return "\n".join(line for (line,) in plan)

        return self.loop.run_until_complete(explain())

    def close(self) -> None:
        self.loop.run_until_complete(self.engine.dispose())
        self.loop.close()
        self._threads.shutdown()


def _due() -> ColumnElement[bool]:
    return and_(jobs_table.c.audio_expire_time <= NOW, jobs_table.c.audio_delete_time.is_(None))


def run(base: Stack, scale: Scale) -> list[Figure]:
    count = scale.pick(full=10_000, quick=1000, tiny=50)
    sweeps = Sweeps(base, count)
    try:
        figure = ab_rounds(
            "janitor: expired jobs deleted per second",
            unit="jobs/s",
            baseline="one by one",
            measure_baseline=lambda: sweeps.measure(sweeps.one_by_one),
            measure_steno=lambda: sweeps.measure(sweeps.batched),
            rounds=scale.pick(full=3, quick=3, tiny=1),
            target=20,
            params={"jobs": count, "batch": BATCH},
        )
        plan = sweeps.sweep_plan(count)
    finally:
        sweeps.close()
    print("  the sweep's query plan on Postgres:")
    for line in plan.splitlines():
        print(f"    {line}")
    uses_index = "ix_jobs_stored_audio" in plan
    walks_index = Figure(
        "janitor: sweep query walks the stored-audio index",
        [1.0 if uses_index else 0.0],
        unit="",
        target=1.0,
        params={"plan": plan},
    )
    return [figure, walks_index]
