"""Tenants' quotas on the real gateway over Postgres, RabbitMQ and S3, and the per-tenant
lock under which the job insert checks them, on Postgres and SQLite.

Every refusal is RESOURCE_EXHAUSTED with a ``google.rpc.QuotaFailure`` naming the quota and
its limit, and is checked for what it leaves behind: no job row, no object, no unfinished
multipart upload, no record of a resumable upload.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from steno.cli.dev import DevSettings
from steno.common.db import (
    SqlJobRepository,
    SqlPartialUploadRepository,
    SqlQuotaRepository,
    create_engine,
)
from steno.common.jobs import JobState
from steno.common.quotas import QuotaExceeded, QuotaLimits, QuotaUsage
from steno.common.settings import QuotaSettings
from steno.common.storage import StoredPart
from steno.v1 import admin_service_pb2 as admin
from steno.v1 import admin_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb
from tests.fakes import T0, make_job, make_partial_upload
from tests.integration.conftest import Gateway
from tests.integration.test_upload_api import metadata_message, zeros_wav
from tests.rpc_details import detail_of, error_info, retry_delay
from tests.support import service_env, wait_for

MIB = 1024 * 1024
ObjectListing = Callable[[], tuple[list[str], list[str]]]


@pytest.fixture
def settings(settings: DevSettings) -> DevSettings:
    """The real parts, with a server-wide default quota of 50 jobs at once."""
    return settings.model_copy(update={"quotas": QuotaSettings(concurrent_jobs=50)})


@pytest.fixture
async def admin_stub(gateway: Gateway) -> AsyncIterator[admin_service_pb2_grpc.AdminServiceStub]:
    # Authentication is off in these tests: the caller is the default tenant's admin.
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        yield admin_service_pb2_grpc.AdminServiceStub(channel)


async def set_quota(stub: admin_service_pb2_grpc.AdminServiceStub, **limits: Any) -> None:
    await stub.SetTenantQuota(
        admin.SetTenantQuotaRequest(tenant="default", overrides=admin.QuotaLimits(**limits))
    )


def upload(gateway: Gateway, size: int, **metadata: object) -> pb.UploadAudioResponse:
    """Streams ``size`` bytes of WAV with the blocking client (run it in a thread)."""
    response: pb.UploadAudioResponse = gateway.sync_stub.UploadAudio(
        iter([metadata_message(**metadata), *zeros_wav(size)])
    )
    return response


def quota_failure(error: grpc.RpcError) -> error_details_pb2.QuotaFailure.Violation:
    """The one QuotaFailure violation a RESOURCE_EXHAUSTED carries, checked against its
    ErrorInfo; and it says when to try again."""
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    failure: error_details_pb2.QuotaFailure = detail_of(error, error_details_pb2.QuotaFailure)
    [violation] = failure.violations
    info = error_info(error)
    assert info.reason == "QUOTA_EXCEEDED"
    assert dict(info.metadata) == {
        "tenant": violation.quota_dimensions["tenant"],
        "quota": violation.quota_id,
        # A whole limit is the QuotaFailure's value, a fraction only in its description.
        "limit": str(violation.quota_value or violation.description.split()[-1]),
    }
    assert retry_delay(error) == timedelta(seconds=30)
    return violation


async def refused(gateway: Gateway, size: int, **metadata: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refusal:
        await asyncio.to_thread(upload, gateway, size, **metadata)
    return refusal.value


async def assert_only(gateway: Gateway, jobs: list[str], bucket_objects: ObjectListing) -> None:
    """Nothing but ``jobs``' rows and objects: no other row, object, multipart upload or
    record of a resumable upload."""
    assert await gateway.row_count() == len(jobs), "a refused upload left a job row"
    objects, uploads = bucket_objects()
    assert sorted(objects) == sorted(f"audio/{job}" for job in jobs), (
        "a refused upload left an object"
    )
    assert uploads == [], "a refused upload left an unfinished multipart upload"
    assert await gateway.partials.get("default", "resumable") is None


@pytest.mark.parametrize("request_id", ["", "resumable"], ids=["plain", "resumable"])
async def test_an_upload_past_the_stored_audio_quota_is_cut_off_as_it_streams(
    gateway: Gateway,
    admin_stub: admin_service_pb2_grpc.AdminServiceStub,
    bucket_objects: ObjectListing,
    request_id: str,
) -> None:
    await set_quota(admin_stub, stored_audio_bytes=12 * MIB)
    kept = await asyncio.to_thread(upload, gateway, 4 * MIB)

    # 9 MiB more would pass the 12: refused once the ninth MiB arrives, its stored part
    # and multipart upload discarded.
    error = await refused(gateway, 9 * MIB, request_id=request_id)
    violation = quota_failure(error)
    assert (violation.quota_id, violation.quota_value) == ("stored_audio_bytes", 12 * MIB)
    assert violation.subject == "tenant:default"
    assert "DeleteJob" in str(error.details()), "the message says how to make room"
    await assert_only(gateway, [kept.job.job_id], bucket_objects)

    # What fits still gets in.
    await asyncio.to_thread(upload, gateway, 7 * MIB, request_id=request_id)


async def test_a_full_quota_refuses_an_upload_before_it_stores_a_byte(
    gateway: Gateway,
    admin_stub: admin_service_pb2_grpc.AdminServiceStub,
    bucket_objects: ObjectListing,
) -> None:
    kept = await asyncio.to_thread(upload, gateway, MIB)
    await set_quota(admin_stub, stored_audio_bytes=MIB)
    violation = quota_failure(await refused(gateway, 64 * 1024))
    assert violation.quota_id == "stored_audio_bytes"
    await assert_only(gateway, [kept.job.job_id], bucket_objects)


async def test_the_concurrent_jobs_quota_counts_queued_and_processing_jobs(
    gateway: Gateway,
    admin_stub: admin_service_pb2_grpc.AdminServiceStub,
    bucket_objects: ObjectListing,
) -> None:
    await set_quota(admin_stub, concurrent_jobs=2)
    first = await asyncio.to_thread(upload, gateway, 64 * 1024)
    second = await asyncio.to_thread(upload, gateway, 64 * 1024)
    error = await refused(gateway, 64 * 1024)
    violation = quota_failure(error)
    assert (violation.quota_id, violation.quota_value) == ("concurrent_jobs", 2)
    assert "2 jobs queued or processing" in str(error.details())
    await assert_only(gateway, [first.job.job_id, second.job.job_id], bucket_objects)

    # An ended job no longer counts.
    await gateway.stub.CancelJob(pb.CancelJobRequest(job_id=first.job.job_id))
    await asyncio.to_thread(upload, gateway, 64 * 1024)


async def test_the_audio_hours_quota_counts_the_last_day_of_transcribed_audio(
    gateway: Gateway,
    admin_stub: admin_service_pb2_grpc.AdminServiceStub,
    bucket_objects: ObjectListing,
) -> None:
    done = await asyncio.to_thread(upload, gateway, 64 * 1024)
    job = await gateway.jobs.get(uuid.UUID(done.job.job_id))
    assert job is not None
    job.state, job.duration_seconds = JobState.COMPLETED, 1800.0  # as if transcribed
    assert await gateway.jobs.update(job, expected=JobState.QUEUED)

    await set_quota(admin_stub, audio_hours_per_day=0.5)
    violation = quota_failure(await refused(gateway, 64 * 1024))
    assert violation.quota_id == "audio_hours_per_day"
    assert violation.description == "audio_hours_per_day limit 0.5"
    await assert_only(gateway, [done.job.job_id], bucket_objects)

    await set_quota(admin_stub, audio_hours_per_day=1)
    await asyncio.to_thread(upload, gateway, 64 * 1024)


async def test_two_uploads_racing_for_the_last_free_bytes_let_exactly_one_in(
    gateway: Gateway,
    admin_stub: admin_service_pb2_grpc.AdminServiceStub,
    bucket_objects: ObjectListing,
) -> None:
    """Both are let in while the quota has room for either, and both stream all their
    bytes; only one may become a job."""
    await set_quota(admin_stub, stored_audio_bytes=3 * MIB)
    release = threading.Event()

    def held_upload() -> pb.UploadAudioResponse | grpc.RpcError:
        def messages() -> Iterator[pb.UploadAudioRequest]:
            yield metadata_message()
            for number, message in enumerate(zeros_wav(2 * MIB)):
                if number == 4:
                    release.wait(timeout=60)
                yield message

        try:
            response: pb.UploadAudioResponse = gateway.sync_stub.UploadAudio(messages())
            return response
        except grpc.RpcError as error:
            return error

    racers = [asyncio.create_task(asyncio.to_thread(held_upload)) for _ in range(2)]
    # Both past the quota check at their start: each has begun its multipart upload.
    await asyncio.to_thread(
        wait_for, lambda: len(bucket_objects()[1]) == 2, timeout=30, what="both uploads started"
    )
    release.set()
    outcomes = await asyncio.gather(*racers)

    accepted = [o for o in outcomes if isinstance(o, pb.UploadAudioResponse)]
    errors = [o for o in outcomes if isinstance(o, grpc.RpcError)]
    assert len(accepted) == 1 and len(errors) == 1, outcomes
    assert quota_failure(errors[0]).quota_id == "stored_audio_bytes"
    await assert_only(gateway, [accepted[0].job.job_id], bucket_objects)


async def test_tenant_quotas_are_overrides_over_the_servers_defaults(
    gateway: Gateway, admin_stub: admin_service_pb2_grpc.AdminServiceStub
) -> None:
    done = await asyncio.to_thread(upload, gateway, MIB)
    got = (await admin_stub.GetTenantQuota(admin.GetTenantQuotaRequest(tenant="default"))).quota
    assert not got.overrides.HasField("concurrent_jobs")
    assert got.limits == admin.QuotaLimits(
        stored_audio_bytes=0, concurrent_jobs=50, audio_hours_per_day=0
    ), "the defaults: 50 jobs from the settings, no other limit"
    assert got.usage == admin.QuotaUsage(stored_audio_bytes=done.job.size_bytes, concurrent_jobs=1)

    response = await admin_stub.SetTenantQuota(
        admin.SetTenantQuotaRequest(
            tenant="default", overrides=admin.QuotaLimits(concurrent_jobs=3, stored_audio_bytes=0)
        )
    )
    assert response.quota.overrides == admin.QuotaLimits(concurrent_jobs=3, stored_audio_bytes=0)
    assert response.quota.limits.concurrent_jobs == 3

    # Another tenant is untouched; replacing the overrides with none restores the default.
    other = await admin_stub.GetTenantQuota(admin.GetTenantQuotaRequest(tenant="globex"))
    assert other.quota.limits.concurrent_jobs == 50 and other.quota.usage == admin.QuotaUsage()
    cleared = await admin_stub.SetTenantQuota(admin.SetTenantQuotaRequest(tenant="default"))
    assert cleared.quota.overrides == admin.QuotaLimits()
    assert cleared.quota.limits.concurrent_jobs == 50


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (
            admin.SetTenantQuotaRequest(
                tenant="default", overrides=admin.QuotaLimits(concurrent_jobs=-1)
            ),
            "overrides.concurrent_jobs",
        ),
        (admin.SetTenantQuotaRequest(tenant="no spaces"), "tenant"),
        (admin.SetTenantQuotaRequest(), "tenant"),
    ],
)
async def test_a_bad_quota_request_is_invalid_argument(
    admin_stub: admin_service_pb2_grpc.AdminServiceStub,
    request_: admin.SetTenantQuotaRequest,
    field: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refusal:
        await admin_stub.SetTenantQuota(request_)
    assert refusal.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field.split(".")[-1] in str(refusal.value.details())


async def test_steno_tenants_set_quota_takes_effect_on_the_gateway(
    gateway: Gateway, admin_stub: admin_service_pb2_grpc.AdminServiceStub, settings: DevSettings
) -> None:
    def steno(*args: str) -> str:
        run = subprocess.run(
            [sys.executable, "-m", "steno.cli", "tenants", *args],
            env=service_env(settings),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    printed = await asyncio.to_thread(steno, "set-quota", "default", "--concurrent-jobs", "1")
    assert "concurrent_jobs\t1\t1\t0" in printed
    await asyncio.to_thread(upload, gateway, 64 * 1024)
    assert quota_failure(await refused(gateway, 64 * 1024)).quota_id == "concurrent_jobs"

    await asyncio.to_thread(steno, "set-quota", "default", "--concurrent-jobs", "default")
    got = await admin_stub.GetTenantQuota(admin.GetTenantQuotaRequest(tenant="default"))
    assert got.quota.overrides == admin.QuotaLimits()


# -- the job insert's own check, under the per-tenant lock --------------------------------


@pytest.fixture
async def repositories(
    sql_url: str,
) -> AsyncIterator[tuple[SqlJobRepository, SqlQuotaRepository, SqlPartialUploadRepository]]:
    url = sql_url
    engine = create_engine(url)
    yield (
        SqlJobRepository(engine, clock=lambda: T0),
        SqlQuotaRepository(engine),
        SqlPartialUploadRepository(engine),
    )
    await engine.dispose()


@pytest.mark.parametrize(
    ("limits", "fit"),
    [
        (QuotaLimits(stored_audio_bytes=3500), 3),
        (QuotaLimits(concurrent_jobs=2), 2),
    ],
    ids=["stored-bytes", "concurrent-jobs"],
)
async def test_racing_inserts_let_in_exactly_as_many_jobs_as_fit(
    repositories: tuple[SqlJobRepository, SqlQuotaRepository, SqlPartialUploadRepository],
    limits: QuotaLimits,
    fit: int,
) -> None:
    jobs, quotas, _ = repositories
    racers = [make_job(size_bytes=1000) for _ in range(8)]
    outcomes = await asyncio.gather(
        *(jobs.add(job, within=limits) for job in racers), return_exceptions=True
    )
    refusals = [o for o in outcomes if isinstance(o, QuotaExceeded)]
    assert [o for o in outcomes if o is not None and o not in refusals] == []
    assert len(refusals) == len(racers) - fit
    usage = await quotas.usage("default", T0)
    assert (usage.stored_audio_bytes, usage.concurrent_jobs) == (1000 * fit, fit)


async def test_usage_counts_kept_audio_unfinished_uploads_and_the_last_day(
    repositories: tuple[SqlJobRepository, SqlQuotaRepository, SqlPartialUploadRepository],
) -> None:
    jobs, quotas, partials = repositories
    ended = replace(make_job(size_bytes=100), state=JobState.COMPLETED, duration_seconds=7200.0)
    deleted = replace(ended, job_id=uuid.uuid4(), audio_delete_time=T0)
    old = replace(ended, job_id=uuid.uuid4(), create_time=T0 - timedelta(days=2))
    running = replace(make_job(size_bytes=10), state=JobState.PROCESSING)
    for job in (ended, deleted, old, running):
        await jobs.add(job)
    unfinished = make_partial_upload(parts=[StoredPart(1, 5000, "etag-1")])
    await partials.save(unfinished)

    usage = await quotas.usage("default", T0)
    assert usage.stored_audio_bytes == 100 + 100 + 10 + 5000, "deleted audio is not stored"
    assert usage.concurrent_jobs == 1
    assert usage.audio_hours_per_day == 4.0, "two jobs of two hours in the last day"
    mine = await quotas.usage("default", T0, excluding=unfinished.job_id)
    assert mine.stored_audio_bytes == 210, "an upload does not count its own stored parts twice"
    assert await quotas.usage("globex", T0) == QuotaUsage()
