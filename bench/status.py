"""Status reads: GetJob and ListJobs calls per second from concurrent clients, against a
bare grpc.aio server answering the same methods with messages of the same sizes, on
Postgres and on the embedded SQLite."""

from __future__ import annotations

import grpc

from bench.harness import Figure, Scale, ab_rounds
from bench.stack import Stack, bare_server, gateway, run_clients
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


def _calls_per_second(address: str, method: str, job_id: str, seconds: float) -> float:
    command = ["status", address, "--method", method, "--job-id", job_id,
               "--page-size", str(PAGE_SIZE), "--concurrency", str(CONCURRENCY),
               "--seconds", str(seconds)]  # fmt: skip
    return run_clients([command], counting="calls")


def _figures(base: Stack, database: str, scale: Scale, settings: dict[str, str]) -> list[Figure]:
    seconds = scale.pick(full=5.0, quick=2.0, tiny=0.3)
    rounds = scale.pick(full=5, quick=3, tiny=1)
    figures = []
    with gateway(base, **settings) as (address, _):
        job, page = _seed(address, PAGE_SIZE + 5)
        job_id = pb.GetJobResponse.FromString(job).job.job_id
        job_file, page_file = base.workdir / "job.bin", base.workdir / "page.bin"
        job_file.write_bytes(job)
        page_file.write_bytes(page)
        with bare_server("bench.echo_server", str(job_file), str(page_file)) as echo:
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


def run(base: Stack, scale: Scale) -> list[Figure]:
    from steno.common.db.migrate import upgrade

    sqlite = f"sqlite+aiosqlite:///{base.workdir / 'status.db'}"
    upgrade(sqlite)
    return [
        *_figures(base, "Postgres", scale, settings={}),
        *_figures(base, "SQLite", scale, settings={"STENO_DATABASE_URL": sqlite}),
    ]
