"""Gateway peak memory against upload size: does an upload's memory cost stay flat?

Run with ``make bench`` (or ``python -m bench.upload_memory``). Needs RabbitMQ at
``$STENO_AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1:5672/``); starts its own moto
S3 server. For each size, a fresh gateway process takes one upload streamed in 64 KiB
chunks, and the growth of its peak RSS (VmHWM) over its idle peak is reported, with the
ratio to the growth for the smallest (baseline) upload. Flat memory means ratios near 1
while the size grows 32x.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc

from bench.stack import free_port, peak_rss, wait_serving
from steno.v1 import transcription_service_pb2 as pb
from steno.v1 import transcription_service_pb2_grpc

MB = 1024 * 1024
SIZES_MB = (8, 64, 256)
CHUNK = 64 * 1024


def requests(size: int) -> Iterator[pb.UploadAudioRequest]:
    yield pb.UploadAudioRequest(metadata=pb.UploadMetadata(filename="bench.wav"))
    head = b"RIFF\xff\xff\xff\xffWAVEfmt "
    block = bytes(CHUNK)
    yield pb.UploadAudioRequest(chunk=head + block[len(head) :])
    for _ in range(size // CHUNK - 1):
        yield pb.UploadAudioRequest(chunk=block)


def measure(size: int, env: dict[str, str], log: Path) -> int:
    """Peak RSS growth of a fresh gateway taking one ``size``-byte upload."""
    port = free_port()
    env = {**env, "STENO_GRPC_PORT": str(port), "STENO_S3_BUCKET": f"bench-{uuid.uuid4().hex}"}
    with log.open("ab") as out:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "steno.gateway"], env=env, stdout=out, stderr=out
        )
    try:
        address = f"127.0.0.1:{port}"
        wait_serving(address)
        with grpc.insecure_channel(address) as channel:
            stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
            stub.UploadAudio(requests(CHUNK * 4))  # warm every code path
            idle = peak_rss(gateway.pid)
            stub.UploadAudio(requests(size))
            return peak_rss(gateway.pid) - idle
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="steno-bench-"))
    s3_port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env.update(
        STENO_AMQP_URL=os.environ.get("STENO_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        STENO_AMQP_QUEUE=f"steno.bench.{uuid.uuid4().hex[:8]}",
        STENO_S3_ENDPOINT=f"127.0.0.1:{s3_port}",
        STENO_S3_ACCESS_KEY="bench",
        STENO_S3_SECRET_KEY="bench-secret",
        STENO_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'steno.db'}",
        STENO_METRICS_PORT="0",
        STENO_GRPC_HOST="127.0.0.1",
        STENO_AUTH="disabled",
    )
    try:
        subprocess.run(
            [sys.executable, "-m", "steno.cli", "migrate"], env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        growth = {size: measure(size * MB, env, workdir / "gateway.log") for size in SIZES_MB}
    finally:
        moto.terminate()
        moto.wait(timeout=10)
    baseline = growth[SIZES_MB[0]]
    print(f"{'upload':>8}  {'peak RSS growth':>16}  {'vs baseline':>11}  {'growth / size':>13}")
    for size, grew in growth.items():
        print(
            f"{size:>5} MB  {grew / MB:>13.1f} MB  {grew / baseline:>10.2f}x  "
            f"{grew / (size * MB):>13.3f}"
        )
    largest = SIZES_MB[-1]
    print(
        f"\n{largest // SIZES_MB[0]}x the data costs {growth[largest] / baseline:.2f}x the "
        f"memory of the {SIZES_MB[0]} MB baseline."
    )


if __name__ == "__main__":
    main()
