"""Assembles the transcriber from its adapters and runs it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from steno.common.adapters import (
    open_database,
    open_job_events,
    open_job_queue,
    open_object_store,
)
from steno.common.broker import JobQueue
from steno.common.db import SqlJobRepository, SqlLexiconRepository
from steno.common.events.repository import EventingJobRepository
from steno.common.faults import Faults
from steno.common.grpc_server import GrpcServer
from steno.common.jobs import JobRepository
from steno.common.lexicon import LexiconRepository
from steno.common.metrics import serve_metrics
from steno.common.process import wait_for_shutdown
from steno.common.settings import Settings
from steno.common.storage import ObjectStore
from steno.transcriber.engines.local import LocalWhisperEngine
from steno.transcriber.engines.models import resolve_model
from steno.transcriber.engines.openai import OpenAIEngine
from steno.transcriber.engines.port import Engine
from steno.transcriber.pipeline import JobProcessor, RetryPolicy

log = logging.getLogger(__name__)

DEFAULT_GRPC_PORT = 50052
DEFAULT_METRICS_PORT = 9091


async def load_engines(settings: Settings) -> dict[str, Engine]:
    """The engines this worker runs (STENO_ENGINES, or just the default), by the name clients
    choose them with; models are loaded before any work is taken so the first job is not
    slow."""
    engines: dict[str, Engine] = {}
    for name in settings.served_engines:
        if name == "local":
            # Resolving may assemble a model on disk the first time: not on the event loop.
            model = await asyncio.to_thread(
                resolve_model, settings.whisper_model, settings.data_dir / "models"
            )
            local = LocalWhisperEngine(
                model,
                compute_type=settings.whisper_compute_type,
                beam_size=settings.whisper_beam_size,
                cpu_threads=settings.whisper_cpu_threads,
                vad_filter=settings.whisper_vad_filter,
                batch_min_seconds=settings.whisper_batch_min_seconds,
                batch_size=settings.whisper_batch_size,
                piece_seconds=settings.whisper_chunk_seconds,
            )
            await local.load()
            engines[name] = local
        else:
            engines[name] = OpenAIEngine(
                model=settings.openai_model, timeout=settings.openai_timeout_seconds
            )
    return engines


def build_processor(
    settings: Settings,
    jobs: JobRepository,
    lexicons: LexiconRepository,
    store: ObjectStore,
    engines: Mapping[str, Engine],
) -> JobProcessor:
    """The job pipeline as configured (also used by ``steno dev``)."""
    return JobProcessor(
        jobs,
        lexicons,
        store,
        engines,
        retry=RetryPolicy(
            max_attempts=settings.engine_max_attempts,
            first=settings.engine_retry_first_seconds,
            ceiling=settings.engine_retry_max_seconds,
        ),
        progress_interval=settings.progress_interval_seconds,
        lease_seconds=settings.lease_seconds,
        faults=Faults(settings.fault_points),
    )


async def run(settings: Settings) -> None:
    """Consumes requests until SIGTERM; health is SERVING once the model is loaded."""
    database = open_database(settings)
    store = open_object_store(settings)
    queue = open_job_queue(settings)
    events = open_job_events(settings)
    health = GrpcServer([], [])
    port = await health.start(settings.grpc_host, settings.grpc_port_or(DEFAULT_GRPC_PORT))
    try:
        await health.set_serving(False)
        serve_metrics(settings.metrics_port_or(DEFAULT_METRICS_PORT))
        engines = await load_engines(settings)
        await queue.connect()
        await events.connect()
        # Progress and results reach the jobs' watchers through the events of these writes.
        jobs = EventingJobRepository(SqlJobRepository(database), events)
        processor = build_processor(settings, jobs, SqlLexiconRepository(database), store, engines)
        await _consume(queue, processor, health, port)
    finally:
        await health.stop(5)
        await events.close()
        await queue.close()
        await database.dispose()


async def _consume(queue: JobQueue, processor: JobProcessor, health: GrpcServer, port: int) -> None:
    """Runs the consumers (requests, and the dead letters the queue gave up on) until
    SIGTERM; a consumer that dies takes the process with it, or health would go on saying
    SERVING."""
    consumers = {
        asyncio.create_task(queue.consume(processor.handle), name="consumer"),
        asyncio.create_task(queue.consume_dead_letters(processor.give_up), name="dead letters"),
    }
    shutdown = asyncio.create_task(wait_for_shutdown(), name="shutdown")
    await health.set_serving(True)
    log.info("transcriber consuming", extra={"health_port": port})
    try:
        await asyncio.wait({*consumers, shutdown}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await health.set_serving(False)
        for task in (*consumers, shutdown):
            task.cancel()
        ended = await asyncio.gather(*consumers, shutdown, return_exceptions=True)
    for outcome in ended:
        if isinstance(outcome, Exception):
            raise outcome
