"""``python -m steno.janitor``: one retention sweep, one reconciliation and a clean-up of
abandoned partial uploads, a JSON summary on stdout, then exit.

Exits 0 when every expired object was deleted and every stranded job put back on the queue,
non-zero otherwise, so a Kubernetes CronJob shows failed runs. Without a broker
(STENO_AMQP_URL unset) there is no queue to put jobs back on, and only the sweep runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

from opentelemetry.trace import Status, StatusCode

from steno.common.logs import Stopwatch
from steno.common.process import event_loop, start_telemetry
from steno.common.sweep import SweepSummary
from steno.common.tracing import tracer
from steno.janitor.reconcile import ReconcileSummary
from steno.janitor.run_metrics import JanitorRun, push_run
from steno.janitor.service import run_once
from steno.janitor.settings import JanitorSettings

log = logging.getLogger("steno.janitor")


def summary(swept: SweepSummary, reconciled: ReconcileSummary) -> dict[str, Any]:
    """One JSON object: the sweep's counts, the reconciler's, and every error."""
    return {
        **swept.as_dict(),
        "published": reconciled.published,
        "requeued": reconciled.requeued,
        "webhooks_requeued": reconciled.webhooks_requeued,
        "errors": swept.errors + reconciled.errors,
    }


def main() -> int:
    settings = JanitorSettings()
    # stdout is the summary's: spans the console exporter writes go with the logs.
    start_telemetry("janitor", settings, console=sys.stderr)
    stopwatch = Stopwatch()
    with (
        tracer.start_as_current_span("janitor run") as span,
        asyncio.Runner(loop_factory=event_loop) as runner,
    ):
        swept, reconciled = runner.run(run_once(settings))
        result = summary(swept, reconciled)
        pushed = True
        if settings.metrics_pushgateway is not None:
            seconds = stopwatch.elapsed_ms() / 1000
            run = JanitorRun.of(swept, reconciled, duration_seconds=seconds)
            if failure := push_run(run, settings.metrics_pushgateway):
                result["errors"].append(failure)
                pushed = False
        log.info("janitor run finished", extra={**result, "duration_ms": stopwatch.elapsed_ms()})
        ok = swept.ok and reconciled.ok and pushed
        if not ok:
            span.set_status(Status(StatusCode.ERROR, "; ".join(result["errors"])))
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
