"""One upload, one trace: the client's call, the gateway's handling of it, the broker's
publish and delivery and the transcriber's job, across separate processes on Postgres,
RabbitMQ and S3; and every log line of the job carries that trace's id."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.instrumentation.grpc import client_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id, format_trace_id

from steno.cli.dev import DevSettings
from steno.client import StenoClient
from steno.v1 import job_pb2, transcription_service_pb2, transcription_service_pb2_grpc
from tests.conftest import S3Server
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

Entry = dict[str, Any]


def entries(log: Path) -> list[Entry]:
    """Every JSON object a service wrote, one a line: its log records (stderr) and the
    spans the console exporter printed (stdout)."""
    found = []
    for line in log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                found.append(entry)
    return found


def spans(log: Path) -> list[Entry]:
    return [entry for entry in entries(log) if "context" in entry and "kind" in entry]


def job_lines(log: Path, job_id: str) -> list[Entry]:
    return [entry for entry in entries(log) if "message" in entry and entry.get("job_id") == job_id]


def the_span(found: list[Entry], **match: str) -> Entry:
    """The one span whose fields (``kind``, ``name``, ``parent_id``) are ``match``."""
    matching = [span for span in found if all(span.get(k) == v for k, v in match.items())]
    assert len(matching) == 1, (match, [(s["name"], s["kind"]) for s in found])
    return matching[0]


def children(found: list[Entry], parent: Entry) -> list[Entry]:
    return [span for span in found if span["parent_id"] == parent["context"]["span_id"]]


def upload_requests(path: Path) -> Iterator[transcription_service_pb2.UploadAudioRequest]:
    yield transcription_service_pb2.UploadAudioRequest(
        metadata=transcription_service_pb2.UploadMetadata(filename=path.name)
    )
    data = path.read_bytes()
    for start in range(0, len(data), 64 * 1024):
        yield transcription_service_pb2.UploadAudioRequest(chunk=data[start : start + 64 * 1024])


def test_an_upload_is_one_trace_from_the_client_to_the_transcribers_commit(
    settings: DevSettings, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    # Spans printed as they end, instead of every 5 s.
    env = {
        **service_env(settings),
        "STENO_GRPC_PORT": "0",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    gateway_log, transcriber_log = tmp_path / "gateway.log", tmp_path / "transcriber.log"
    # The test's own client traces its calls, as an instrumented application would.
    client_spans = InMemorySpanExporter()
    client_tracing = TracerProvider()
    client_tracing.add_span_processor(SimpleSpanProcessor(client_spans))
    with (
        running(["-m", "steno.gateway"], env, gateway_log) as gateway,
        running(["-m", "steno.transcriber"], env, transcriber_log) as transcriber,
    ):
        gateway_port = logged(gateway_log, "gateway listening", "port", timeout=60, process=gateway)
        health_port = logged(
            transcriber_log, "transcriber consuming", "health_port", timeout=60, process=transcriber
        )
        address = f"127.0.0.1:{gateway_port}"
        wait_serving(address, timeout=30, process=gateway)
        wait_serving(f"127.0.0.1:{health_port}", timeout=30, process=transcriber)

        with grpc.insecure_channel(address) as plain:
            traced = intercept_channel(plain, client_interceptor(client_tracing))
            stub = transcription_service_pb2_grpc.TranscriptionServiceStub(traced)
            uploaded = stub.UploadAudio(upload_requests(AUDIO / "speech.wav"), timeout=30)
        job_id = uploaded.job.job_id
        with StenoClient(address) as client:
            job = client.wait(job_id, timeout=60)
        assert job.state == job_pb2.JOB_STATE_COMPLETED, job.error.message

        [client_span] = client_spans.get_finished_spans()
        trace_id = format_trace_id(client_span.context.trace_id)

        def in_trace(log: Path) -> list[Entry]:
            return [s for s in spans(log) if s["context"]["trace_id"] == f"0x{trace_id}"]

        def job_span_exported() -> bool:
            return any(s["name"] == "transcribe job" for s in in_trace(transcriber_log))

        wait_for(job_span_exported, timeout=10, what="the job's span on the transcriber's stdout")

    at_gateway, at_transcriber = in_trace(gateway_log), in_trace(transcriber_log)
    assert {s["resource"]["attributes"]["service.name"] for s in at_gateway} == {"steno-gateway"}
    assert {s["resource"]["attributes"]["service.name"] for s in at_transcriber} == {
        "steno-transcriber"
    }

    # client -> the gateway's UploadAudio -> its publish -> the transcriber's delivery.
    server = the_span(
        at_gateway,
        kind="SpanKind.SERVER",
        parent_id=f"0x{format_span_id(client_span.context.span_id)}",
    )
    assert server["name"] == "/steno.v1.TranscriptionService/UploadAudio"
    assert server["attributes"]["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    below_server = children(at_gateway, server)
    assert {s["kind"] for s in below_server} >= {"SpanKind.CLIENT"}, "S3 and database calls"
    # The request on the default exchange to the jobs' queue (the others are JobUpdated
    # events, on their topic exchange).
    [publish] = [
        s
        for s in below_server
        if s["attributes"].get("messaging.destination") == f",{settings.broker.queue}"
    ]
    assert (publish["kind"], publish["attributes"]["messaging.system"]) == (
        "SpanKind.PRODUCER",
        "rabbitmq",
    )
    assert publish["attributes"]["messaging.message.id"] == job_id
    consume = the_span(
        at_transcriber, kind="SpanKind.CONSUMER", parent_id=publish["context"]["span_id"]
    )

    # The job's span under the delivery, its steps under it, the commit's SQL under that.
    job_span = the_span(at_transcriber, name="transcribe job")
    assert job_span["parent_id"] == consume["context"]["span_id"]
    assert job_span["attributes"] == {
        "steno.job_id": job_id,
        "steno.tenant": "default",
        "steno.engine": "local",
        "steno.state": "COMPLETED",
        "steno.model": "tiny.en",
        "steno.audio_seconds": job.duration.ToTimedelta().total_seconds(),
    }
    steps = {
        name: the_span(at_transcriber, name=name, parent_id=job_span["context"]["span_id"])
        for name in ("download", "transcribe", "lexicon", "commit")
    }
    # The job's row written once, by SQLAlchemy, inside asyncpg's transaction.
    commit = children(at_transcriber, steps["commit"])
    assert [s["name"] for s in commit if "db.statement" in s["attributes"]] == [
        "BEGIN;",
        "UPDATE",
        "COMMIT;",
    ]
    # The client's GetJob calls, each read on asyncpg directly (the driver reads).
    everything = spans(gateway_log)
    get_jobs = [s for s in everything if s["name"].endswith("/GetJob")]
    assert get_jobs
    for get_job in get_jobs:
        [read, *_] = children(everything, get_job)
        assert read["attributes"]["db.statement"].startswith("SELECT jobs.job_id")

    # Every line either service logged about the job carries the trace's id.
    at_gateway_lines = job_lines(gateway_log, job_id)
    at_transcriber_lines = job_lines(transcriber_log, job_id)
    assert "upload accepted" in {line["message"] for line in at_gateway_lines}
    assert {"job started", "transcription finished", "job finished"} <= {
        line["message"] for line in at_transcriber_lines
    }
    for line in at_gateway_lines + at_transcriber_lines:
        assert line["trace_id"] == trace_id, line
        assert len(line["span_id"]) == 16, line
    finished = next(line for line in at_transcriber_lines if line["message"] == "job finished")
    assert finished["span_id"] == job_span["context"]["span_id"].removeprefix("0x")
    assert finished["duration_ms"] > 0


def test_the_janitor_traces_its_run_and_keeps_stdout_for_its_summary(
    settings: DevSettings, s3_server: S3Server, bucket: str
) -> None:
    """Its spans go to stderr with its logs, here in the text format."""
    env = {
        **service_env(settings),
        "OTEL_TRACES_EXPORTER": "console",
        "STENO_LOG_FORMAT": "text",
    }
    done = subprocess.run(
        [sys.executable, "-m", "steno.janitor"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr

    assert json.loads(done.stdout)["deleted"] == 0
    lines = done.stderr.splitlines()
    [run] = [json.loads(line) for line in lines if line.startswith('{"name": "janitor run"')]
    assert run["resource"]["attributes"]["service.name"] == "steno-janitor"
    [finished] = [line for line in lines if " steno.janitor: janitor run finished " in line]
    trace_id = run["context"]["trace_id"].removeprefix("0x")
    assert re.search(rf" deleted=0 .* duration_ms=\d+\.\d trace_id={trace_id} span_id=", finished)


def test_a_janitor_run_that_fails_ends_its_span_as_an_error(settings: DevSettings) -> None:
    pushgateway = f"127.0.0.1:{free_port()}"  # nothing listens: the run's push fails
    env = {
        **service_env(settings, STENO_METRICS_PUSHGATEWAY=pushgateway),
        "OTEL_TRACES_EXPORTER": "console",
    }
    done = subprocess.run(
        [sys.executable, "-m", "steno.janitor"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr

    lines = done.stderr.splitlines()
    [run] = [json.loads(line) for line in lines if line.startswith('{"name": "janitor run"')]
    assert run["status"]["status_code"] == "ERROR"
    assert pushgateway in run["status"]["description"]


def test_in_steno_dev_the_upload_and_its_transcription_are_one_trace(tmp_path: Path) -> None:
    """The in-process queue carries the trace context from the upload to the job; the
    streaming and refused calls are traced with their codes."""
    otel = {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "50"}
    with steno_dev(tmp_path, **otel) as address:
        key = (tmp_path / ".steno" / "api-key").read_text().strip()
        with StenoClient(address, api_key=key) as client:
            job_id = client.upload(AUDIO / "speech.wav").job_id
            *_, job = client.watch(job_id, timeout=60)
        assert job.state == job_pb2.JOB_STATE_COMPLETED, job.error.message
        stranger = StenoClient(address, api_key="stn_" + "0" * 32 + "_wrong")
        with stranger, pytest.raises(grpc.RpcError) as refused:
            stranger.get_job(job_id)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

        def ended(name: str) -> Entry | None:
            found = [s for s in spans(tmp_path / "dev.log") if s["name"].endswith(name)]
            return found[0] if found else None

        transcribed = wait_for(lambda: ended("transcribe job"), timeout=10, what="the job span")
        watched = wait_for(lambda: ended("/WatchJob"), timeout=10, what="WatchJob's span")
        get_job = wait_for(lambda: ended("/GetJob"), timeout=10, what="GetJob's span")
        # The janitor's loop sweeps once on start.
        swept = wait_for(lambda: ended("retention sweep"), timeout=10, what="the sweep's span")

    [upload] = [s for s in spans(tmp_path / "dev.log") if s["name"].endswith("/UploadAudio")]
    assert upload["resource"]["attributes"]["service.name"] == "steno-dev"
    assert transcribed["parent_id"] == upload["context"]["span_id"]
    assert transcribed["attributes"]["steno.job_id"] == job_id
    trace_id = upload["context"]["trace_id"].removeprefix("0x")
    lines = job_lines(tmp_path / "dev.log", job_id)
    assert {"upload accepted", "job finished"} <= {line["message"] for line in lines}
    assert {line["trace_id"] for line in lines} == {trace_id}

    assert watched["attributes"]["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    [sweep_line] = [
        line for line in entries(tmp_path / "dev.log") if line.get("message") == "retention sweep"
    ]
    assert sweep_line["trace_id"] == swept["context"]["trace_id"].removeprefix("0x")
    assert sweep_line["duration_ms"] >= 0

    # A refusal is the client's error: the code, but no ERROR status (as OTel's gRPC
    # conventions have it for a server).
    unauthenticated = grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert get_job["attributes"]["rpc.grpc.status_code"] == unauthenticated
