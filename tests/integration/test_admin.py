"""AdminService's operator controls on the real gateway over Postgres/SQLite, RabbitMQ and
S3: the retention sweep on demand, and storage statistics that agree with the store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from steno.client import StenoClient
from steno.janitor.service import sweep
from steno.v1 import admin_service_pb2 as pb
from steno.v1 import admin_service_pb2_grpc, job_pb2
from tests.integration.conftest import Gateway

SAMPLE = Path(__file__).parents[2] / "samples" / "hello.ogg"
ObjectListing = Callable[[], tuple[list[str], list[str]]]


@pytest.fixture
async def admin(gateway: Gateway) -> AsyncIterator[admin_service_pb2_grpc.AdminServiceStub]:
    # Authentication is off in these tests: the caller is the default tenant's admin.
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        yield admin_service_pb2_grpc.AdminServiceStub(channel)


def ended_job(client: StenoClient, retention: timedelta) -> job_pb2.Job:
    """An uploaded job, cancelled at once: it has ended and its audio retention runs."""
    job = client.upload(SAMPLE, audio_retention=retention)
    return client.cancel_job(job.job_id)


def zero() -> Duration:
    duration = Duration()
    duration.FromTimedelta(timedelta(0))
    return duration


async def test_a_dry_run_reports_what_a_cleanup_then_deletes(
    gateway: Gateway, admin: admin_service_pb2_grpc.AdminServiceStub, bucket_objects: ObjectListing
) -> None:
    with StenoClient(gateway.address) as client:
        due = await asyncio.to_thread(ended_job, client, timedelta(0))
        kept = await asyncio.to_thread(ended_job, client, timedelta(days=7))
        queued = await asyncio.to_thread(client.upload, SAMPLE)
    before = sorted(bucket_objects()[0])

    dry = await admin.RunCleanup(pb.RunCleanupRequest(dry_run=True))
    assert (dry.scanned, dry.deleted, dry.failed) == (1, 1, 0)
    assert list(dry.job_ids) == [due.job_id] and dry.bytes_freed == due.size_bytes
    assert sorted(bucket_objects()[0]) == before, "a dry run deletes nothing"
    assert (await gateway.jobs.get(uuid.UUID(due.job_id))).audio_delete_time is None  # type: ignore[union-attr]

    done = await admin.RunCleanup(pb.RunCleanupRequest())
    assert list(done.job_ids) == list(dry.job_ids) and done.bytes_freed == dry.bytes_freed
    assert sorted(bucket_objects()[0]) == sorted(set(before) - {f"audio/{due.job_id}"})
    assert await admin.RunCleanup(pb.RunCleanupRequest(dry_run=True)) == pb.RunCleanupResponse()

    # older_than applies a retention to jobs already stored; an ongoing job is never swept.
    other = await admin.RunCleanup(pb.RunCleanupRequest(older_than=zero(), tenant="globex"))
    assert other.scanned == 0, "another tenant's sweep leaves this one's jobs alone"
    forced = await admin.RunCleanup(pb.RunCleanupRequest(older_than=zero()))
    assert list(forced.job_ids) == [kept.job_id]
    assert bucket_objects()[0] == [f"audio/{queued.job_id}"]


async def test_a_cleanup_racing_the_janitor_deletes_each_job_once(
    gateway: Gateway, admin: admin_service_pb2_grpc.AdminServiceStub, bucket_objects: ObjectListing
) -> None:
    with StenoClient(gateway.address) as client:
        for _ in range(12):
            await asyncio.to_thread(ended_job, client, timedelta(0))
    ours, janitors = await asyncio.gather(
        admin.RunCleanup(pb.RunCleanupRequest()),
        sweep(gateway.settings, gateway.adapters, now=datetime.now(UTC)),
    )
    assert ours.failed == 0 and janitors.failed == 0, (ours.failures, janitors.errors)
    assert ours.deleted + janitors.deleted == 12, "each job counted by exactly one sweep"
    assert bucket_objects() == ([], [])


async def test_storage_stats_agree_with_the_store_and_the_database(
    gateway: Gateway,
    admin: admin_service_pb2_grpc.AdminServiceStub,
    bucket_objects: ObjectListing,
    s3_server,  # type: ignore[no-untyped-def]
    bucket: str,
) -> None:
    with StenoClient(gateway.address) as client:
        for _ in range(2):
            await asyncio.to_thread(ended_job, client, timedelta(0))
        await asyncio.to_thread(ended_job, client, timedelta(days=1))
        queued = await asyncio.to_thread(client.upload, SAMPLE)
    await admin.RunCleanup(pb.RunCleanupRequest())

    stats = await admin.GetStorageStats(pb.GetStorageStatsRequest())
    listed = s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    assert stats.total.audio_objects == len(listed) == 2
    assert stats.total.audio_bytes == sum(o["Size"] for o in listed)
    assert stats.total.partial_uploads == len(bucket_objects()[1]) == 0
    by_state = {job_pb2.JobState.Name(c.state): c.count for c in stats.total.jobs}
    assert by_state == {"JOB_STATE_QUEUED": 1, "JOB_STATE_CANCELLED": 3}
    [tenant] = stats.tenants
    assert tenant.tenant == "default" and tenant.audio_bytes == stats.total.audio_bytes
    stored = await gateway.jobs.get(uuid.UUID(queued.job_id))
    assert (
        stored is not None and stats.total.oldest_audio_time.ToDatetime(UTC) <= stored.create_time
    )
    assert stats.total.next_expire_time.ToDatetime(UTC) > datetime.now(UTC)
    [scratch] = stats.disks  # audio is in S3 here: no directory store to report
    assert scratch.name == "scratch" and 0 < scratch.free_bytes <= scratch.total_bytes


async def test_a_negative_older_than_is_refused(
    admin: admin_service_pb2_grpc.AdminServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await admin.RunCleanup(pb.RunCleanupRequest(older_than=Duration(seconds=-1)))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "older_than must not be negative" in (refused.value.details() or "")
