"""The SDK sends an idempotent call again when the gateway is unavailable, after the delay
the gateway asks for, and never sends a mutation twice.

The server is the gateway's own error handling (``rpc_errors.rpc``) around handlers that
fail as scripted, so the UNAVAILABLE, its RetryInfo and its pushback trailer are the ones a
gateway sends when its database is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from steno.client import StenoClient
from steno.client.retries import RETRIED_METHODS
from steno.common.errors import DatabaseUnavailable
from steno.common.grpc_server import GrpcServer
from steno.gateway.rpc_errors import SOON, Context, rpc
from steno.gateway.service import SERVICE_NAMES
from steno.v1 import job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb
from tests.integration.test_access import SERVICES
from tests.rpc_details import reason_of, retry_delay

JOB_ID = "6f1c1d4e-8a43-4a51-9b44-0e0c8f7f2a10"


class Flaky(transcription_service_pb2_grpc.TranscriptionServiceServicer):
    """Answers its first ``failures`` calls as a gateway without its database does; records
    when each call arrived."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.arrivals: list[float] = []

    def _arrive(self) -> None:
        self.arrivals.append(time.monotonic())
        if len(self.arrivals) <= self.failures:
            raise DatabaseUnavailable("the database is unavailable: connection refused")

    @rpc()
    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.GetJobResponse:
        self._arrive()
        return pb.GetJobResponse(job=job_pb2.Job(job_id=request.job_id))

    @rpc()
    async def CancelJob(
        self, request: pb.CancelJobRequest, context: Context
    ) -> pb.CancelJobResponse:
        self._arrive()
        return pb.CancelJobResponse(job=job_pb2.Job(job_id=request.job_id))


@pytest.fixture
async def serve() -> AsyncIterator[object]:
    servers: list[GrpcServer] = []

    async def start(servicer: Flaky) -> str:
        server = GrpcServer(
            SERVICE_NAMES[:1],
            [lambda s: transcription_service_pb2_grpc.add_TranscriptionServiceServicer_to_server(
                servicer, s
            )],
        )  # fmt: skip
        servers.append(server)
        return f"127.0.0.1:{await server.start('127.0.0.1', 0)}"

    yield start
    for server in servers:
        await server.stop(0)


async def test_a_read_is_sent_again_after_the_pushback(serve) -> None:  # type: ignore[no-untyped-def]
    flaky = Flaky(failures=1)
    address = await serve(flaky)

    def read() -> tuple[job_pb2.Job, float]:
        with StenoClient(address, api_key="k" * 32) as client:
            started = time.monotonic()
            job = client.get_job(JOB_ID)
            return job, time.monotonic() - started

    job, took = await asyncio.to_thread(read)
    assert job.job_id == JOB_ID
    assert len(flaky.arrivals) == 2
    waited = flaky.arrivals[1] - flaky.arrivals[0]
    pushback = SOON.total_seconds()
    print(f"retried after {waited:.3f} s (pushback {pushback:g} s); the call took {took:.3f} s")
    # gRPC's own backoff would have waited at most 0.2 s.
    assert pushback <= waited < pushback + 5
    assert took >= pushback


async def test_a_mutation_is_not_sent_again(serve) -> None:  # type: ignore[no-untyped-def]
    flaky = Flaky(failures=1)
    address = await serve(flaky)

    def cancel() -> grpc.RpcError:
        with StenoClient(address, api_key="k" * 32) as client:
            with pytest.raises(grpc.RpcError) as refused:
                client.cancel_job(JOB_ID)
            return refused.value

    refused = await asyncio.to_thread(cancel)
    assert refused.code() is grpc.StatusCode.UNAVAILABLE
    assert reason_of(refused) == "DEPENDENCY_UNAVAILABLE"
    assert retry_delay(refused) == SOON
    assert len(flaky.arrivals) == 1


def test_every_retried_method_exists_and_takes_one_request() -> None:
    methods = {service.full_name: service.methods_by_name for service in SERVICES}
    for service, names in RETRIED_METHODS.items():
        for name in names:
            method = methods[service][name]
            assert not (method.client_streaming or method.server_streaming), name
