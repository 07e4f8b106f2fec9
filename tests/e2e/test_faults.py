"""Things break, jobs survive: service processes on Postgres, RabbitMQ and S3, killed for
real at the worst moments."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from steno.cli.dev import DevSettings
from steno.client import StenoClient
from steno.v1 import job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb
from tests.openai_server import FakeOpenAI
from tests.support import AUDIO, logged, running, service_env, wait_for, wait_serving

# Short leases and beats, so a dead worker's job is taken over in seconds.
FAST_LEASES = {"STENO_LEASE_SECONDS": "3", "STENO_PROGRESS_INTERVAL_SECONDS": "0.5"}


@contextlib.contextmanager
def gateway(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    with running(["-m", "steno.gateway"], {**env, "STENO_GRPC_PORT": "0"}, log) as process:
        port = logged(log, "gateway listening", "port", timeout=60, process=process)
        address = f"127.0.0.1:{port}"
        wait_serving(address, timeout=60, process=process)
        yield process, address


@contextlib.contextmanager
def transcriber(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with running(["-m", "steno.transcriber"], {**env, "STENO_GRPC_PORT": "0"}, log) as process:
        logged(log, "transcriber consuming", "health_port", timeout=120, process=process)
        yield process


def long_recording(path: Path, repeats: int) -> Path:
    """The speech fixture said ``repeats`` times in a row: long enough to kill a worker
    in the middle of it."""
    with wave.open(str(AUDIO / "speech.wav"), "rb") as source:
        params, frames = source.getparams(), source.readframes(source.getnframes())
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        for _ in range(repeats):
            out.writeframes(frames)
    return path


def state(job: job_pb2.Job) -> str:
    return job_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_")


def test_a_worker_killed_mid_job_is_replaced_and_the_job_completes_once(
    settings: DevSettings, tmp_path: Path
) -> None:
    env = service_env(settings, **FAST_LEASES)
    audio = long_recording(tmp_path / "long.wav", repeats=12)
    with gateway(env, tmp_path / "gateway.log") as (_, address), StenoClient(address) as client:
        with transcriber(env, tmp_path / "first.log") as first:
            job = client.upload(audio)
            wait_for(
                lambda: (j := client.get_job(job.job_id)).progress > 0 and j,
                timeout=60,
                what="the first worker to be part way through",
            )
            first.kill()  # SIGKILL: no hand-back, no ack
            first.wait()
        killed = client.get_job(job.job_id)
        assert state(killed) == "PROCESSING" and killed.attempts == 1
        assert 0 < killed.progress < 1

        with transcriber(env, tmp_path / "second.log"):
            done = client.wait(job.job_id, timeout=180)

    assert state(done) == "COMPLETED", done.error.message
    assert done.attempts == 2, "taken over once"
    starts = [s.start.ToTimedelta() for s in done.segments]
    assert starts == sorted(starts) and len(set(starts)) == len(starts), "no segment twice"
    assert done.segments[-1].end.ToTimedelta().total_seconds() > 80
    # Twelve sayings; a job transcribed twice would say more. (Fewer come out when tiny.en
    # runs some together, or its temperature fallback on the repetitive audio drops some.)
    assert 1 <= done.original_text.lower().count("good morning") <= 12


def test_a_gateway_killed_between_commit_and_publish_loses_no_job(
    settings: DevSettings, tmp_path: Path
) -> None:
    env = service_env(settings)
    crashing = {**env, "STENO_FAULT_POINTS": "gateway-before-publish"}
    with gateway(crashing, tmp_path / "crashing.log") as (process, address):
        with StenoClient(address) as client, pytest.raises(grpc.RpcError) as cut:
            client.upload(AUDIO / "speech.wav", request_id="fault-1")
        assert cut.value.code() == grpc.StatusCode.UNAVAILABLE
        assert process.wait(timeout=30) == 86, "died at the fault point"

    # The job was recorded but never published: the reconciler publishes it.
    janitor = subprocess.run(
        [sys.executable, "-m", "steno.janitor"],
        env={**env, "STENO_PUBLISH_GRACE_SECONDS": "0"},
        capture_output=True,
        timeout=120,
    )
    assert janitor.returncode == 0, janitor.stderr.decode()
    assert b'"published": 1' in janitor.stdout

    with (
        gateway(env, tmp_path / "gateway.log") as (_, address),
        transcriber(env, tmp_path / "transcriber.log"),
        StenoClient(address) as client,
    ):
        # The reconciler's message alone gets the job done, before any client retry.
        [stranded] = list(client.iter_jobs())
        done = client.wait(stranded.job_id, timeout=120)
        assert state(done) == "COMPLETED", done.error.message
        # The client's retry with its request_id finds that job instead of making another.
        again = client.upload(AUDIO / "speech.wav", request_id="fault-1")
        assert again.job_id == stranded.job_id
        assert [j.job_id for j in client.iter_jobs()] == [again.job_id], "exactly one job"


def test_a_worker_stopped_mid_job_hands_it_back_and_exits_at_once(
    settings: DevSettings, tmp_path: Path
) -> None:
    """SIGTERM, as Kubernetes stops a pod: health goes NOT_SERVING, the job goes back to
    QUEUED at once (no lease to wait out), the process exits cleanly within seconds, not
    once the model has decoded on to its next segment, and the next worker finishes the
    job."""
    env = service_env(settings, STENO_PROGRESS_INTERVAL_SECONDS="0.5")
    audio = long_recording(tmp_path / "long.wav", repeats=12)
    with gateway(env, tmp_path / "gateway.log") as (_, address), StenoClient(address) as client:
        with transcriber(env, tmp_path / "first.log") as first:
            job = client.upload(audio)
            wait_for(
                lambda: client.get_job(job.job_id).progress > 0,
                timeout=60,
                what="the first worker to be transcribing the job",
            )
            first.terminate()
            assert first.wait(timeout=5) == 0
        handed_back = client.get_job(job.job_id)
        assert state(handed_back) == "QUEUED" and handed_back.attempts == 1

        with transcriber(env, tmp_path / "second.log"):
            done = client.wait(job.job_id, timeout=180)
    assert state(done) == "COMPLETED", done.error.message
    assert done.attempts == 2


def test_a_poison_job_is_dead_lettered_and_failed_while_others_flow(
    settings: DevSettings, tmp_path: Path, openai_server: FakeOpenAI
) -> None:
    """A file that kills every worker that takes it (here a fault point armed for its name)
    is given up on after its attempts: FAILED with the reason, its request dead-lettered,
    and the jobs behind it complete."""
    env = service_env(
        settings,
        STENO_ENGINE="openai",
        OPENAI_BASE_URL=openai_server.base_url,
        OPENAI_API_KEY="sk-poison-test",
        STENO_ENGINE_MAX_ATTEMPTS="2",
        STENO_LEASE_SECONDS="2",
        STENO_PROGRESS_INTERVAL_SECONDS="0.5",
        STENO_FAULT_POINTS="transcriber-before-engine=poison.ogg",
    )
    poison_file = tmp_path / "poison.ogg"
    poison_file.write_bytes((AUDIO / "speech.ogg").read_bytes())
    with gateway(env, tmp_path / "gateway.log") as (_, address), StenoClient(address) as client:
        poison = client.upload(poison_file)
        healthy = client.upload(AUDIO / "speech.ogg")
        crashes = 0
        while state(client.get_job(poison.job_id)) != "FAILED":
            assert crashes <= 3, "the poison job was never given up on"
            log = tmp_path / f"transcriber-{crashes}.log"
            with running(
                ["-m", "steno.transcriber"], {**env, "STENO_GRPC_PORT": "0"}, log
            ) as worker:
                wait_for(
                    lambda worker=worker, log=log: (
                        worker.poll() is not None
                        or (
                            state(client.get_job(poison.job_id)) == "FAILED"
                            and state(client.get_job(healthy.job_id)) == "COMPLETED"
                        )
                    ),
                    timeout=120,
                    what="the worker to die on the poison job, or both jobs to finish",
                )
                crashes += worker.poll() == 86
        failed = client.get_job(poison.job_id)
        done = client.get_job(healthy.job_id)

    print(f"poison job given up on after {crashes} crashed workers: {failed.error.message}")
    assert crashes == 2, "two attempts, then given up on"
    assert failed.error.code == "ABORTED"
    assert "its worker stopped 2 times" in failed.error.message
    logs = "".join(log.read_text() for log in tmp_path.glob("transcriber-*.log"))
    assert "request given up on; dead-lettered" in logs
    assert state(done) == "COMPLETED"
    assert [r.filename for r in openai_server.requests].count("poison.ogg") == 0


def test_a_gateway_stopped_mid_upload_finishes_it_first(
    settings: DevSettings, tmp_path: Path
) -> None:
    """SIGTERM while a client is streaming: health says NOT_SERVING at once, new calls are
    refused, the upload in flight completes, then the process exits 0."""
    env = service_env(settings)
    audio = (AUDIO / "speech.wav").read_bytes()
    halfway, go_on = threading.Event(), threading.Event()

    def stream() -> Iterator[pb.UploadAudioRequest]:
        yield pb.UploadAudioRequest(metadata=pb.UploadMetadata(filename="speech.wav"))
        middle = len(audio) // 2
        yield pb.UploadAudioRequest(chunk=audio[:middle])
        halfway.set()
        go_on.wait(30)
        yield pb.UploadAudioRequest(chunk=audio[middle:])

    with gateway(env, tmp_path / "gateway.log") as (process, address):
        channel = grpc.insecure_channel(address)
        stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
        upload = stub.UploadAudio.future(stream(), timeout=60)
        assert halfway.wait(30)
        process.terminate()
        wait_for(
            lambda: health_of(address) != "SERVING",
            timeout=10,
            what="the gateway to stop reporting SERVING",
        )
        go_on.set()
        job = upload.result().job
        assert process.wait(timeout=40) == 0
        channel.close()
    assert state(job) == "QUEUED" and job.size_bytes == len(audio)


def health_of(address: str) -> str:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.RpcError as exc:
            return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
