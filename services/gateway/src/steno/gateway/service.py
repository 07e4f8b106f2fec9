"""Assembles the gateway from its adapters and runs it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from steno.common.adapters import (
    open_database,
    open_job_events,
    open_job_queue,
    open_object_store,
)
from steno.common.broker import JobQueue
from steno.common.db import SqlJobRepository, SqlLexiconRepository, SqlPartialUploadRepository
from steno.common.events import JobEvents
from steno.common.events.repository import EventingJobRepository
from steno.common.faults import Faults
from steno.common.grpc_server import GrpcServer
from steno.common.jobs import JobRepository
from steno.common.lexicon import LexiconRepository
from steno.common.metrics import serve_metrics
from steno.common.process import wait_for_shutdown
from steno.common.settings import Settings
from steno.common.storage import ObjectStore
from steno.common.uploads import PartialUploadRepository
from steno.gateway.api import TranscriptionApi
from steno.gateway.lexicons import LexiconApi
from steno.gateway.uploads import Uploads
from steno.gateway.watch import Watches
from steno.v1 import lexicon_pb2, transcription_service_pb2
from steno.v1.lexicon_pb2_grpc import add_LexiconServiceServicer_to_server
from steno.v1.transcription_service_pb2_grpc import add_TranscriptionServiceServicer_to_server

log = logging.getLogger(__name__)

DEFAULT_GRPC_PORT = 50051
DEFAULT_METRICS_PORT = 9090
SERVICE_NAMES = [
    transcription_service_pb2.DESCRIPTOR.services_by_name["TranscriptionService"].full_name,
    lexicon_pb2.DESCRIPTOR.services_by_name["LexiconService"].full_name,
]
# Seconds in-flight calls (uploads above all) get to finish on shutdown.
SHUTDOWN_GRACE = 30.0


@dataclass(frozen=True)
class Gateway:
    """The API server, the uploads it may still be recording when asked to stop, and the
    job watches it ends then."""

    server: GrpcServer
    uploads: Uploads
    watches: Watches

    async def start(self, host: str, port: int) -> int:
        return await self.server.start(host, port)

    async def stop(self, grace: float) -> None:
        """NOT_SERVING, in-flight calls get ``grace`` seconds, then fully received uploads
        are recorded before the adapters may close. Watches end at once (their clients
        watch again elsewhere): they would otherwise hold the whole grace period."""
        self.watches.stop()
        await self.server.stop(grace)
        await self.uploads.drain()


def build_gateway(
    settings: Settings,
    jobs: JobRepository,
    lexicons: LexiconRepository,
    partials: PartialUploadRepository,
    store: ObjectStore,
    queue: JobQueue,
    events: JobEvents,
) -> Gateway:
    """The gateway over the given adapters (also used by ``steno dev``). ``jobs`` is the
    plain repository: the gateway publishes the events of its own writes (cancels above
    all) to ``events``, and follows everyone's for its watchers."""
    jobs = EventingJobRepository(jobs, events)
    watches = Watches(jobs, events)
    uploads = Uploads(
        jobs,
        partials,
        store,
        queue,
        part_size=settings.upload_part_bytes,
        max_bytes=settings.max_upload_bytes,
        max_concurrent=settings.max_concurrent_uploads,
        keep_partial_for=timedelta(hours=settings.stale_upload_hours),
        faults=Faults(settings.fault_points),
    )
    api = TranscriptionApi(
        uploads,
        jobs,
        lexicons,
        store=store,
        watches=watches,
        default_engine=settings.engine,
        default_retention=timedelta(hours=settings.audio_retention_hours),
        idle_timeout=settings.upload_idle_timeout_seconds,
    )
    server = GrpcServer(
        SERVICE_NAMES,
        [
            lambda grpc_server: add_TranscriptionServiceServicer_to_server(api, grpc_server),
            lambda grpc_server: add_LexiconServiceServicer_to_server(
                LexiconApi(lexicons), grpc_server
            ),
        ],
    )
    return Gateway(server, uploads, watches)


async def run(settings: Settings) -> None:
    """Serves the API until SIGTERM, then drains in-flight calls."""
    database = open_database(settings)
    store = open_object_store(settings)
    queue = open_job_queue(settings)
    events = open_job_events(settings)
    try:
        await store.ensure_ready()
        await queue.connect()
        await events.connect()
        gateway = build_gateway(
            settings,
            SqlJobRepository(database),
            SqlLexiconRepository(database),
            SqlPartialUploadRepository(database),
            store,
            queue,
            events,
        )
        port = await gateway.start(settings.grpc_host, settings.grpc_port_or(DEFAULT_GRPC_PORT))
        try:
            serve_metrics(settings.metrics_port_or(DEFAULT_METRICS_PORT))
            log.info("gateway listening", extra={"port": port})
            await wait_for_shutdown()
        finally:
            await gateway.stop(SHUTDOWN_GRACE)
    finally:
        await events.close()
        await queue.close()
        await database.dispose()
