"""Status reads: GetJob and ListJobs calls per second from concurrent clients, against a
bare grpc.aio server answering the same methods with messages of the same sizes, on
Postgres and on the embedded SQLite."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc

from bench.harness import Figure, ab_rounds
from bench.stack import Stack, free_port, gateway, run_clients
from steno.v1 import transcription_service_pb2 as pb
from steno.v1 import transcription_service_pb2_grpc

CONCURRENCY = 16
PAGE_SIZE = 20


def _seed(address: str, jobs: int) -> tuple[bytes, bytes]:
    """Uploads ``jobs`` small files; the serialised GetJob and ListJobs answers the echo
    server will give."""
    with grpc.insecure_channel(address) as channel:
        stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
        for number in range(jobs):
            head = b"RIFF\xff\xff\xff\xffWAVEfmt " + bytes(64 * 1024)
            stub.UploadAudio(
                iter([
                    pb.UploadAudioRequest(
                        metadata=pb.UploadMetadata(
                            filename=f"meeting-{number}.wav", labels={"team": "bench"}
                        )
                    ),
                    pb.UploadAudioRequest(chunk=head),
                ])
            )  # fmt: skip
        page = stub.ListJobs(pb.ListJobsRequest(page_size=PAGE_SIZE))
        job = stub.GetJob(pb.GetJobRequest(job_id=page.jobs[0].job_id))
    return job.SerializeToString(), page.SerializeToString()


@contextlib.contextmanager
def _echo_server(workdir: Path, job: bytes, page: bytes) -> Iterator[str]:
    (workdir / "job.bin").write_bytes(job)
    (workdir / "page.bin").write_bytes(page)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.echo_server", str(port),
         str(workdir / "job.bin"), str(workdir / "page.bin")],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        process.stdout.readline()  # "serving"
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _calls_per_second(address: str, method: str, job_id: str, seconds: float) -> float:
    command = ["status", address, "--method", method, "--job-id", job_id,
               "--page-size", str(PAGE_SIZE), "--concurrency", str(CONCURRENCY),
               "--seconds", str(seconds)]  # fmt: skip
    return run_clients([command], counting="calls")


def _figures(base: Stack, database: str, *, quick: bool, settings: dict[str, str]) -> list[Figure]:
    seconds = 2.0 if quick else 5.0
    rounds = 3 if quick else 5
    figures = []
    with gateway(base, **settings) as (address, _):
        job, page = _seed(address, PAGE_SIZE + 5)
        job_id = pb.GetJobResponse.FromString(job).job.job_id
        with _echo_server(base.workdir, job, page) as echo:
            for method in ("GetJob", "ListJobs"):

                def measure(server: str, method: str = method) -> float:
                    return _calls_per_second(server, method, job_id, seconds)

                figure = ab_rounds(
                    f"{method} on {database}",
                    unit="calls/s",
                    baseline="bare grpc.aio server",
                    measure_baseline=lambda measure=measure: measure(echo),
                    measure_steno=lambda measure=measure: measure(address),
                    rounds=rounds,
                    target=0.5 if method == "GetJob" else None,
                    params={"concurrency": CONCURRENCY, "seconds": seconds},
                )
                figures.append(figure)
    return figures


def run(base: Stack, *, quick: bool) -> list[Figure]:
    from steno.common.db.migrate import upgrade

    sqlite = f"sqlite+aiosqlite:///{base.workdir / 'status.db'}"
    upgrade(sqlite)
    return [
        *_figures(base, "Postgres", quick=quick, settings={}),
        *_figures(base, "SQLite", quick=quick, settings={"STENO_DATABASE_URL": sqlite}),
    ]
