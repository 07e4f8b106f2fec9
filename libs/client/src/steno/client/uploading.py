"""Uploading a file: streamed in chunks, never whole in memory, under a request_id, and
continued from the bytes the server stored when a stream breaks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import grpc

from steno.v1 import job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb

DEFAULT_CHUNK_SIZE = 64 * 1024
# How often, and after how long a first pause (doubling), an upload whose stream broke is
# continued; ABORTED is a stream that lost its upload to another one (a retry that
# overtook it).
UPLOAD_RESUMES = 5
UPLOAD_RESUME_PAUSE = 0.5
_BROKEN_UPLOAD = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED})
_MOVED_UPLOAD = frozenset({grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND})

# The metadata every call carries (the API key).
CallMetadata = Sequence[tuple[str, str]]
# Told how many of the file's bytes have been sent so far: after every chunk, and at the
# start of every stream (a continued one starts where the server's stored bytes end).
SentBytes = Callable[[int], None]


def send_file(
    stub: transcription_service_pb2_grpc.TranscriptionServiceStub,
    call_metadata: CallMetadata,
    path: Path,
    metadata: pb.UploadMetadata,
    *,
    chunk_size: int,
    resume: int,
    progress: SentBytes | None = None,
) -> job_pb2.Job:
    """Streams ``path`` as the upload ``metadata`` describes; a stream that breaks is
    continued, up to ``resume`` times in a row without progress. ``progress`` is told the
    bytes sent as they go (from gRPC's sending thread)."""
    # Opened before the call, so a missing file is an OSError here, not an RPC failure;
    # and again for every stream, since a broken one's sending thread may still read.
    path.open("rb").close()
    broken = False
    failures = 0  # in a row, without the server storing more of the file
    while True:
        try:
            if broken:
                status = _status_after_break(stub, call_metadata, metadata.request_id)
                if status.HasField("job"):
                    return status.job
                if status.committed_bytes > metadata.offset:
                    failures = 0
                metadata.offset = status.committed_bytes
            with path.open("rb") as audio:
                audio.seek(metadata.offset)
                response: pb.UploadAudioResponse = stub.UploadAudio(
                    _upload_requests(metadata, audio, chunk_size, progress), metadata=call_metadata
                )
            return response.job
        except grpc.RpcError as exc:
            # A continuation refused for its offset or as finished (FAILED_PRECONDITION)
            # or as gone (NOT_FOUND) lost a race with the broken stream's last part, its
            # completion or the janitor: the status, asked again, says what to do.
            moved = metadata.offset and exc.code() in _MOVED_UPLOAD
            if not (exc.code() in _BROKEN_UPLOAD or moved) or failures >= resume:
                raise
        time.sleep(UPLOAD_RESUME_PAUSE * 2**failures)
        failures += 1
        broken = True


def upload_status(
    stub: transcription_service_pb2_grpc.TranscriptionServiceStub,
    call_metadata: CallMetadata,
    request_id: str,
) -> pb.GetUploadStatusResponse:
    request = pb.GetUploadStatusRequest(request_id=request_id)
    response: pb.GetUploadStatusResponse = stub.GetUploadStatus(request, metadata=call_metadata)
    return response


def _status_after_break(
    stub: transcription_service_pb2_grpc.TranscriptionServiceStub,
    call_metadata: CallMetadata,
    request_id: str,
) -> pb.GetUploadStatusResponse:
    """The status of an upload whose stream broke; nothing stored if the server never
    recorded it (the stream broke before its first bytes)."""
    try:
        return upload_status(stub, call_metadata, request_id)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return pb.GetUploadStatusResponse(committed_bytes=0)


def _upload_requests(
    metadata: pb.UploadMetadata, audio: BinaryIO, chunk_size: int, progress: SentBytes | None
) -> Iterator[pb.UploadAudioRequest]:
    yield pb.UploadAudioRequest(metadata=metadata)
    while True:
        # gRPC asks for the next request once it has taken the last one: what was read
        # before has been sent.
        if progress is not None:
            progress(audio.tell())
        chunk = audio.read(chunk_size)
        if not chunk:
            return
        yield pb.UploadAudioRequest(chunk=chunk)
