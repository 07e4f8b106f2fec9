"""The real parts a benchmark runs against, each in a process of its own: an S3 server
(moto, or ``STENO_TEST_S3_ENDPOINT``), a database of its own on the machine's Postgres, a
queue of its own on its RabbitMQ, and Steno's services; all removed when the run ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

POSTGRES_URL = os.environ.get(
    "STENO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("STENO_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
S3_KEY, S3_SECRET = "bench", "bench-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_serving(address: str, timeout: float = 120) -> None:
    """Waits until the gRPC server at ``address`` reports SERVING."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{address} did not start serving in {timeout} s")
            time.sleep(0.1)


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def run_clients(commands: list[list[str]], *, counting: str) -> float:
    """Runs ``python -m bench.clients`` processes together, all starting at one moment;
    their aggregate rate: the sum of what each reports under ``counting``, over the time
    from their start to the last one's end."""
    results = run_clients_results(commands)
    total = sum(float(r[counting]) for r in results)
    elapsed = max(float(r["end"]) for r in results) - min(float(r["start"]) for r in results)
    return total / elapsed


def run_clients_results(commands: list[list[str]]) -> list[dict[str, Any]]:
    """Runs ``python -m bench.clients`` processes together, all starting at one moment;
    what each reported."""
    start_at = time.time() + 1.0  # every process is up and connected by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.clients", *command, "--start-at", str(start_at)],
            stdout=subprocess.PIPE,
        )
        for command in commands
    ]
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=900)
        if process.returncode:
            raise RuntimeError(f"benchmark client {process.args} failed")
        results.append(json.loads(out))
    return results


@dataclass(frozen=True)
class S3:
    endpoint: str
    access_key: str = S3_KEY
    secret_key: str = S3_SECRET

    def client(self):  # type: ignore[no-untyped-def]
        from minio import Minio

        return Minio(
            self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False
        )


@contextlib.contextmanager
def s3_server(workdir: Path) -> Iterator[S3]:
    external = os.environ.get("STENO_TEST_S3_ENDPOINT")
    if external:
        yield S3(
            external.removeprefix("http://"),
            os.environ.get("STENO_TEST_S3_ACCESS_KEY", S3_KEY),
            os.environ.get("STENO_TEST_S3_SECRET_KEY", S3_SECRET),
        )
        return
    port = free_port()
    with (workdir / "moto.log").open("wb") as log:
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the moto S3 server did not start")
            time.sleep(0.1)
        yield S3(f"127.0.0.1:{port}")
    finally:
        moto.terminate()
        moto.wait(timeout=10)


async def _postgres(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, migrated database on the machine's Postgres (its SQLAlchemy URL)."""
    from steno.common.db.migrate import upgrade

    name = f"steno_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres(f'CREATE DATABASE "{name}"'))
    url = urlsplit(POSTGRES_URL)._replace(scheme="postgresql+asyncpg", path=f"/{name}").geturl()
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass(frozen=True)
class Stack:
    """Settings, as STENO_* variables, for services on these parts."""

    env: dict[str, str]
    s3: S3
    workdir: Path

    def bucket(self) -> str:
        """The run's bucket, made if it is not there yet."""
        bucket = self.env["STENO_S3_BUCKET"]
        if not self.s3.client().bucket_exists(bucket):
            self.s3.client().make_bucket(bucket)
        return bucket

    def service(self, module: str, log: str, **settings: str) -> subprocess.Popen[bytes]:
        with (self.workdir / log).open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", module],
                env={**self.env, **settings},
                stdout=out,
                stderr=subprocess.STDOUT,
            )


@contextlib.contextmanager
def stack(workdir: Path, *, database: str | None = None) -> Iterator[Stack]:
    """The real parts for Steno's services: S3, Postgres (or ``database``) and RabbitMQ,
    with a bucket and a queue of this run's own."""
    run = uuid.uuid4().hex[:8]
    with s3_server(workdir) as s3, contextlib.ExitStack() as resources:
        url = database or resources.enter_context(postgres_database())
        env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
        env.update(
            STENO_DATABASE_URL=url,
            STENO_AMQP_URL=AMQP_URL,
            STENO_AMQP_QUEUE=f"steno.bench.{run}",
            STENO_AMQP_EVENTS_EXCHANGE=f"steno.bench.{run}.events",
            STENO_S3_ENDPOINT=s3.endpoint,
            STENO_S3_ACCESS_KEY=s3.access_key,
            STENO_S3_SECRET_KEY=s3.secret_key,
            STENO_S3_BUCKET=f"bench-{run}",
            STENO_METRICS_PORT="0",
            STENO_GRPC_HOST="127.0.0.1",
            STENO_AUTH="disabled",
            STENO_LOG_LEVEL="WARNING",
        )
        try:
            yield Stack(env, s3, workdir)
        finally:
            asyncio.run(_drop_queues(env["STENO_AMQP_QUEUE"], env["STENO_AMQP_EVENTS_EXCHANGE"]))


async def _drop_queues(queue: str, exchange: str) -> None:
    """Removes the run's queues (with their dead-letter and retry queues) and exchange."""
    import aio_pika

    from steno.common.broker.amqp_queues import RETRY_DELAYS, retry_queue_name

    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for name in (queue, f"{queue}.dead", *(retry_queue_name(queue, d) for d in RETRY_DELAYS)):
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
        with contextlib.suppress(Exception):
            await channel.exchange_delete(exchange)


@contextlib.contextmanager
def bare_server(module: str, *args: str) -> Iterator[str]:
    """A baseline server, ``python -m MODULE PORT ARGS…``, on a free port; yields its address
    once it has printed that it serves."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module, str(port), *args], stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline() != b"serving\n":
            raise RuntimeError(f"{module} did not start (exit status {process.wait()})")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def gateway(base: Stack, **settings: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A gateway process on a free port; yields its address and process once it serves."""
    port = free_port()
    process = base.service("steno.gateway", "gateway.log", STENO_GRPC_PORT=str(port), **settings)
    try:
        address = f"127.0.0.1:{port}"
        wait_serving(address)
        yield address, process
    finally:
        process.terminate()
        process.wait(timeout=60)
