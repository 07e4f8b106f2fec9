"""The janitor's runs as Prometheus metrics (``steno_janitor_*``): what the last run deleted
and discarded, how long it took, and when a run last succeeded.

A CronJob's process exits before anything could scrape it, so ``python -m steno.janitor``
pushes its run to a Pushgateway (STENO_METRICS_PUSHGATEWAY); ``steno dev``, which sweeps in a
long-running process, shows the same metrics on its ``/metrics``. They are gauges of the last
run, as a Pushgateway keeps the last push rather than a sum. A failed run carries no success
time, and is pushed with POST, which replaces only the metrics a push carries: the last
success time stays that of the last run that succeeded, for the "janitor has not succeeded
for a day" alert.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, pushadd_to_gateway
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from steno.common.sweep import SweepSummary
from steno.janitor.reconcile import ReconcileSummary

log = logging.getLogger(__name__)

# The Pushgateway's job label: one group for every janitor run, each push its latest.
PUSH_JOB = "steno-janitor"
PUSH_TIMEOUT = 10.0


@dataclass(frozen=True)
class JanitorRun:
    """One run's results; ``finished_at`` is a Unix time."""

    deleted_objects: int = 0
    deleted_bytes: int = 0
    aborted_uploads: int = 0
    published_jobs: int = 0
    requeued_jobs: int = 0
    requeued_webhooks: int = 0
    errors: int = 0
    duration_seconds: float = 0.0
    finished_at: float = 0.0

    @classmethod
    def of(
        cls, swept: SweepSummary, reconciled: ReconcileSummary, *, duration_seconds: float
    ) -> JanitorRun:
        return cls(
            deleted_objects=swept.deleted,
            deleted_bytes=swept.bytes_freed,
            aborted_uploads=swept.aborted_uploads,
            published_jobs=reconciled.published,
            requeued_jobs=reconciled.requeued,
            requeued_webhooks=reconciled.webhooks_requeued,
            errors=swept.failed + len(reconciled.errors),
            duration_seconds=duration_seconds,
            finished_at=time.time(),
        )

    @property
    def ok(self) -> bool:
        return self.errors == 0


# Each run figure's metric, and what it says.
_FIGURES = {
    "deleted_objects": "Audio objects the last janitor run deleted",
    "deleted_bytes": "Bytes of audio the last janitor run deleted",
    "aborted_uploads": "Abandoned partial uploads the last janitor run discarded",
    "published_jobs": "Jobs the last janitor run published that the broker never confirmed",
    "requeued_jobs": "Jobs whose lease ran out that the last janitor run handed back",
    "requeued_webhooks": "Webhook events never queued that the last janitor run queued",
    "errors": "Failures in the last janitor run",
    "duration_seconds": "How long the last janitor run took",
}


class JanitorRunMetrics(Collector):
    """The last run recorded, and the end of the last one that succeeded; nothing until a
    run is recorded."""

    def __init__(self) -> None:
        self._last: JanitorRun | None = None
        self._last_success: float | None = None

    def record(self, run: JanitorRun) -> None:
        self._last = run
        if run.ok:
            self._last_success = run.finished_at

    def describe(self) -> Iterator[Metric]:
        return self._families(None, None)

    def collect(self) -> Iterator[Metric]:
        return self._families(self._last, self._last_success)

    def _families(self, run: JanitorRun | None, last_success: float | None) -> Iterator[Metric]:
        for figure, documentation in _FIGURES.items():
            value = None if run is None else getattr(run, figure)
            yield _gauge(f"steno_janitor_{figure}", documentation, value)
        yield _gauge(
            "steno_janitor_last_run_timestamp_seconds",
            "When the last janitor run ended",
            None if run is None else run.finished_at,
        )
        yield _gauge(
            "steno_janitor_last_success_timestamp_seconds",
            "When the last janitor run without failures ended",
            last_success,
        )


def _gauge(name: str, documentation: str, value: float | None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    if value is not None:
        family.add_metric([], value)
    return family


# The periodic sweeps of this process (``steno dev``), on its /metrics.
SWEEPS = JanitorRunMetrics()
REGISTRY.register(SWEEPS)


async def recorded_sweep(sweep: Awaitable[SweepSummary]) -> SweepSummary:
    """Runs ``sweep`` and records it in :data:`SWEEPS`; one that raises is a failed run."""
    started = time.monotonic()
    swept = SweepSummary(failed=1)
    try:
        swept = await sweep
        return swept
    finally:
        duration = time.monotonic() - started
        SWEEPS.record(JanitorRun.of(swept, ReconcileSummary(), duration_seconds=duration))


def push_run(run: JanitorRun, gateway: str) -> str | None:
    """Pushes ``run`` to the Pushgateway at ``gateway`` (``host:port`` or a URL); returns
    why it could not, or None."""
    registry = CollectorRegistry()
    metrics = JanitorRunMetrics()
    metrics.record(run)
    registry.register(metrics)
    try:
        pushadd_to_gateway(gateway, job=PUSH_JOB, registry=registry, timeout=PUSH_TIMEOUT)
    except OSError as exc:
        log.error("could not push the run's metrics", extra={"pushgateway": gateway})
        return f"could not push the run's metrics to the Pushgateway at {gateway}: {exc}"
    return None
