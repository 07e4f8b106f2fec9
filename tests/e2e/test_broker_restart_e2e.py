"""RabbitMQ stopped and restarted while jobs are queued and a worker is consuming: every job
completes, and no Steno process is restarted. The services run on a private RabbitMQ node
(tests/rabbitmq_node.py); the engine is the OpenAI one against the local fake API."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from steno.cli.dev import DevSettings
from steno.client import StenoClient
from steno.v1 import job_pb2
from tests.e2e.test_faults import gateway, transcriber
from tests.openai_server import FakeOpenAI
from tests.rabbitmq_node import PrivateRabbitMQ
from tests.support import AUDIO, service_env, wait_for


def test_jobs_complete_across_a_broker_restart_without_restarting_a_process(
    settings: DevSettings, tmp_path: Path, openai_server: FakeOpenAI, rabbitmq: PrivateRabbitMQ
) -> None:
    openai_server.latency = 0.3
    env = service_env(
        settings,
        STENO_AMQP_URL=rabbitmq.url,
        STENO_ENGINE="openai",
        OPENAI_BASE_URL=openai_server.base_url,
        OPENAI_API_KEY="sk-restart-test",
    )
    with (
        gateway(env, tmp_path / "gateway.log") as (gateway_process, address),
        transcriber(env, tmp_path / "transcriber.log") as worker,
        StenoClient(address) as client,
    ):
        before = [client.upload(AUDIO / "speech.ogg").job_id for _ in range(10)]
        wait_for(
            lambda: len(openai_server.requests) >= 2,
            timeout=60,
            what="the worker to be part way through the queue",
        )
        rabbitmq.stop()
        with pytest.raises(grpc.RpcError) as refused:
            client.upload(AUDIO / "speech.ogg", resume=0)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        rabbitmq.start()

        after = [
            wait_for(
                lambda: _upload_when_back(client),
                timeout=60,
                what="the gateway to publish again",
            )
            for _ in range(5)
        ]
        finished = [client.wait(job_id, timeout=120) for job_id in before + after]
        assert gateway_process.poll() is None and worker.poll() is None, "nothing restarted"

    states = [job_pb2.JobState.Name(job.state) for job in finished]
    print(f"{states.count('JOB_STATE_COMPLETED')} of {len(finished)} jobs COMPLETED")
    assert states == ["JOB_STATE_COMPLETED"] * 15
    assert len(client_jobs := {job.job_id for job in finished}) == 15, client_jobs


def _upload_when_back(client: StenoClient) -> str | None:
    """The new job's id, or None while the gateway cannot publish yet."""
    try:
        return client.upload(AUDIO / "speech.ogg").job_id
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.UNAVAILABLE:
            raise
        return None
