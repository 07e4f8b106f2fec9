"""``steno dev``: the whole of Steno in one process.

Gateway, transcriber and a janitor loop share one event loop and one set of adapters:
SQLite, a directory and an in-process queue unless ``STENO_*`` points elsewhere. The
database is migrated on start, so a fresh checkout needs nothing else, and the jobs the
in-process queue lost when the last run stopped are queued again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from steno.common.adapters import (
    describe,
    open_database,
    open_job_events,
    open_job_queue,
    open_object_store,
)
from steno.common.broker import JobQueue, TranscriptionRequest
from steno.common.db import SqlJobRepository, SqlLexiconRepository, SqlPartialUploadRepository
from steno.common.db.migrate import upgrade
from steno.common.events import JobEvents
from steno.common.events.repository import EventingJobRepository
from steno.common.jobs import JobRepository, JobState
from steno.common.lexicon import LexiconRepository
from steno.common.logs import configure_logging
from steno.common.paging import PageCursor
from steno.common.process import (
    keep_large_buffers_off_the_heap,
    run_until_stopped,
    wait_for_shutdown,
)
from steno.common.settings import Settings
from steno.common.storage import ObjectStore
from steno.common.uploads import PartialUploadRepository
from steno.gateway.service import DEFAULT_GRPC_PORT, SHUTDOWN_GRACE, build_gateway
from steno.janitor.sweep import sweep_expired_audio
from steno.janitor.uploads import discard_abandoned_uploads
from steno.transcriber.service import build_processor, load_engines

log = logging.getLogger("steno.dev")


def main(host: str, port: int | None) -> int:
    keep_large_buffers_off_the_heap()
    settings = Settings()
    configure_logging(settings.log_level)
    log.info("steno dev starting", extra=describe(settings))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url_or_default)
    port = port if port is not None else settings.grpc_port_or(DEFAULT_GRPC_PORT)
    run_until_stopped("dev", _serve(settings, host, port))
    return 0


async def _serve(settings: Settings, host: str, port: int) -> None:
    database = open_database(settings)
    store = open_object_store(settings)
    queue = open_job_queue(settings)
    # One instance for gateway and transcriber: in process, the worker's progress reaches
    # the gateway's watchers through it.
    events = open_job_events(settings)
    try:
        await store.ensure_ready()
        await queue.connect()
        await events.connect()
        jobs = SqlJobRepository(database)
        lexicons = SqlLexiconRepository(database)
        partials = SqlPartialUploadRepository(database)
        gateway = build_gateway(settings, jobs, lexicons, partials, store, queue, events)
        # Bind first: a second `steno dev` on the same port and data must stop here, before
        # it touches the first one's jobs.
        bound = await gateway.start(host, port)
        try:
            await _run(settings, jobs, lexicons, partials, store, queue, events, f"{host}:{bound}")
        finally:
            await gateway.stop(SHUTDOWN_GRACE)
    finally:
        await events.close()
        await queue.close()
        await database.dispose()


async def _run(
    settings: Settings,
    jobs: JobRepository,
    lexicons: LexiconRepository,
    partials: PartialUploadRepository,
    store: ObjectStore,
    queue: JobQueue,
    events: JobEvents,
    address: str,
) -> None:
    """The transcriber and the janitor loop, until SIGTERM."""
    if settings.amqp_url is None:
        await requeue_unfinished(jobs, queue)
    processor = build_processor(
        settings,
        EventingJobRepository(jobs, events),
        lexicons,
        store,
        await load_engines(settings),
    )
    tasks = [
        asyncio.create_task(queue.consume(processor.handle), name="transcriber"),
        asyncio.create_task(queue.consume_dead_letters(processor.give_up), name="dead letters"),
        asyncio.create_task(_janitor_loop(settings, jobs, partials, store), name="janitor"),
    ]
    log.info("steno dev ready", extra={"address": address, "data_dir": str(settings.data_dir)})
    try:
        await wait_for_shutdown()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def requeue_unfinished(jobs: JobRepository, queue: JobQueue) -> int:
    """Queues again every job an in-process queue lost when its process stopped.

    Only for a process that is the sole worker of its database: a PROCESSING job here was
    being transcribed by the previous run, so it is handed back first. Returns the count.
    """
    requeued = 0
    cursor = None
    unfinished = [JobState.QUEUED, JobState.PROCESSING]
    while page := await jobs.list_jobs(None, states=unfinished, limit=500, after=cursor):
        for job in page:
            if job.state is JobState.PROCESSING:
                job.release()
                await jobs.update(job, expected=JobState.PROCESSING)
            await queue.publish(TranscriptionRequest(job.job_id, job.tenant))
            requeued += 1
        cursor = PageCursor(page[-1].create_time, page[-1].job_id)
    if requeued:
        log.info("unfinished jobs queued again", extra={"count": requeued})
    return requeued


async def _janitor_loop(
    settings: Settings, jobs: JobRepository, partials: PartialUploadRepository, store: ObjectStore
) -> None:
    """What the janitor CronJob does in a cluster, every STENO_CLEANUP_INTERVAL_MINUTES."""
    while True:
        try:
            now = datetime.now(UTC)
            summary = await sweep_expired_audio(
                jobs, store, now=now, batch_size=settings.cleanup_batch_size
            )
            await discard_abandoned_uploads(
                partials,
                jobs,
                store,
                idle_since=now - timedelta(hours=settings.stale_upload_hours),
                batch_size=settings.cleanup_batch_size,
                summary=summary,
            )
            log.info("retention sweep", extra=summary.as_dict())
        except Exception:
            log.exception("retention sweep failed")
        await asyncio.sleep(settings.cleanup_interval_minutes * 60)
