"""The janitor's run as steno_janitor_* metrics: pushed to a Pushgateway by a CronJob run,
recorded for /metrics by steno dev's periodic sweeps; the last success outlives failures."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from steno.common.sweep import SweepSummary
from steno.janitor.reconcile import ReconcileSummary
from steno.janitor.run_metrics import JanitorRun, push_run, recorded_sweep
from tests.pushgateway import fake_pushgateway
from tests.support import free_port

RUN = JanitorRun(
    deleted_objects=3,
    deleted_bytes=3000,
    aborted_uploads=1,
    published_jobs=2,
    requeued_jobs=1,
    requeued_webhooks=4,
    duration_seconds=1.5,
    finished_at=1_700_000_000,
)


def pushed_values(body: str) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def test_a_run_is_pushed_to_the_janitors_group() -> None:
    with fake_pushgateway() as gateway:
        assert push_run(RUN, gateway.address) is None
    [push] = gateway.pushes
    assert (push.method, push.path) == ("POST", "/metrics/job/steno-janitor")
    assert pushed_values(push.body) == {
        "steno_janitor_deleted_objects": 3,
        "steno_janitor_deleted_bytes": 3000,
        "steno_janitor_aborted_uploads": 1,
        "steno_janitor_published_jobs": 2,
        "steno_janitor_requeued_jobs": 1,
        "steno_janitor_requeued_webhooks": 4,
        "steno_janitor_errors": 0,
        "steno_janitor_duration_seconds": 1.5,
        "steno_janitor_last_run_timestamp_seconds": 1_700_000_000,
        "steno_janitor_last_success_timestamp_seconds": 1_700_000_000,
    }


def test_a_failed_run_leaves_the_last_success_alone() -> None:
    swept = SweepSummary(deleted=1)
    swept.record_failure("the store refused", job_id="j1")
    run = JanitorRun.of(swept, ReconcileSummary(errors=["no broker"]), duration_seconds=2)
    with fake_pushgateway() as gateway:
        assert push_run(run, gateway.address) is None
    values = pushed_values(gateway.pushes[0].body)
    assert values["steno_janitor_errors"] == 2
    assert values["steno_janitor_deleted_objects"] == 1
    assert "steno_janitor_last_success_timestamp_seconds" not in values


def test_an_unreachable_pushgateway_is_reported_not_raised() -> None:
    address = f"127.0.0.1:{free_port()}"
    failure = push_run(RUN, address)
    assert failure is not None
    assert failure.startswith(f"could not push the run's metrics to the Pushgateway at {address}")


def sample(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def test_a_periodic_sweep_is_recorded_for_metrics() -> None:
    async def sweep() -> SweepSummary:
        return SweepSummary(scanned=2, deleted=2, bytes_freed=500)

    assert (await recorded_sweep(sweep())).deleted == 2
    assert sample("steno_janitor_deleted_objects") == 2
    assert sample("steno_janitor_deleted_bytes") == 500
    assert sample("steno_janitor_errors") == 0
    succeeded = sample("steno_janitor_last_success_timestamp_seconds")
    assert succeeded == sample("steno_janitor_last_run_timestamp_seconds")

    async def broken() -> SweepSummary:
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError):
        await recorded_sweep(broken())
    assert sample("steno_janitor_errors") == 1
    assert sample("steno_janitor_deleted_objects") == 0
    assert sample("steno_janitor_last_success_timestamp_seconds") == succeeded
