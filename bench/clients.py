"""The benchmarks' clients, each run as a process of its own so that it takes no CPU from
the server it measures in its own interpreter: ``python -m bench.clients KIND …``.

Every client waits until ``--start-at`` (a Unix time, so that concurrent clients start
together), does its work, and prints one JSON line: when it started and ended, and how
much it did.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import time
from collections.abc import Iterator

import grpc

from steno.v1 import transcription_service_pb2 as pb
from steno.v1 import transcription_service_pb2_grpc

MIB = 1024 * 1024
# A WAV header, so that the gateway takes the bytes for audio; the rest is noise.
WAV_HEAD = b"RIFF\xff\xff\xff\xffWAVEfmt "
_NOISE = os.urandom(MIB)


def audio_bytes(size: int, chunk: int) -> Iterator[bytes]:
    """``size`` bytes of "audio" in chunks of ``chunk``, made without copying much."""
    block = (_NOISE * (chunk // MIB + 1))[:chunk]
    first = WAV_HEAD + block[len(WAV_HEAD) :]
    sent = 0
    while sent < size:
        piece = (first if sent == 0 else block)[: size - sent]
        sent += len(piece)
        yield piece


class _Reader(io.RawIOBase):
    """The same bytes as a file, for minio's put_object."""

    def __init__(self, size: int) -> None:
        self._chunks = audio_bytes(size, MIB)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while len(self._pending) < n or n < 0:
            try:
                self._pending += next(self._chunks)
            except StopIteration:
                break
        taken, self._pending = (
            (self._pending, b"") if n < 0 else (self._pending[:n], self._pending[n:])
        )
        return taken


def upload(args: argparse.Namespace) -> dict[str, object]:
    def requests() -> Iterator[pb.UploadAudioRequest]:
        yield pb.UploadAudioRequest(metadata=pb.UploadMetadata(filename="bench.wav"))
        for chunk in audio_bytes(args.size, args.chunk):
            yield pb.UploadAudioRequest(chunk=chunk)

    with grpc.insecure_channel(args.address) as channel:
        stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
        grpc.channel_ready_future(channel).result(timeout=30)
        start = _wait_until(args.start_at)
        response = stub.UploadAudio(requests())
        end = time.time()
    return {"start": start, "end": end, "bytes": response.job.size_bytes}


def put(args: argparse.Namespace) -> dict[str, object]:
    from minio import Minio

    client = Minio(args.endpoint, access_key=args.access_key, secret_key=args.secret_key,
                   secure=False)  # fmt: skip
    start = _wait_until(args.start_at)
    client.put_object(
        args.bucket, f"direct/{os.getpid()}-{start}", _Reader(args.size), args.size,
        part_size=args.part_size,
    )  # fmt: skip
    return {"start": start, "end": time.time(), "bytes": args.size}


def status(args: argparse.Namespace) -> dict[str, object]:
    """``--concurrency`` calls in flight at once for ``--seconds``: GetJob (of ``--job-id``)
    or ListJobs (a page of ``--page-size``), on the gateway or on the bare echo server."""

    async def run() -> dict[str, object]:
        async with grpc.aio.insecure_channel(args.address) as channel:
            await channel.channel_ready()
            stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
            if args.method == "GetJob":
                call, request = stub.GetJob, pb.GetJobRequest(job_id=args.job_id)
            else:
                call, request = stub.ListJobs, pb.ListJobsRequest(page_size=args.page_size)
            calls = 0
            start = _wait_until(args.start_at)
            deadline = time.monotonic() + args.seconds

            async def caller() -> None:
                nonlocal calls
                while time.monotonic() < deadline:
                    await call(request)
                    calls += 1

            await asyncio.gather(*(caller() for _ in range(args.concurrency)))
            return {"start": start, "end": time.time(), "calls": calls}

    return asyncio.run(run())


def pipeline(args: argparse.Namespace) -> dict[str, object]:
    """Uploads the files and waits for every job to complete: all at once (``--batch``), or
    each after the one before has finished (the worker idle when each arrives)."""
    from steno.client import StenoClient
    from steno.v1 import job_pb2

    def finished(client: StenoClient, job_id: str) -> job_pb2.Job:
        # Watched, not polled: the end is when the job ended, not the next poll after it.
        *_, job = client.watch(job_id, timeout=1800)
        return job

    with StenoClient(args.address) as client:
        start = _wait_until(args.start_at)
        if args.batch:
            uploaded = [client.upload(path) for path in args.files]
            done = [finished(client, job.job_id) for job in uploaded]
        else:
            done = [finished(client, client.upload(path).job_id) for path in args.files]
        end = time.time()
    for job in done:
        if job.state != job_pb2.JOB_STATE_COMPLETED:
            raise SystemExit(f"job {job.job_id} ended {job.state}: {job.error.message}")
    return {
        "start": start,
        "end": end,
        "audio_seconds": sum(job.duration.ToTimedelta().total_seconds() for job in done),
        "texts": [job.original_text for job in done],
        "start_latencies": [
            (job.start_time.ToDatetime() - job.create_time.ToDatetime()).total_seconds()
            for job in done
        ],
    }


def _wait_until(when: float) -> float:
    time.sleep(max(0.0, when - time.time()))
    return time.time()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.clients")
    kinds = parser.add_subparsers(required=True)
    kinds_of = (("upload", upload), ("put", put), ("status", status), ("pipeline", pipeline))
    for name, run in kinds_of:
        kind = kinds.add_parser(name)
        kind.set_defaults(run=run)
        kind.add_argument("--start-at", type=float, default=0.0)
        if name == "upload":
            kind.add_argument("address")
            kind.add_argument("--size", type=int, required=True)
            kind.add_argument("--chunk", type=int, default=256 * 1024)
        if name == "put":
            kind.add_argument("endpoint")
            kind.add_argument("bucket")
            kind.add_argument("--size", type=int, required=True)
            kind.add_argument("--part-size", type=int, default=8 * MIB)
            kind.add_argument("--access-key", required=True)
            kind.add_argument("--secret-key", required=True)
        if name == "status":
            kind.add_argument("address")
            kind.add_argument("--method", choices=("GetJob", "ListJobs"), required=True)
            kind.add_argument("--job-id", default="")
            kind.add_argument("--page-size", type=int, default=20)
            kind.add_argument("--concurrency", type=int, default=8)
            kind.add_argument("--seconds", type=float, default=3.0)
        if name == "pipeline":
            kind.add_argument("address")
            kind.add_argument("files", nargs="+")
            kind.add_argument("--batch", action="store_true")
    args = parser.parse_args()
    print(json.dumps(args.run(args)), flush=True)


if __name__ == "__main__":
    main()
