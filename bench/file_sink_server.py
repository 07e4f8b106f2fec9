"""The directory store's baseline: a bare grpc.aio server whose UploadAudio writes the
chunks to a file, syncs it and answers with its size — the least any Python gRPC service
that stores an upload durably can do. ``python -m bench.file_sink_server PORT DIRECTORY``."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from steno.v1 import job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb


class FileSink(transcription_service_pb2_grpc.TranscriptionServiceServicer):
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    async def UploadAudio(
        self, requests: AsyncIterator[pb.UploadAudioRequest], context: object
    ) -> pb.UploadAudioResponse:
        path = self._directory / uuid.uuid4().hex
        size = 0
        with path.open("xb") as file:
            async for request in requests:
                if request.HasField("chunk"):
                    file.write(request.chunk)
                    size += len(request.chunk)
            file.flush()
            os.fsync(file.fileno())
        path.unlink()
        return pb.UploadAudioResponse(job=job_pb2.Job(size_bytes=size))


async def serve(port: int, directory: Path) -> None:
    server = grpc.aio.server()
    transcription_service_pb2_grpc.add_TranscriptionServiceServicer_to_server(
        FileSink(directory), server
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("serving", flush=True)
    await server.wait_for_termination()


def main() -> None:
    asyncio.run(serve(int(sys.argv[1]), Path(sys.argv[2])))


if __name__ == "__main__":
    main()
