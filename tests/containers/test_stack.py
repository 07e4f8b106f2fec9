"""The stack as containers of the project's own images, run with the manifests' security
settings and memory limits against this machine's Postgres and RabbitMQ and an S3 server:
migrate, an API key, the gateway and the transcriber; an upload from the host's CLI; the
janitor's sweep; health; and a graceful stop of each long-running container."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import jiwer
import pytest
from botocore.exceptions import ClientError
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import S3Server
from tests.containers.conftest import TIMINGS, Images
from tests.containers.containers import Containers
from tests.containers.docker_engine import DockerEngine
from tests.containers.manifests import manifest_container
from tests.support import free_port, normalise, outer_env, wait_for

pytestmark = pytest.mark.containers

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples/hello.ogg"
SAMPLE_TEXT = "Hello from Steno. This recording was transcribed on your own machine."


@pytest.fixture
def containers(engine: DockerEngine, tmp_path: Path) -> Iterator[Containers]:
    running = Containers(engine, tmp_path / "steno.env")
    try:
        yield running
    finally:
        running.remove_all(tmp_path / "container-logs")


def test_the_images_run_the_stack(
    images: Images,
    containers: Containers,
    empty_database: str,
    amqp_url: str,
    queue_name: str,
    s3_server: S3Server,
    bucket: str,
) -> None:
    containers.env_file.write_text(
        "".join(
            f"{key}={value}\n"
            for key, value in {
                "STENO_DATABASE_URL": empty_database,
                "STENO_AMQP_URL": amqp_url,
                "STENO_AMQP_QUEUE": queue_name,
                "STENO_S3_ENDPOINT": s3_server.endpoint,
                "STENO_S3_ACCESS_KEY": s3_server.access_key,
                "STENO_S3_SECRET_KEY": s3_server.secret_key,
                "STENO_S3_BUCKET": bucket,
                "STENO_S3_REGION": "us-east-1",
                "STENO_GRPC_HOST": "127.0.0.1",
            }.items()
        )
    )
    migrate = manifest_container("migrate", "migrate")
    containers.run(images.janitor, migrate)
    # What the Deployments' init containers wait with, now that the schema is at head.
    wait_for_schema = manifest_container("gateway", "wait-for-schema")
    containers.run(images.janitor, wait_for_schema)
    created = containers.run(
        images.janitor, migrate, "steno", "keys", "create", "--tenant=acme", "--name=containers"
    )
    api_key = created.stdout.strip().splitlines()[-1]

    gateway_spec = manifest_container("gateway", "gateway")
    transcriber_spec = manifest_container("transcriber", "transcriber")
    gateway_port, gateway_metrics, health_port = free_port(), free_port(), free_port()
    http_port = free_port()
    gateway = containers.start(
        images.gateway,
        gateway_spec,
        "gateway",
        {
            "STENO_GRPC_PORT": str(gateway_port),
            "STENO_METRICS_PORT": str(gateway_metrics),
            "STENO_HTTP_PORT": str(http_port),
        },
    )
    transcriber = containers.start(
        images.transcriber,
        transcriber_spec,
        "transcriber",
        {"STENO_GRPC_PORT": str(health_port), "STENO_METRICS_PORT": "0"},
    )
    for container, port in ((gateway, gateway_port), (transcriber, health_port)):
        wait_for(
            lambda c=container, p=port: containers.running(c) and _serving(p),
            timeout=120,
            what=f"{container} to report SERVING",
        )

    started = time.monotonic()
    client_env = {
        **outer_env(),
        "STENO_SERVER": f"127.0.0.1:{gateway_port}",
        "STENO_API_KEY": api_key,
    }
    uploaded = _steno(
        client_env, "upload", str(SAMPLE), "--wait", "--retention-hours=0", "--timeout=120"
    )
    TIMINGS.append(("upload to transcript", time.monotonic() - started, None))
    assert jiwer.wer(normalise(SAMPLE_TEXT), normalise(uploaded.stdout)) <= 0.3, uploaded.stdout
    [listed] = _steno(client_env, "jobs", "--json").stdout.splitlines()
    job = json.loads(listed)
    assert job["state"] == "JOB_STATE_COMPLETED" and job["engine"] == "local", job
    assert 'steno_uploads_total{code="OK"} 1.0' in _scrape(gateway_metrics)
    # The HTTP API of the same container: health, and the engines it offers.
    assert _get(http_port, "/healthz", api_key)[0] == 200
    status, models = _get(http_port, "/v1/models", api_key)
    assert status == 200 and json.loads(models)["object"] == "list", models

    # The janitor's CronJob: the audio's retention (none) has run out.
    key = f"audio/{job['job_id']}"
    s3_server.client().head_object(Bucket=bucket, Key=key)
    janitor = manifest_container("janitor", "janitor")
    swept = json.loads(containers.run(images.janitor, janitor).stdout)
    assert swept["deleted"] == 1 and swept["failed"] == 0, swept
    with pytest.raises(ClientError) as missing:
        s3_server.client().head_object(Bucket=bucket, Key=key)
    assert missing.value.response["Error"]["Code"] == "404"

    for container, spec in ((transcriber, transcriber_spec), (gateway, gateway_spec)):
        took = containers.stop(container, spec.grace_seconds)
        TIMINGS.append((f"docker stop {container.rsplit('-', 2)[-2]}", took, None))
        state = containers.state(container)
        assert state["ExitCode"] == 0 and not state["OOMKilled"], (
            f"{container}: {state}\n{containers.logs(container)}"
        )
        assert took < spec.grace_seconds, f"{container} took {took:.1f} s to stop"


def _serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.RpcError:
            return False
    return answer.status == health_pb2.HealthCheckResponse.SERVING


def _steno(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The host's ``steno`` command, as a user would run it."""
    done = subprocess.run(
        [sys.executable, "-m", "steno.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"steno {' '.join(args)}: {done.stderr}"
    return done


def _scrape(port: int) -> str:
    return _get(port, "/metrics")[1]


def _get(port: int, path: str, api_key: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if api_key is not None:
        request.add_header("Authorization", f"Bearer {api_key}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, str(response.read().decode())
