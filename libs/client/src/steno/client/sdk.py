"""A small synchronous client over the generated ``steno.v1`` stubs."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import grpc
from google.protobuf.duration_pb2 import Duration

from steno.v1 import job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb

DEFAULT_SERVER = "127.0.0.1:50051"
DEFAULT_CHUNK_SIZE = 64 * 1024
TERMINAL_STATES = frozenset(
    {job_pb2.JOB_STATE_COMPLETED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED}
)


class StenoClient:
    def __init__(self, server: str = DEFAULT_SERVER, *, api_key: str | None = None) -> None:
        self._channel = grpc.insecure_channel(server)
        self._stub = transcription_service_pb2_grpc.TranscriptionServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()

    def __enter__(self) -> StenoClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def upload(
        self,
        path: str | Path,
        *,
        language: str = "",
        engine: str = "",
        lexicon_id: str = "",
        labels: Mapping[str, str] | None = None,
        audio_retention: timedelta | None = None,
        request_id: str = "",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> job_pb2.Job:
        """Streams the file in ``chunk_size`` pieces (never all in memory); returns the job.

        With a ``request_id``, retrying the same upload gives back the same job.
        """
        path = Path(path)
        metadata = pb.UploadMetadata(
            filename=path.name,
            language=language,
            engine=engine,
            lexicon_id=lexicon_id,
            labels=dict(labels or {}),
            request_id=request_id,
        )
        if audio_retention is not None:
            metadata.audio_retention.CopyFrom(_duration(audio_retention))
        # Opened before the call, so a missing file is an OSError here, not an RPC failure.
        with path.open("rb") as audio:
            response: pb.UploadAudioResponse = self._stub.UploadAudio(
                _upload_requests(metadata, audio, chunk_size), metadata=self._metadata
            )
        return response.job

    def get_job(self, job_id: str, *, view: job_pb2.JobView = job_pb2.JOB_VIEW_FULL) -> job_pb2.Job:
        request = pb.GetJobRequest(job_id=job_id, view=view)
        response: pb.GetJobResponse = self._stub.GetJob(request, metadata=self._metadata)
        return response.job

    def list_jobs(
        self,
        *,
        states: Iterable[job_pb2.JobState] = (),
        page_size: int = 0,
        page_token: str = "",
        view: job_pb2.JobView = job_pb2.JOB_VIEW_BASIC,
    ) -> pb.ListJobsResponse:
        request = pb.ListJobsRequest(
            states=list(states), page_size=page_size, page_token=page_token, view=view
        )
        response: pb.ListJobsResponse = self._stub.ListJobs(request, metadata=self._metadata)
        return response

    def iter_jobs(
        self, *, states: Iterable[job_pb2.JobState] = (), page_size: int = 0
    ) -> Iterator[job_pb2.Job]:
        """Every job, newest first, following page tokens."""
        token = ""
        while True:
            page = self.list_jobs(states=states, page_size=page_size, page_token=token)
            yield from page.jobs
            token = page.next_page_token
            if not token:
                return

    def wait(
        self, job_id: str, *, timeout: float | None = None, poll_interval: float = 0.5
    ) -> job_pb2.Job:
        """Polls until the job is COMPLETED, FAILED or CANCELLED; TimeoutError after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job.state in TERMINAL_STATES:
                return job
            if deadline is not None and time.monotonic() > deadline:
                state = job_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_")
                raise TimeoutError(f"job {job_id} is still {state} after {timeout:g} s")
            time.sleep(poll_interval)


def _upload_requests(
    metadata: pb.UploadMetadata, audio: BinaryIO, chunk_size: int
) -> Iterator[pb.UploadAudioRequest]:
    yield pb.UploadAudioRequest(metadata=metadata)
    while chunk := audio.read(chunk_size):
        yield pb.UploadAudioRequest(chunk=chunk)


def _duration(value: timedelta) -> Duration:
    duration = Duration()
    duration.FromTimedelta(value)
    return duration
