"""``steno dev``: the whole of Steno in one process.

Gateway, transcriber and a janitor loop share one event loop and one set of adapters:
SQLite, a directory and an in-process queue unless ``STENO_*`` points elsewhere. Each is
the service's own code, composed here. The database is migrated on start, so a fresh
checkout needs nothing else, and the jobs the in-process queue lost when the last run
stopped are queued again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from steno.cli.dev_key import ensure_dev_key, usage
from steno.common.adapters import Adapters, describe, open_adapters
from steno.common.backlog_metrics import report_backlog
from steno.common.broker import JobQueue, TranscriptionRequest
from steno.common.db.migrate import upgrade
from steno.common.errors import CannotStart
from steno.common.jobs import JobRepository, JobState
from steno.common.metrics import serve_metrics
from steno.common.paging import PageCursor
from steno.common.process import run_until_stopped, start_telemetry, until_shutdown
from steno.common.webhooks.consumer import webhook_consumers
from steno.gateway.authentication import is_loopback, refuse_unprotected
from steno.gateway.http.server import HttpServer
from steno.gateway.service import (
    DEFAULT_GRPC_PORT,
    DEFAULT_METRICS_PORT,
    build_gateway,
    static_keys,
)
from steno.gateway.settings import GatewaySettings
from steno.janitor.service import sweep_periodically
from steno.janitor.settings import JanitorSettings
from steno.transcriber.service import build_processor, consumers, load_engines
from steno.transcriber.settings import TranscriberSettings

log = logging.getLogger("steno.dev")


class DevSettings(GatewaySettings, TranscriberSettings, JanitorSettings):
    """Everything the three services read, for the one process that is all three."""


def main(host: str, port: int | None) -> int:
    # The local engine runs in this process, so large buffers stay on glibc's heap (see
    # keep_large_buffers_off_the_heap): transcription speed matters more on a laptop than
    # the heap's high-water mark after a large upload.
    settings = DevSettings()
    start_telemetry("dev", settings)
    log.info("steno dev starting", extra=describe(settings))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    port = port if port is not None else settings.grpc_port_or(DEFAULT_GRPC_PORT)
    run_until_stopped("dev", serve(settings, host, port))
    return 0


async def serve(settings: DevSettings, host: str, port: int) -> None:
    """The gateway, the transcriber and the janitor loop over one set of adapters, until
    SIGTERM. In process, one job events instance carries the worker's progress to the
    gateway's watchers."""
    max_uploads = settings.uploads.max_concurrent_uploads
    async with open_adapters(settings, max_uploads=max_uploads) as adapters:
        key_file = await _local_key(settings, host, adapters)
        gateway = build_gateway(settings, adapters)
        # Bind first: a second `steno dev` on the same port and data must stop here, before
        # it touches the first one's jobs.
        async with gateway.serving(host, port) as bound, report_backlog(adapters):
            metrics_port = serve_dev_metrics(settings.metrics_port, host)
            asked = "http_port" in settings.model_fields_set
            http_url = await serve_dev_http(gateway.http, settings.http_port, host, asked=asked)
            if settings.broker.url is None:
                await requeue_unfinished(adapters.jobs(), adapters.queue)
            processor = build_processor(settings, adapters, await load_engines(settings))
            log.info(
                "steno dev ready",
                extra={
                    "address": f"{host}:{bound}",
                    "http": http_url or "off",
                    "metrics": f"http://{host}:{metrics_port}/metrics" if metrics_port else "off",
                    "data_dir": str(settings.data_dir),
                },
            )
            if key_file is not None:
                print(usage(key_file, f"{host}:{bound}", http_url), flush=True)
            await until_shutdown(
                *consumers(processor, adapters.queue),
                *webhook_consumers(settings.webhooks, adapters),
                sweep_periodically(settings, adapters, adapters.clock),
            )


async def serve_dev_http(http: HttpServer, port: int, host: str, *, asked: bool) -> str:
    """Serves the HTTP API on ``port`` (0: off); returns its URL, empty for none. As with
    metrics, the default port (8080) taken by another program leaves it off with a warning,
    while a port ``asked`` for with STENO_HTTP_PORT must be had."""
    if not port:
        return ""
    try:
        port = await http.start(host, port)
    except CannotStart as exc:
        if asked:
            raise
        log.warning("http API off", extra={"reason": str(exc)})
        return ""
    return f"http://{host}:{port}"


def serve_dev_metrics(port: int | None, host: str, default: int = DEFAULT_METRICS_PORT) -> int:
    """Serves /metrics on ``port``, or on ``default`` if none is set; returns the port, 0
    for none. On a laptop the default may be another program's (Prometheus's own is 9090):
    taken, it leaves metrics off with a warning rather than stopping ``steno dev``. A port
    asked for with STENO_METRICS_PORT must be had."""
    if port is not None:
        serve_metrics(port, host)
        return port
    try:
        serve_metrics(default, host)
    except CannotStart as exc:
        log.warning("metrics off", extra={"reason": str(exc)})
        return 0
    return default


async def _local_key(settings: DevSettings, host: str, adapters: Adapters) -> Path | None:
    """On loopback, the key file (made if need be); elsewhere, a refusal to serve unless
    some key exists or authentication is off."""
    keys = adapters.api_keys()
    if settings.access.enabled and is_loopback(host):
        return await ensure_dev_key(settings.data_dir, keys, clock=adapters.clock)
    await refuse_unprotected(settings.access, host, keys, static_keys(settings))
    return None


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
