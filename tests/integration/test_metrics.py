"""What the services' ``/metrics`` say, against what happened: a running gateway's per-RPC
counts and backlog gauges, the counts behind those gauges on the real database and broker,
the janitor's run pushed to a Pushgateway, and ``steno dev``'s one ``/metrics``."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from steno.cli.dev import DevSettings
from steno.client import StenoClient
from steno.common.broker import TranscriptionRequest
from steno.common.broker.amqp import AmqpJobQueue
from steno.common.broker.memory import InProcessJobQueue
from steno.common.db import SqlJobRepository, create_engine
from steno.common.db.job_counts import count_jobs_by_state
from steno.common.errors import BrokerUnavailable
from steno.common.jobs import JobState
from steno.v1 import job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb
from tests.fakes import make_job
from tests.pushgateway import fake_pushgateway
from tests.support import (
    AUDIO,
    free_port,
    logged,
    running,
    service_env,
    steno_dev,
    wait_for,
    wait_serving,
)

CHUNK = 64 * 1024
HANDLED = "grpc_server_handled_total"


class Scrape:
    """One scrape of a ``/metrics``: each sample's value by its name and labels."""

    def __init__(self, port: int) -> None:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            self.text = response.read().decode()
        self._samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(self.text)
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float | None:
        return self._samples.get((name, frozenset(labels.items())))

    def rpc(self, name: str, method: str, grpc_type: str = "unary", **labels: str) -> float | None:
        """A TranscriptionService method's sample of a ``grpc_server_*`` metric."""
        service = "steno.v1.TranscriptionService"
        return self.value(
            name, grpc_type=grpc_type, grpc_service=service, grpc_method=method, **labels
        )


def test_a_running_gateway_reports_its_calls_and_its_backlog(
    settings: DevSettings, queue_name: str, tmp_path: Path
) -> None:
    metrics_port = free_port()
    env = service_env(settings, STENO_GRPC_PORT="0", STENO_METRICS_PORT=str(metrics_port))
    log = tmp_path / "gateway.log"
    with running(["-m", "steno.gateway"], env, log) as gateway:
        port = logged(log, "gateway listening", "port", timeout=60, process=gateway)
        wait_serving(f"127.0.0.1:{port}", timeout=60, process=gateway)
        with StenoClient(f"127.0.0.1:{port}") as client:
            with pytest.raises(grpc.RpcError) as missing:
                client.get_job(str(uuid.uuid4()))
            assert missing.value.code() is grpc.StatusCode.NOT_FOUND
            job = client.upload(AUDIO / "speech.wav", chunk_size=CHUNK)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
            watch = stub.WatchJob(pb.WatchJobRequest(job_id=job.job_id))
            assert next(watch).job.state == job_pb2.JOB_STATE_QUEUED
            watch.cancel()

        def watch_ended() -> Scrape | None:
            scraped = Scrape(metrics_port)
            cancelled = scraped.rpc(HANDLED, "WatchJob", "server_stream", grpc_code="CANCELLED")
            return scraped if cancelled == 1 else None

        scraped = wait_for(watch_ended, timeout=10, what="the watch to end on the gateway")

    assert scraped.rpc("grpc_server_msg_sent_total", "WatchJob", "server_stream") == 1
    assert scraped.value("steno_job_watches") == 0

    assert scraped.rpc(HANDLED, "GetJob", grpc_code="NOT_FOUND") == 1
    assert scraped.rpc(HANDLED, "GetJob", grpc_code="OK") is None
    assert scraped.rpc(HANDLED, "UploadAudio", "client_stream", grpc_code="OK") == 1
    assert scraped.rpc("grpc_server_started_total", "UploadAudio", "client_stream") == 1
    assert scraped.rpc("grpc_server_handling_seconds_count", "UploadAudio", "client_stream") == 1
    chunks = math.ceil((AUDIO / "speech.wav").stat().st_size / CHUNK)
    received = scraped.rpc("grpc_server_msg_received_total", "UploadAudio", "client_stream")
    assert received == 1 + chunks, "the metadata message, then the chunks"
    assert scraped.value("steno_upload_bytes_total") == (AUDIO / "speech.wav").stat().st_size

    # Nothing transcribes here: the job waits, and so does its request.
    assert scraped.value("steno_jobs", state="QUEUED") == 1
    for state in ("PROCESSING", "COMPLETED", "FAILED", "CANCELLED"):
        assert scraped.value("steno_jobs", state=state) == 0
    assert scraped.value("steno_queue_messages", queue=queue_name) == 1
    assert scraped.value("steno_queue_messages", queue=f"{queue_name}.dead") == 0


@pytest.fixture
async def amqp_queue(amqp_url: str, queue_name: str) -> AsyncIterator[AmqpJobQueue]:
    queue = AmqpJobQueue(amqp_url, queue_name)
    await queue.connect()
    try:
        yield queue
    finally:
        await queue.close()


def request() -> TranscriptionRequest:
    return TranscriptionRequest(uuid.uuid4(), "default")


async def test_rabbitmq_counts_the_requests_waiting(
    amqp_queue: AmqpJobQueue, queue_name: str
) -> None:
    assert await amqp_queue.message_counts() == {queue_name: 0, f"{queue_name}.dead": 0}
    for _ in range(3):
        await amqp_queue.publish(request())
    assert await amqp_queue.message_counts() == {queue_name: 3, f"{queue_name}.dead": 0}


async def test_a_queue_deleted_under_the_gateway_is_a_broker_failure(
    amqp_queue: AmqpJobQueue, amqp_url: str, queue_name: str
) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        await (await connection.channel()).queue_delete(f"{queue_name}.dead")
    with pytest.raises(BrokerUnavailable, match="cannot count the queued messages"):
        await amqp_queue.message_counts()
    # The count's own channel failed, not the one requests are published on.
    await amqp_queue.publish(request())


async def test_the_in_process_queue_counts_its_requests_and_dead_letters() -> None:
    queue = InProcessJobQueue(name="steno.dev")
    await queue.publish(request())
    await queue.publish(request())
    assert await queue.message_counts() == {"steno.dev": 2, "steno.dev.dead": 0}


async def test_jobs_are_counted_by_state(sql_url: str) -> None:
    engine = create_engine(sql_url)
    try:
        jobs = SqlJobRepository(engine)
        for state in (JobState.QUEUED, JobState.QUEUED, JobState.COMPLETED, JobState.FAILED):
            await jobs.add(make_job(state=state))
        assert await count_jobs_by_state(engine) == {
            JobState.QUEUED: 2,
            JobState.PROCESSING: 0,
            JobState.COMPLETED: 1,
            JobState.FAILED: 1,
            JobState.CANCELLED: 0,
        }
    finally:
        await engine.dispose()


def run_janitor(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "steno.janitor"], env=env, capture_output=True, timeout=120
    )
    summary: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, summary


def test_a_janitor_run_pushes_its_results_to_the_pushgateway(settings: DevSettings) -> None:
    with fake_pushgateway() as gateway:
        code, summary = run_janitor(
            service_env(settings, STENO_METRICS_PUSHGATEWAY=gateway.address)
        )
    assert code == 0, summary
    [push] = gateway.pushes
    assert (push.method, push.path) == ("POST", "/metrics/job/steno-janitor")
    for name in (
        "steno_janitor_deleted_objects 0.0",
        "steno_janitor_deleted_bytes 0.0",
        "steno_janitor_errors 0.0",
        "steno_janitor_duration_seconds ",
        "steno_janitor_last_success_timestamp_seconds ",
    ):
        assert name in push.body


def test_a_janitor_run_that_cannot_push_says_so_and_fails(settings: DevSettings) -> None:
    address = f"127.0.0.1:{free_port()}"
    code, summary = run_janitor(service_env(settings, STENO_METRICS_PUSHGATEWAY=address))
    assert code == 1
    assert summary["deleted"] == 0 and summary["failed"] == 0
    [error] = summary["errors"]
    assert error.startswith(f"could not push the run's metrics to the Pushgateway at {address}")


def test_steno_dev_serves_every_services_metrics_on_one_port(tmp_path: Path) -> None:
    metrics_port = free_port()
    with steno_dev(tmp_path, STENO_METRICS_PORT=str(metrics_port)):
        # The janitor's first sweep runs as the process starts.
        def swept() -> Scrape | None:
            scraped = Scrape(metrics_port)
            return scraped if scraped.value("steno_janitor_errors") is not None else None

        scraped = wait_for(swept, timeout=30, what="steno dev's first retention sweep")
    ready = next(
        entry
        for entry in map(json.loads, (tmp_path / "dev.log").read_text().splitlines())
        if entry.get("message") == "steno dev ready"
    )
    assert ready["metrics"] == f"http://127.0.0.1:{metrics_port}/metrics"

    # The gateway's: the health checks that waited for it, and the backlog.
    health = {"grpc_type": "unary", "grpc_service": "grpc.health.v1.Health"}
    assert scraped.value("grpc_server_handled_total", **health, grpc_method="Check", grpc_code="OK")
    assert scraped.value("steno_jobs", state="QUEUED") == 0
    assert scraped.value("steno_queue_messages", queue="steno.transcription.requested") == 0
    # The transcriber's, before any job: its families are there, without samples yet.
    assert "# TYPE steno_jobs_finished_total counter" in scraped.text
    assert scraped.value("steno_transcribe_seconds_count") == 0
    # The janitor's.
    assert scraped.value("steno_janitor_errors") == 0
    assert scraped.value("steno_janitor_last_success_timestamp_seconds")
