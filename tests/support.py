"""Helpers shared by the integration and end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from steno.cli.dev import DevSettings
from steno.common.broker import JobQueue, TranscriptionRequest

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "tests" / "fixtures" / "audio"
SPEECH_TEXT = (AUDIO / "speech.txt").read_text().strip()


def wait_for(
    condition: Callable[[], T | None], *, timeout: float, interval: float = 0.1, what: str
) -> T:
    """Polls ``condition`` until it returns something truthy; fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def normalise(text: str) -> str:
    """Lowercase, punctuation as spaces, apostrophes dropped, whitespace collapsed."""
    text = re.sub(r"[^\w\s']|_", " ", text.lower()).replace("'", "")
    return " ".join(text.split())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def service_env(settings: DevSettings, **overrides: str) -> dict[str, str]:
    """The ``STENO_*`` environment that gives a subprocess the same settings."""
    env = outer_env()
    values = {
        "STENO_DATA_DIR": str(settings.data_dir),
        "STENO_DATABASE_URL": settings.database.url.get_secret_value()
        if settings.database.url
        else "",
        "STENO_AMQP_URL": settings.broker.url.get_secret_value() if settings.broker.url else "",
        "STENO_AMQP_QUEUE": settings.broker.queue,
        "STENO_S3_ENDPOINT": settings.store.endpoint or "",
        "STENO_S3_ACCESS_KEY": settings.store.access_key.get_secret_value(),
        "STENO_S3_SECRET_KEY": settings.store.secret_key.get_secret_value(),
        "STENO_S3_BUCKET": settings.store.bucket,
        "STENO_S3_REGION": settings.store.region or "",
        "STENO_METRICS_PORT": "0",
        "STENO_HTTP_PORT": "0",
        "STENO_GRPC_HOST": "127.0.0.1",
        "STENO_AUTH": settings.access.auth,
    }
    env.update({k: v for k, v in values.items() if v})
    env.update(overrides)
    return env


def logged(
    log: Path, message: str, key: str, *, timeout: float, process: subprocess.Popen[bytes]
) -> Any:
    """The ``key`` field of the first JSON log line saying ``message``, once it is written.

    Services started on port 0 say here which port they got, so tests never race other
    processes for a port picked in advance.
    """

    def find() -> Any:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode}")
        for line in log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("message") == message and key in entry:
                    return entry[key]
        return None

    return wait_for(find, timeout=timeout, interval=0.1, what=f"{message!r} in {log.name}")


def wait_serving(address: str, *, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Waits until the gRPC health service at ``address`` says SERVING."""

    def serving() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode} on start")
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.RpcError:
                return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    wait_for(serving, timeout=timeout, interval=0.2, what=f"{address} to be SERVING")


@contextlib.contextmanager
def running(
    args: list[str], env: dict[str, str], log: Path, *, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Runs a Steno process for the duration of the block, logging to ``log``."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *args], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd
        )
        try:
            yield process
        finally:
            stop_process(process)


def stop_process(process: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM, and SIGKILL if the process has not exited after ``grace`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class FailsOnce:
    """A consumer handler that fails its first call with ``error`` (by default as on a
    database blip), then succeeds; it notes when each call came."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error or RuntimeError("database blip")
        self.calls: list[TranscriptionRequest] = []
        self.times: list[float] = []
        self.succeeded = asyncio.Event()

    async def __call__(self, request: TranscriptionRequest) -> None:
        self.calls.append(request)
        self.times.append(time.monotonic())
        if len(self.calls) == 1:
            raise self.error
        self.succeeded.set()


async def consume_until_success(queue: JobQueue, handler: FailsOnce, timeout: float) -> None:
    """Runs ``queue``'s consumer until ``handler`` has succeeded once."""
    consumer = asyncio.create_task(queue.consume(handler))
    try:
        await asyncio.wait_for(handler.succeeded.wait(), timeout)
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer


def outer_env() -> dict[str, str]:
    """This process's environment without its STENO_* variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}


@contextlib.contextmanager
def steno_dev(workdir: Path, **settings: str) -> Iterator[str]:
    """``steno dev`` on a free port, run in ``workdir`` (its data in ``workdir/.steno``) with
    ``settings`` and none of this process's STENO_*; yields its address once it serves."""
    env = {**outer_env(), "STENO_METRICS_PORT": "0", "STENO_HTTP_PORT": "0", **settings}
    log = workdir / "dev.log"
    with running(["-m", "steno.cli", "dev", "--port", "0"], env, log, cwd=workdir) as process:
        address = logged(log, "steno dev ready", "address", timeout=120, process=process)
        wait_serving(address, timeout=60, process=process)
        yield address
