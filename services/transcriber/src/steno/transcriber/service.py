"""Assembles the transcriber from its adapters and runs it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from typing import Any

from steno.common.adapters import Adapters, open_adapters
from steno.common.broker import JobQueue
from steno.common.events.publishing import EventingJobRepository
from steno.common.faults import Faults
from steno.common.grpc_server import GrpcServer
from steno.common.metrics import serve_metrics
from steno.common.process import until_shutdown
from steno.common.retry_policy import RetryPolicy
from steno.common.webhooks.consumer import webhook_consumers
from steno.common.webhooks.delivery import WebhookQueueingJobRepository
from steno.transcriber.engines.local import LocalWhisperEngine
from steno.transcriber.engines.models import resolve_model
from steno.transcriber.engines.openai import OpenAIEngine
from steno.transcriber.engines.port import Engine
from steno.transcriber.pipeline import JobProcessor
from steno.transcriber.settings import TranscriberSettings

log = logging.getLogger(__name__)

DEFAULT_GRPC_PORT = 50052
DEFAULT_METRICS_PORT = 9091


async def load_engines(settings: TranscriberSettings) -> dict[str, Engine]:
    """The engines this worker runs (STENO_ENGINES, or just the default), by the name clients
    choose them with; models are loaded before any work is taken so the first job is not
    slow."""
    engines: dict[str, Engine] = {}
    for name in settings.engine_choice.served_engines:
        if name == "local":
            engines[name] = await _load_local(settings)
        else:
            engines[name] = OpenAIEngine(
                model=settings.openai.model, timeout=settings.openai.timeout_seconds
            )
    return engines


async def _load_local(settings: TranscriberSettings) -> LocalWhisperEngine:
    whisper = settings.whisper
    # Resolving may assemble a model on disk the first time: not on the event loop.
    model = await asyncio.to_thread(resolve_model, whisper.model, settings.data_dir / "models")
    local = LocalWhisperEngine(
        model,
        compute_type=whisper.compute_type,
        beam_size=whisper.beam_size,
        cpu_threads=whisper.cpu_threads,
        vad_filter=whisper.vad_filter,
        batch_min_seconds=whisper.batch_min_seconds,
        batch_size=whisper.batch_size,
        piece_seconds=whisper.chunk_seconds,
    )
    await local.load()
    return local


def build_processor(
    settings: TranscriberSettings, adapters: Adapters, engines: Mapping[str, Engine]
) -> JobProcessor:
    """The job pipeline as configured (also used by ``steno dev``). Progress and results
    reach the jobs' watchers through the events of its writes; a job's end queues its
    webhook."""
    runs = settings.runs
    return JobProcessor(
        WebhookQueueingJobRepository(
            EventingJobRepository(adapters.jobs(), adapters.events, clock=adapters.clock),
            adapters.webhooks,
        ),
        adapters.lexicons(),
        adapters.store,
        engines,
        retry=RetryPolicy(
            max_attempts=runs.engine_max_attempts,
            first=runs.engine_retry_first_seconds,
            ceiling=runs.engine_retry_max_seconds,
        ),
        progress_interval=runs.progress_interval_seconds,
        lease_seconds=runs.lease_seconds,
        scratch=settings.scratch_disk,
        faults=Faults(settings.fault_points),
        clock=adapters.clock,
    )


def consumers(processor: JobProcessor, queue: JobQueue) -> list[Coroutine[Any, Any, None]]:
    """What a transcriber runs: the requests, and the dead letters the queue gave up on."""
    return [queue.consume(processor.handle), queue.consume_dead_letters(processor.give_up)]


async def run(settings: TranscriberSettings) -> None:
    """Consumes requests until SIGTERM; health is SERVING once the model is loaded."""
    health = GrpcServer([], [])
    port = await health.start(settings.grpc_host, settings.grpc_port_or(DEFAULT_GRPC_PORT))
    try:
        await health.set_serving(False)
        serve_metrics(settings.metrics_port_or(DEFAULT_METRICS_PORT), settings.grpc_host)
        engines = await load_engines(settings)
        async with open_adapters(settings) as adapters:
            processor = build_processor(settings, adapters, engines)
            await health.set_serving(True)
            log.info("transcriber consuming", extra={"health_port": port})
            try:
                # A consumer that dies takes the process with it, or health would go on
                # saying SERVING.
                await until_shutdown(
                    *consumers(processor, adapters.queue),
                    *webhook_consumers(settings.webhooks, adapters),
                )
            finally:
                await health.set_serving(False)
    finally:
        await health.stop(5)
