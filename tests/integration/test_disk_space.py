"""The embedded stack's disk-space check: the real gateway over SQLite and the directory
store refuses audio its disk has no room for, before writing any of it, and reports the
disk and its thresholds in GetStorageStats."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from steno.cli.dev import DevSettings
from steno.common.adapters import open_adapters
from steno.common.db.migrate import upgrade
from steno.common.settings import DiskSettings
from steno.gateway.service import build_gateway
from steno.gateway.settings import AccessSettings
from steno.v1 import admin_service_pb2 as admin
from steno.v1 import admin_service_pb2_grpc, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb
from tests.integration.test_upload_api import metadata_message, zeros_wav
from tests.rpc_details import facts, retry_delay

# More free space than any disk has: every write would go past it.
EVERYTHING = 2**62


@contextlib.asynccontextmanager
async def embedded_gateway(data_dir: Path, disks: DiskSettings) -> AsyncIterator[str]:
    settings = DevSettings(
        data_dir=data_dir, disks=disks, access=AccessSettings(auth="disabled"), metrics_port=0
    )
    await asyncio.to_thread(data_dir.mkdir)
    await asyncio.to_thread(upgrade, settings.database_url)
    async with open_adapters(settings) as adapters:
        gateway = build_gateway(settings, adapters)
        async with gateway.serving("127.0.0.1", 0) as port:
            yield f"127.0.0.1:{port}"


@pytest.fixture
async def full_disk(tmp_path: Path) -> AsyncIterator[str]:
    full = DiskSettings(warning_free_bytes=EVERYTHING, critical_free_bytes=EVERYTHING)
    async with embedded_gateway(tmp_path / "data", full) as address:
        yield address


def files_under(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


@pytest.mark.parametrize("request_id", ["", "resumable"], ids=["plain", "resumable"])
async def test_an_upload_the_disk_has_no_room_for_is_refused_with_nothing_written(
    full_disk: str, tmp_path: Path, request_id: str
) -> None:
    with grpc.insecure_channel(full_disk) as channel:
        stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
        messages = [metadata_message(request_id=request_id), *zeros_wav(9 * 1024 * 1024)]
        with pytest.raises(grpc.RpcError) as refusal:
            await asyncio.to_thread(stub.UploadAudio, iter(messages))
        assert refusal.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert str(refusal.value.details()).startswith("storage full: the objects disk has")
        assert facts(refusal.value) == ("STORAGE_FULL", {"disk": "objects"})
        assert retry_delay(refusal.value) == timedelta(seconds=60)

        listed = await asyncio.to_thread(stub.ListJobs, pb.ListJobsRequest())
        assert list(listed.jobs) == [], "no job row"
        if request_id:
            with pytest.raises(grpc.RpcError) as status:
                await asyncio.to_thread(
                    stub.GetUploadStatus, pb.GetUploadStatusRequest(request_id=request_id)
                )
            assert status.value.code() is grpc.StatusCode.NOT_FOUND, "no record of the upload"
    written = await asyncio.to_thread(files_under, tmp_path / "data" / "objects")
    assert written == [], "no part or object written"


async def test_storage_stats_report_the_local_disks_and_their_thresholds(
    tmp_path: Path,
) -> None:
    disks = DiskSettings(warning_free_bytes=5000, critical_free_bytes=1000)
    async with (
        embedded_gateway(tmp_path / "data", disks) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        stats = await admin_service_pb2_grpc.AdminServiceStub(channel).GetStorageStats(
            admin.GetStorageStatsRequest()
        )
    assert [d.name for d in stats.disks] == ["objects", "scratch"]
    objects = stats.disks[0]
    assert objects.path == str(tmp_path / "data" / "objects")
    assert (objects.warning_free_bytes, objects.critical_free_bytes) == (5000, 1000)
    assert 0 < objects.free_bytes <= objects.total_bytes
