"""Bounded memory: a 200 MB upload through the gateway process barely moves its peak RSS,
over gRPC and over the HTTP API's multipart form alike."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from steno.cli.dev import DevSettings
from steno.v1 import job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb
from tests.multipart_form import CONTENT_TYPE, END, part_head
from tests.support import (
    AUDIO,
    free_port,
    logged,
    running,
    service_env,
    wait_for,
    wait_serving,
)

MB = 1024 * 1024
# Two processes' peaks for the same work differ by a few MB (allocator arenas, the pages a
# thread's stack touched): the margin within which the HTTP path counts as no worse.
RSS_NOISE = 8 * MB


def peak_rss(pid: int) -> int:
    """The process's high-water mark of resident memory, in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def wav_chunks(size: int, chunk_size: int, digest: hashlib._Hash) -> Iterator[bytes]:
    """A WAV header and silence, generated on the fly (never held whole)."""
    head = b"RIFF\xff\xff\xff\xffWAVEfmt "
    block = bytes(chunk_size)
    sent = 0
    while sent < size:
        chunk = head + block[len(head) :] if sent == 0 else block[: min(chunk_size, size - sent)]
        digest.update(chunk)
        sent += len(chunk)
        yield chunk


def wav_stream(
    size: int, chunk_size: int, digest: hashlib._Hash
) -> Iterator[pb.UploadAudioRequest]:
    """Metadata, then the audio of :func:`wav_chunks`."""
    yield pb.UploadAudioRequest(metadata=pb.UploadMetadata(filename="big.wav"))
    for chunk in wav_chunks(size, chunk_size, digest):
        yield pb.UploadAudioRequest(chunk=chunk)


def form(filename: str, audio: Iterator[bytes]) -> Iterator[bytes]:
    """``audio`` as the file of a multipart form, as the openai client sends it: the fields,
    then the file."""
    yield part_head("model") + b"whisper-1\r\n" + part_head("file", filename)
    yield from audio
    yield b"\r\n" + END


@dataclass
class RunningGateway:
    pid: int
    stub: transcription_service_pb2_grpc.TranscriptionServiceStub
    http: str

    def warm_up(self) -> None:
        """One small upload down each path, so that the baseline includes their code."""
        speech = (AUDIO / "speech.wav").read_bytes()
        warm = [pb.UploadAudioRequest(metadata=pb.UploadMetadata(filename="warm.wav"))]
        self.stub.UploadAudio(iter([*warm, pb.UploadAudioRequest(chunk=speech)]))
        self.post("warm-http.wav", iter([speech]))

    def post(self, filename: str, audio: Iterator[bytes]) -> job_pb2.Job:
        """Posts ``audio`` to the HTTP API and hangs up once it is sent (no transcriber
        runs here, so the answer would never come); the job it became."""
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{self.http}/v1/audio/transcriptions",
                content=form(filename, audio),
                headers={"Content-Type": CONTENT_TYPE},
                timeout=httpx.Timeout(120, read=1),
            )

        def recorded() -> job_pb2.Job | None:
            jobs = self.stub.ListJobs(pb.ListJobsRequest()).jobs
            return next((job for job in jobs if job.filename == filename), None)

        return wait_for(recorded, timeout=30, what=f"the job of {filename}")


@contextlib.contextmanager
def gateway_process(settings: DevSettings, tmp_path: Path) -> Iterator[RunningGateway]:
    """``python -m steno.gateway`` with its HTTP API, warmed up."""
    http_port = free_port()
    env = {**service_env(settings), "STENO_GRPC_PORT": "0", "STENO_HTTP_PORT": str(http_port)}
    with running(["-m", "steno.gateway"], env, tmp_path / "gateway.log") as gateway:
        port = logged(tmp_path / "gateway.log", "gateway listening", "port", timeout=60,
                      process=gateway)  # fmt: skip
        address = f"127.0.0.1:{port}"
        wait_serving(address, timeout=60, process=gateway)
        with grpc.insecure_channel(address) as channel:
            stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
            yield RunningGateway(gateway.pid, stub, f"http://127.0.0.1:{http_port}")


def grpc_upload_growth(gateway: RunningGateway, chunk_size: int) -> int:
    """How far a 200 MB UploadAudio moves the gateway's peak RSS past its baseline."""
    baseline = peak_rss(gateway.pid)
    digest = hashlib.sha256()
    job = gateway.stub.UploadAudio(wav_stream(200 * MB, chunk_size, digest)).job
    assert job.size_bytes == 200 * MB
    assert job.sha256 == digest.hexdigest()
    return peak_rss(gateway.pid) - baseline


@pytest.mark.parametrize("chunk_size", [64 * 1024, 3 * MB], ids=["64KiB-chunks", "3MiB-chunks"])
def test_200_mb_upload_grows_gateway_peak_rss_by_less_than_100_mb(
    settings: DevSettings, tmp_path: Path, chunk_size: int
) -> None:
    with gateway_process(settings, tmp_path) as gateway:
        gateway.warm_up()
        growth = grpc_upload_growth(gateway, chunk_size)

    print(
        f"gateway peak RSS +{growth / MB:.1f} MB for a 200 MB upload "
        f"in {chunk_size // 1024} KiB chunks"
    )
    assert growth < 100 * MB


def test_a_200_mb_form_upload_grows_gateway_peak_rss_no_more_than_grpc_does(
    settings: DevSettings, tmp_path: Path
) -> None:
    """The same upload through UploadAudio, then as an HTTP form streamed from a generator,
    each in a gateway of its own; the form's body arrives in the pieces the socket reads,
    so the gRPC side sends 64 KiB chunks, the size of uvicorn's reads."""
    (tmp_path / "grpc").mkdir()
    with gateway_process(settings, tmp_path / "grpc") as gateway:
        gateway.warm_up()
        grpc_growth = grpc_upload_growth(gateway, 64 * 1024)
    (tmp_path / "http").mkdir()
    with gateway_process(settings, tmp_path / "http") as gateway:
        gateway.warm_up()
        baseline = peak_rss(gateway.pid)
        digest = hashlib.sha256()
        job = gateway.post("big-http.wav", wav_chunks(200 * MB, 64 * 1024, digest))
        http_growth = peak_rss(gateway.pid) - baseline

    print(
        f"gateway peak RSS for a 200 MB upload: +{grpc_growth / MB:.1f} MB over gRPC, "
        f"+{http_growth / MB:.1f} MB as an HTTP form"
    )
    assert job.size_bytes == 200 * MB and job.sha256 == digest.hexdigest()
    assert http_growth <= max(grpc_growth, 0) + RSS_NOISE
