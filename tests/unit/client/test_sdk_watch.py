"""``StenoClient.watch`` against a scripted WatchJob server: how it resumes a watch the server
ended as UNAVAILABLE, and what it gives up on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from steno.client import StenoClient, sdk
from steno.v1 import job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb

JOB_ID = "6f1c1d4e-8a43-4a51-9b44-0e0c8f7f2a10"
QUEUED = job_pb2.Job(job_id=JOB_ID, state=job_pb2.JOB_STATE_QUEUED)
HALFWAY = job_pb2.Job(job_id=JOB_ID, state=job_pb2.JOB_STATE_PROCESSING, progress=0.5)
DONE = job_pb2.Job(job_id=JOB_ID, state=job_pb2.JOB_STATE_COMPLETED, progress=1.0)

# One script per call: the jobs it sends, then UNAVAILABLE unless it ends on a terminal one.
Script = list[list[job_pb2.Job]]


class ScriptedWatch(transcription_service_pb2_grpc.TranscriptionServiceServicer):
    def __init__(self, script: Script, *, hold: bool = False) -> None:
        self._script = list(script)
        self._hold = hold
        self.calls = 0
        self.cancelled = threading.Event()

    def WatchJob(
        self, request: pb.WatchJobRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchJobResponse]:
        self.calls += 1
        context.add_callback(self.cancelled.set)
        jobs = self._script.pop(0) if self._script else []
        for job in jobs:
            yield pb.WatchJobResponse(job=job)
        if self._hold:
            self.cancelled.wait(10)
            return
        if not jobs or jobs[-1].state != job_pb2.JOB_STATE_COMPLETED:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the gateway is shutting down")


@pytest.fixture(autouse=True)
def _short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdk, "WATCH_RESUME_PAUSE", 0.01)


def serve(servicer: ScriptedWatch) -> tuple[grpc.Server, str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    transcription_service_pb2_grpc.add_TranscriptionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def watched(servicer: ScriptedWatch, **kwargs: float) -> list[job_pb2.Job]:
    server, address = serve(servicer)
    try:
        with StenoClient(address) as client:
            return list(client.watch(JOB_ID, **kwargs))
    finally:
        server.stop(0)


def test_a_watch_ended_as_unavailable_is_resumed_without_repeats() -> None:
    servicer = ScriptedWatch([[QUEUED], [QUEUED, HALFWAY], [HALFWAY, DONE]])
    assert watched(servicer) == [QUEUED, HALFWAY, DONE]
    assert servicer.calls == 3


def test_a_watch_that_stays_unavailable_gives_up() -> None:
    servicer = ScriptedWatch([[QUEUED], [], [], [], []])
    with pytest.raises(grpc.RpcError) as error:
        watched(servicer)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert servicer.calls == 1 + sdk.WATCH_RESUMES


def test_a_watch_that_runs_out_of_time_is_a_timeout() -> None:
    servicer = ScriptedWatch([[QUEUED]], hold=True)
    with pytest.raises(TimeoutError, match=f"job {JOB_ID} had not ended after 0.3 s"):
        watched(servicer, timeout=0.3)


def test_leaving_a_watch_early_cancels_it_on_the_server() -> None:
    servicer = ScriptedWatch([[QUEUED, HALFWAY]], hold=True)
    server, address = serve(servicer)
    try:
        with StenoClient(address) as client:
            for job in client.watch(JOB_ID):
                assert job == QUEUED
                break
            assert servicer.cancelled.wait(5)
    finally:
        server.stop(0)
