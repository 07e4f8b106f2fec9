"""A broken upload is continued, not sent again: a 50 MB upload through a gateway process on
Postgres, RabbitMQ and S3, broken at 60% (the connection dropped, or the gateway killed and
another started), and finished by the client SDK from the last stored part."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from steno.cli.dev import DevSettings
from steno.client import StenoClient
from steno.common.db import create_engine
from tests.conftest import S3Server
from tests.proxy import TcpProxy
from tests.support import logged, running, service_env, wait_serving

MB = 1024 * 1024
SIZE = 50 * MB


@pytest.fixture(scope="module")
def big_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 MB: a WAV header, then bytes that differ everywhere (a misplaced part shows)."""
    path = tmp_path_factory.mktemp("upload") / "big.wav"
    with path.open("wb") as out:
        out.write(b"RIFF\xff\xff\xff\xffWAVEfmt ")
        out.write(os.urandom(SIZE - 16))
    return path


@contextlib.contextmanager
def gateway(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    with running(["-m", "steno.gateway"], {**env, "STENO_GRPC_PORT": "0"}, log) as process:
        port = logged(log, "gateway listening", "port", timeout=60, process=process)
        wait_serving(f"127.0.0.1:{port}", timeout=60, process=process)
        yield process, port


@contextlib.asynccontextmanager
async def proxy_to(port: int) -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy("127.0.0.1", port).start()
    try:
        yield proxy
    finally:
        await proxy.stop()


@pytest.mark.parametrize("breakage", ["connection dropped", "gateway killed"])
async def test_a_50_mb_upload_broken_at_60_percent_is_continued_not_resent(
    settings: DevSettings, s3_server: S3Server, big_wav: Path, tmp_path: Path, breakage: str
) -> None:
    env = service_env(settings)
    request_id = f"resume-{uuid.uuid4()}"
    with gateway(env, tmp_path / "gateway-1.log") as (first, port):
        async with proxy_to(port) as proxy:
            dropped = proxy.drop_after(int(SIZE * 0.6))
            client = StenoClient(f"127.0.0.1:{proxy.port}")
            upload = asyncio.create_task(
                asyncio.to_thread(client.upload, big_wav, request_id=request_id)
            )
            await asyncio.wait_for(dropped.wait(), timeout=120)
            if breakage == "gateway killed":
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
                with gateway(env, tmp_path / "gateway-2.log") as (_, second_port):
                    proxy.target = ("127.0.0.1", second_port)
                    job = await asyncio.wait_for(upload, timeout=180)
            else:
                job = await asyncio.wait_for(upload, timeout=180)
            client.close()

    whole = await asyncio.to_thread(lambda: hashlib.sha256(big_wav.read_bytes()).hexdigest())
    print(
        f"{breakage}: {SIZE / MB:.0f} MB upload broken at 60%, bytes sent in total "
        f"{proxy.sent / MB:.1f} MB = {proxy.sent / SIZE:.2f}x the file"
    )
    assert job.size_bytes == SIZE
    assert job.sha256 == whole
    assert proxy.sent < 1.5 * SIZE
    assert proxy.sent > SIZE, "the break really happened mid-upload"

    # One job, its object exactly the file, and nothing of the upload left over.
    database = create_engine(settings.database_url)
    try:
        async with database.connect() as conn:
            jobs = (
                await conn.execute(
                    text("SELECT job_id, object_key FROM jobs WHERE request_id = :r"),
                    {"r": request_id},
                )
            ).all()
            partials = (await conn.execute(text("SELECT count(*) FROM partial_uploads"))).scalar()
    finally:
        await database.dispose()
    assert [str(row.job_id) for row in jobs] == [job.job_id]
    assert partials == 0
    s3 = s3_server.client()
    stored = s3.get_object(Bucket=settings.store.bucket, Key=jobs[0].object_key)["Body"]
    digest = hashlib.sha256()
    for block in iter(lambda: stored.read(MB), b""):
        digest.update(block)
    assert digest.hexdigest() == whole
    assert s3.list_multipart_uploads(Bucket=settings.store.bucket).get("Uploads", []) == []
