"""The janitor's work: one retention sweep (expired audio, then abandoned partial uploads)
and one reconciliation, as the CronJob runs them, or the sweep every
STENO_CLEANUP_INTERVAL_MINUTES, as ``steno dev`` does."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from opentelemetry.trace import Status, StatusCode

from steno.common.adapters import Storage, open_queue, open_storage
from steno.common.clock import Clock, utc_now
from steno.common.jobs import JobRepository
from steno.common.logs import Stopwatch
from steno.common.sweep import SweepSummary, sweep_expired_audio
from steno.common.tracing import tracer
from steno.janitor.abandoned_uploads import discard_abandoned_uploads
from steno.janitor.reconcile import ReconcileSummary, reconcile
from steno.janitor.run_metrics import recorded_sweep
from steno.janitor.settings import JanitorSettings

log = logging.getLogger(__name__)


async def run_once(
    settings: JanitorSettings, *, clock: Clock = utc_now
) -> tuple[SweepSummary, ReconcileSummary]:
    """One sweep and, with a broker to put jobs back on, one reconciliation."""
    now = clock()
    async with open_storage(settings) as storage:
        swept = await sweep(settings, storage, now=now)
        reconciled = ReconcileSummary()
        if settings.broker.url is not None:
            reconciled = await _reconcile(settings, storage.jobs(), now)
        return swept, reconciled


async def sweep(settings: JanitorSettings, storage: Storage, *, now: datetime) -> SweepSummary:
    """Deletes the audio whose retention ran out, then discards the partial uploads nobody
    continued; both counted in one summary."""
    jobs, batch_size = storage.jobs(), settings.cleanup.cleanup_batch_size
    summary = await sweep_expired_audio(jobs, storage.store, now=now, batch_size=batch_size)
    await discard_abandoned_uploads(
        storage.partial_uploads(),
        jobs,
        storage.store,
        idle_since=now - timedelta(hours=settings.retention.stale_upload_hours),
        batch_size=batch_size,
        summary=summary,
    )
    return summary


async def sweep_periodically(settings: JanitorSettings, storage: Storage, clock: Clock) -> None:
    """What the janitor CronJob does in a cluster, every STENO_CLEANUP_INTERVAL_MINUTES."""
    while True:
        stopwatch = Stopwatch()
        with tracer.start_as_current_span("retention sweep") as span:
            try:
                summary = await recorded_sweep(sweep(settings, storage, now=clock()))
                duration = {"duration_ms": stopwatch.elapsed_ms()}
                log.info("retention sweep", extra={**summary.as_dict(), **duration})
            except Exception as exc:
                # Handled here so that the loop goes on, out of the span's sight: recorded.
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                log.exception("retention sweep failed")
        await asyncio.sleep(settings.cleanup.cleanup_interval_minutes * 60)


async def _reconcile(
    settings: JanitorSettings, jobs: JobRepository, now: datetime
) -> ReconcileSummary:
    cleanup = settings.cleanup
    try:
        async with (
            open_queue(settings) as queue,
            open_queue(settings, settings.broker.webhooks_queue) as webhooks,
        ):
            return await reconcile(
                jobs,
                queue,
                now=now,
                publish_grace=timedelta(seconds=cleanup.publish_grace_seconds),
                webhooks=webhooks,
                webhook_grace=timedelta(seconds=cleanup.webhook_republish_grace_seconds),
                webhook_retry_for=timedelta(hours=settings.webhooks.retry_hours),
                batch_size=cleanup.cleanup_batch_size,
            )
    except Exception as exc:
        return ReconcileSummary(errors=[f"reconciliation failed: {exc}"])
