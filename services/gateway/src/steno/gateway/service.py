"""Assembles the gateway from its adapters and runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from steno.common.adapters import Adapters, open_adapters
from steno.common.backlog_metrics import report_backlog
from steno.common.db.storage_stats import SqlStorageStats
from steno.common.disk_space import Disk
from steno.common.events.publishing import EventingJobRepository
from steno.common.faults import Faults
from steno.common.grpc_server import GrpcServer
from steno.common.metrics import serve_metrics
from steno.common.process import wait_for_shutdown
from steno.common.quotas import TenantQuotas
from steno.common.webhooks.delivery import WebhookQueueingJobRepository
from steno.gateway.admin_service import AdminApi
from steno.gateway.authentication import (
    Authenticator,
    AuthInterceptor,
    StaticKeys,
    refuse_unprotected,
)
from steno.gateway.http.app import HttpApi
from steno.gateway.http.server import HttpServer
from steno.gateway.http.transcriptions import model_ids
from steno.gateway.lexicon_service import LexiconApi
from steno.gateway.settings import GatewaySettings
from steno.gateway.tls import server_credentials
from steno.gateway.transcription_service import TranscriptionApi
from steno.gateway.uploads import Uploads
from steno.gateway.watch import Watches
from steno.v1 import admin_service_pb2, lexicon_pb2, transcription_service_pb2
from steno.v1.admin_service_pb2_grpc import add_AdminServiceServicer_to_server
from steno.v1.lexicon_pb2_grpc import add_LexiconServiceServicer_to_server
from steno.v1.transcription_service_pb2_grpc import add_TranscriptionServiceServicer_to_server

log = logging.getLogger(__name__)

DEFAULT_GRPC_PORT = 50051
DEFAULT_METRICS_PORT = 9090
SERVICE_NAMES = [
    transcription_service_pb2.DESCRIPTOR.services_by_name["TranscriptionService"].full_name,
    lexicon_pb2.DESCRIPTOR.services_by_name["LexiconService"].full_name,
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
]
# Seconds in-flight calls (uploads above all) get to finish on shutdown.
SHUTDOWN_GRACE = 30.0


@dataclass(frozen=True)
class Gateway:
    """The API servers (gRPC, and the OpenAI-compatible HTTP API), the uploads they may
    still be recording when asked to stop, and the job watches they end then."""

    server: GrpcServer
    uploads: Uploads
    watches: Watches
    http: HttpServer

    async def start(self, host: str, port: int, *, http_port: int = 0) -> int:
        """Serves gRPC on ``host:port`` (0 picks a free port), and HTTP on ``http_port`` if
        it is not 0 (then ``http.port`` is the port bound); returns gRPC's bound port."""
        bound = await self.server.start(host, port)
        if http_port:
            try:
                await self.http.start(host, http_port)
            except BaseException:
                await self.server.stop(0)
                raise
        return bound

    @contextlib.asynccontextmanager
    async def serving(self, host: str, port: int, *, http_port: int = 0) -> AsyncIterator[int]:
        """Serves (as :meth:`start`) for the block, which gets the bound gRPC port; stops
        gracefully when it ends, before the adapters may close."""
        bound = await self.start(host, port, http_port=http_port)
        try:
            yield bound
        finally:
            await self.stop(SHUTDOWN_GRACE)

    async def stop(self, grace: float) -> None:
        """NOT_SERVING, in-flight calls get ``grace`` seconds, then fully received uploads
        are recorded before the adapters may close. Watches end at once (their clients
        watch again elsewhere, and waiting HTTP requests get 503): they would otherwise
        hold the whole grace period."""
        self.watches.stop()
        await asyncio.gather(self.server.stop(grace), self.http.stop(grace))
        await self.uploads.drain()


def build_gateway(settings: GatewaySettings, adapters: Adapters) -> Gateway:
    """The gateway over the given adapters (also used by ``steno dev``). It publishes the
    events of its own writes (cancels above all, which queue their webhooks too), and
    follows everyone's for its watchers."""
    jobs = WebhookQueueingJobRepository(
        EventingJobRepository(adapters.jobs(), adapters.events, clock=adapters.clock),
        adapters.webhooks,
    )
    lexicons = adapters.lexicons()
    watches = Watches(jobs, adapters.events)
    limits = settings.uploads
    quotas = TenantQuotas(adapters.quotas(), settings.quotas.limits)
    uploads = Uploads(
        jobs,
        adapters.partial_uploads(),
        adapters.store,
        adapters.queue,
        part_size=limits.upload_part_bytes,
        max_bytes=limits.max_upload_bytes,
        max_concurrent=limits.max_concurrent_uploads,
        keep_partial_for=timedelta(hours=settings.retention.stale_upload_hours),
        quotas=quotas,
        faults=Faults(settings.fault_points),
        clock=adapters.clock,
    )
    api = TranscriptionApi(
        uploads,
        jobs,
        lexicons,
        store=adapters.store,
        watches=watches,
        default_engine=settings.engine_choice.engine,
        local_model=settings.local_model,
        default_retention=timedelta(hours=settings.retention.audio_retention_hours),
        idle_timeout=limits.upload_idle_timeout_seconds,
        webhook_policy=settings.webhooks.policy if settings.webhooks.enabled else None,
    )
    admin = AdminApi(
        adapters.api_keys(),
        jobs,
        adapters.store,
        SqlStorageStats(adapters.database),
        quotas,
        disks=_local_disks(settings),
        clock=adapters.clock,
    )
    authenticator = _authenticator(settings, adapters)
    server = GrpcServer(
        SERVICE_NAMES,
        [
            lambda grpc_server: add_TranscriptionServiceServicer_to_server(api, grpc_server),
            lambda grpc_server: add_LexiconServiceServicer_to_server(
                LexiconApi(lexicons, clock=adapters.clock), grpc_server
            ),
            lambda grpc_server: add_AdminServiceServicer_to_server(admin, grpc_server),
        ],
        interceptors=[AuthInterceptor(authenticator)],
        credentials=server_credentials(settings.serving_tls),
    )
    models = model_ids(settings.engine_choice.served_engines, settings.local_model)
    http = HttpApi(api, watches, server, authenticator, models)
    return Gateway(server, uploads, watches, HttpServer(http.app(), settings.serving_tls))


def _local_disks(settings: GatewaySettings) -> list[Disk]:
    """The directory store when audio is kept on this machine, and the temporary directory
    (the transcriber's scratch space when it runs here, as in ``steno dev``)."""
    disks = [settings.scratch_disk]
    if settings.store.endpoint is None:
        disks.insert(0, settings.objects_disk)
    return disks


def _authenticator(settings: GatewaySettings, adapters: Adapters) -> Authenticator | None:
    """None when authentication is disabled."""
    access = settings.access
    if not access.enabled:
        return None
    return Authenticator(adapters.api_keys(), static_keys(settings), clock=adapters.clock)


def static_keys(settings: GatewaySettings) -> StaticKeys:
    spec = settings.access.api_keys
    return StaticKeys(spec.get_secret_value() if spec else "")


async def run(settings: GatewaySettings) -> None:
    """Serves the API until SIGTERM, then drains in-flight calls."""
    max_uploads = settings.uploads.max_concurrent_uploads
    async with open_adapters(settings, max_uploads=max_uploads) as adapters:
        await refuse_unprotected(
            settings.access, settings.grpc_host, adapters.api_keys(), static_keys(settings)
        )
        gateway = build_gateway(settings, adapters)
        port = settings.grpc_port_or(DEFAULT_GRPC_PORT)
        serving = gateway.serving(settings.grpc_host, port, http_port=settings.http_port)
        async with serving as bound, report_backlog(adapters):
            serve_metrics(settings.metrics_port_or(DEFAULT_METRICS_PORT), settings.grpc_host)
            log.info("gateway listening", extra={"port": bound, "http_port": gateway.http.port})
            await wait_for_shutdown()
