"""The status reads' baseline: a bare grpc.aio server that answers GetJob and ListJobs with
fixed messages of the sizes the gateway's answers have, and does nothing else — what any
gRPC service in Python costs. ``python -m bench.echo_server PORT JOB_FILE LIST_FILE``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import grpc

from steno.v1 import transcription_service_pb2 as pb
from steno.v1 import transcription_service_pb2_grpc


class Echo(transcription_service_pb2_grpc.TranscriptionServiceServicer):
    def __init__(self, job: pb.GetJobResponse, page: pb.ListJobsResponse) -> None:
        self._job = job
        self._page = page

    async def GetJob(self, request: pb.GetJobRequest, context: object) -> pb.GetJobResponse:
        return self._job

    async def ListJobs(self, request: pb.ListJobsRequest, context: object) -> pb.ListJobsResponse:
        return self._page


async def serve(port: int, job: pb.GetJobResponse, page: pb.ListJobsResponse) -> None:
    server = grpc.aio.server()
    transcription_service_pb2_grpc.add_TranscriptionServiceServicer_to_server(
        Echo(job, page), server
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("serving", flush=True)
    await server.wait_for_termination()


def main() -> None:
    port, job_file, page_file = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    job = pb.GetJobResponse.FromString(job_file.read_bytes())
    page = pb.ListJobsResponse.FromString(page_file.read_bytes())
    asyncio.run(serve(port, job, page))


if __name__ == "__main__":
    main()
