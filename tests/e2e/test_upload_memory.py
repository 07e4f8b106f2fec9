"""Bounded memory: a 200 MB upload through the gateway process barely moves its peak RSS."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from steno.cli.dev import DevSettings
from steno.v1 import transcription_service_pb2 as pb
from steno.v1 import transcription_service_pb2_grpc
from tests.support import AUDIO, logged, running, service_env, wait_serving

MB = 1024 * 1024


def peak_rss(pid: int) -> int:
    """The process's high-water mark of resident memory, in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def wav_stream(
    size: int, chunk_size: int, digest: hashlib._Hash
) -> Iterator[pb.UploadAudioRequest]:
    """Metadata, then a WAV header and silence, generated on the fly (never held whole)."""
    yield pb.UploadAudioRequest(metadata=pb.UploadMetadata(filename="big.wav"))
    head = b"RIFF\xff\xff\xff\xffWAVEfmt "
    block = bytes(chunk_size)
    sent = 0
    while sent < size:
        chunk = head + block[len(head) :] if sent == 0 else block[: min(chunk_size, size - sent)]
        digest.update(chunk)
        sent += len(chunk)
        yield pb.UploadAudioRequest(chunk=chunk)


@pytest.mark.parametrize("chunk_size", [64 * 1024, 3 * MB], ids=["64KiB-chunks", "3MiB-chunks"])
def test_200_mb_upload_grows_gateway_peak_rss_by_less_than_100_mb(
    settings: DevSettings, tmp_path: Path, chunk_size: int
) -> None:
    env = {**service_env(settings), "STENO_GRPC_PORT": "0"}
    with running(["-m", "steno.gateway"], env, tmp_path / "gateway.log") as gateway:
        port = logged(tmp_path / "gateway.log", "gateway listening", "port", timeout=60,
                      process=gateway)  # fmt: skip
        address = f"127.0.0.1:{port}"
        wait_serving(address, timeout=60, process=gateway)
        with grpc.insecure_channel(address) as channel:
            stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
            # Warm up every code path first so the baseline includes them.
            warm = [pb.UploadAudioRequest(metadata=pb.UploadMetadata(filename="warm.wav"))]
            warm.append(pb.UploadAudioRequest(chunk=(AUDIO / "speech.wav").read_bytes()))
            stub.UploadAudio(iter(warm))
            baseline = peak_rss(gateway.pid)

            digest = hashlib.sha256()
            job = stub.UploadAudio(wav_stream(200 * MB, chunk_size, digest)).job
            growth = peak_rss(gateway.pid) - baseline

    print(
        f"gateway peak RSS {baseline / MB:.0f} MB → +{growth / MB:.1f} MB for a 200 MB upload "
        f"in {chunk_size // 1024} KiB chunks"
    )
    assert job.size_bytes == 200 * MB
    assert job.sha256 == digest.hexdigest()
    assert growth < 100 * MB
