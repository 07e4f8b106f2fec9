"""``python -m steno.janitor``: one retention sweep, one reconciliation and a clean-up of
abandoned partial uploads, a JSON summary on stdout, then exit.

Exits 0 when every expired object was deleted and every stranded job put back on the queue,
non-zero otherwise, so a Kubernetes CronJob shows failed runs. Without a broker
(STENO_AMQP_URL unset) there is no queue to put jobs back on, and only the sweep runs.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from steno.common.adapters import open_database, open_job_queue, open_object_store
from steno.common.db import SqlJobRepository, SqlPartialUploadRepository
from steno.common.logs import configure_logging
from steno.common.settings import Settings
from steno.janitor.reconcile import ReconcileSummary, reconcile
from steno.janitor.sweep import SweepSummary, sweep_expired_audio
from steno.janitor.uploads import discard_abandoned_uploads


async def run_once(settings: Settings) -> tuple[SweepSummary, ReconcileSummary]:
    database = open_database(settings)
    jobs = SqlJobRepository(database)
    store = open_object_store(settings)
    now = datetime.now(UTC)
    try:
        swept = await sweep_expired_audio(
            jobs, store, now=now, batch_size=settings.cleanup_batch_size
        )
        await discard_abandoned_uploads(
            SqlPartialUploadRepository(database),
            jobs,
            store,
            idle_since=now - timedelta(hours=settings.stale_upload_hours),
            batch_size=settings.cleanup_batch_size,
            summary=swept,
        )
        reconciled = ReconcileSummary()
        if settings.amqp_url is not None:
            reconciled = await _reconcile(settings, jobs, now)
        return swept, reconciled
    finally:
        await database.dispose()


async def _reconcile(settings: Settings, jobs: SqlJobRepository, now: datetime) -> ReconcileSummary:
    queue = open_job_queue(settings)
    try:
        await queue.connect()
        return await reconcile(
            jobs,
            queue,
            now=now,
            publish_grace=timedelta(seconds=settings.publish_grace_seconds),
            batch_size=settings.cleanup_batch_size,
        )
    except Exception as exc:
        return ReconcileSummary(errors=[f"reconciliation failed: {exc}"])
    finally:
        await queue.close()


def summary(swept: SweepSummary, reconciled: ReconcileSummary) -> dict[str, Any]:
    """One JSON object: the sweep's counts, the reconciler's, and every error."""
    return {
        **swept.as_dict(),
        "published": reconciled.published,
        "requeued": reconciled.requeued,
        "errors": swept.errors + reconciled.errors,
    }


def main() -> int:
    settings = Settings()
    configure_logging(settings.log_level)
    swept, reconciled = asyncio.run(run_once(settings))
    print(json.dumps(summary(swept, reconciled)))
    return 0 if swept.ok and reconciled.ok else 1


if __name__ == "__main__":
    sys.exit(main())
