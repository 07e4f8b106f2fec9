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
import time
from typing import Any

from steno.common.logs import configure_logging
from steno.common.process import event_loop
from steno.common.sweep import SweepSummary
from steno.janitor.reconcile import ReconcileSummary
from steno.janitor.run_metrics import JanitorRun, push_run
from steno.janitor.service import run_once
from steno.janitor.settings import JanitorSettings


def summary(swept: SweepSummary, reconciled: ReconcileSummary) -> dict[str, Any]:
    """One JSON object: the sweep's counts, the reconciler's, and every error."""
    return {
        **swept.as_dict(),
        "published": reconciled.published,
        "requeued": reconciled.requeued,
        "errors": swept.errors + reconciled.errors,
    }


def main() -> int:
    settings = JanitorSettings()
    configure_logging(settings.log_level)
    started = time.monotonic()
    with asyncio.Runner(loop_factory=event_loop) as runner:
        swept, reconciled = runner.run(run_once(settings))
    result = summary(swept, reconciled)
    pushed = True
    if settings.metrics_pushgateway is not None:
        run = JanitorRun.of(swept, reconciled, duration_seconds=time.monotonic() - started)
        if failure := push_run(run, settings.metrics_pushgateway):
            result["errors"].append(failure)
            pushed = False
    print(json.dumps(result))
    return 0 if swept.ok and reconciled.ok and pushed else 1


if __name__ == "__main__":
    sys.exit(main())
