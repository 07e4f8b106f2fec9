"""``StenoClient.upload`` against an in-process gRPC server whose UploadAudio streams break as
scripted: the request_id every upload carries, and how a broken upload is continued from the
bytes the server stored (or given up on)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from steno.client import StenoClient, sdk, uploading
from steno.v1 import job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb

API_KEY = "sk-test-upload"
REQUEST_ID = "upload-2b9d6a4e"
CHUNK = 1000
# The fake server stores whole parts, like the real one: a part size that is no multiple of
# the chunk size puts the committed offset in the middle of a chunk the client sent.
PART = 1024
DATA = random.Random(20240611).randbytes(10 * CHUNK + 345)
# After three chunks (3000 bytes) the server keeps two whole parts.
BROKEN_AFTER = 3
COMMITTED = BROKEN_AFTER * CHUNK // PART * PART
RESUMABLE = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED]
NOT_RESUMABLE = [
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.INTERNAL,
]


@dataclass
class Break:
    """How the server ends one UploadAudio stream: after reading ``after`` chunks (all of them
    and creating the job first with ``finish``), with ``code``."""

    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    after: int = BROKEN_AFTER
    finish: bool = False


@dataclass
class Stream:
    """One UploadAudio stream as the server received it."""

    metadata: pb.UploadMetadata
    authorization: str | None
    chunks: list[bytes] = field(default_factory=list)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


class FakeUploads(transcription_service_pb2_grpc.TranscriptionServiceServicer):
    """Keeps the bytes of every upload by request_id, as whole parts while it is unfinished,
    like the gateway. ``breaks`` scripts the UploadAudio calls in order (None, or none left:
    the stream completes); ``status_errors`` the GetUploadStatus calls (None, or none left:
    the answer comes from what is stored)."""

    def __init__(
        self,
        breaks: Sequence[Break | None] = (),
        status_errors: Sequence[grpc.StatusCode | None] = (),
    ) -> None:
        self._breaks = list(breaks)
        self._status_errors = list(status_errors)
        self._lock = threading.Lock()
        self.streams: list[Stream] = []
        self.status_requests: list[tuple[str, str | None]] = []
        self.stored: dict[str, bytearray] = {}
        self.jobs: dict[str, job_pb2.Job] = {}

    def UploadAudio(
        self, request_iterator: Iterator[pb.UploadAudioRequest], context: grpc.ServicerContext
    ) -> pb.UploadAudioResponse:
        first = next(request_iterator)
        assert first.WhichOneof("payload") == "metadata"
        metadata = first.metadata
        with self._lock:
            stream = Stream(pb.UploadMetadata(), _authorization(context))
            stream.metadata.CopyFrom(metadata)
            self.streams.append(stream)
            number = len(self.streams)
            script = self._breaks.pop(0) if self._breaks else None
        request_id = metadata.request_id
        if metadata.offset == 0:
            self.stored[request_id] = bytearray()
        elif metadata.offset != len(self.stored.get(request_id, b"")):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not the committed offset")
        stored = self.stored[request_id]

        def read(limit: int | None) -> None:
            for request in request_iterator:
                assert request.WhichOneof("payload") == "chunk"
                stream.chunks.append(request.chunk)
                stored.extend(request.chunk)
                if limit is not None and len(stream.chunks) >= limit:
                    return

        if script is None or script.finish:
            read(None)
            job = job_pb2.Job(job_id=f"job-{number}", state=job_pb2.JOB_STATE_QUEUED)
            self.jobs[request_id] = job
            if script is None:
                return pb.UploadAudioResponse(job=job)
        elif script.after:
            read(script.after)
            del stored[len(stored) // PART * PART :]
        context.abort(script.code, f"stream {number} broke")

    def GetUploadStatus(
        self, request: pb.GetUploadStatusRequest, context: grpc.ServicerContext
    ) -> pb.GetUploadStatusResponse:
        with self._lock:
            self.status_requests.append((request.request_id, _authorization(context)))
            error = self._status_errors.pop(0) if self._status_errors else None
        if error is not None:
            context.abort(error, f"status {len(self.status_requests)} failed")
        if request.request_id in self.jobs:
            return pb.GetUploadStatusResponse(
                committed_bytes=len(self.stored[request.request_id]),
                job=self.jobs[request.request_id],
            )
        if request.request_id not in self.stored:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such upload")
        return pb.GetUploadStatusResponse(committed_bytes=len(self.stored[request.request_id]))


def _authorization(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata():
        if key == "authorization":
            return str(value)
    return None


class RecordingTime:
    """Stands in for the ``time`` module inside the SDK: records the pauses, sleeps none."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture(autouse=True)
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    clock = RecordingTime()
    monkeypatch.setattr(uploading, "time", clock)
    return clock.sleeps


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "standup.ogg"
    path.write_bytes(DATA)
    return path


def upload(servicer: FakeUploads, path: Path, **kwargs: Any) -> job_pb2.Job:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    transcription_service_pb2_grpc.add_TranscriptionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with StenoClient(f"127.0.0.1:{port}", api_key=API_KEY) as client:
            kwargs.setdefault("chunk_size", CHUNK)
            return client.upload(path, **kwargs)
    finally:
        server.stop(0)


def resumed_at(metadata: pb.UploadMetadata, offset: int) -> pb.UploadMetadata:
    expected = pb.UploadMetadata()
    expected.CopyFrom(metadata)
    expected.offset = offset
    return expected


# -- request ids --------------------------------------------------------------------------


def test_an_upload_without_request_id_sends_a_new_uuid(audio: Path) -> None:
    servicer = FakeUploads()
    upload(servicer, audio)
    upload(servicer, audio)

    first, second = (stream.metadata.request_id for stream in servicer.streams)
    assert str(uuid.UUID(first)) == first
    assert uuid.UUID(first).version == 4
    assert str(uuid.UUID(second)) == second
    assert first != second


def test_the_given_request_id_is_sent(audio: Path) -> None:
    servicer = FakeUploads()
    job = upload(servicer, audio, request_id=REQUEST_ID)

    (stream,) = servicer.streams
    assert stream.metadata.request_id == REQUEST_ID
    assert job == servicer.jobs[REQUEST_ID]


def test_an_unbroken_upload_sends_the_whole_file_once(audio: Path, pauses: list[float]) -> None:
    servicer = FakeUploads()
    job = upload(
        servicer,
        audio,
        language="de",
        engine="whisper-small",
        lexicon_id="lex-1",
        labels={"team": "ops"},
        audio_retention=timedelta(days=2),
        request_id=REQUEST_ID,
    )

    (stream,) = servicer.streams
    assert stream.metadata == pb.UploadMetadata(
        filename="standup.ogg",
        language="de",
        engine="whisper-small",
        lexicon_id="lex-1",
        labels={"team": "ops"},
        audio_retention=sdk._duration(timedelta(days=2)),
        request_id=REQUEST_ID,
        offset=0,
    )
    assert stream.authorization == f"Bearer {API_KEY}"
    assert stream.data == DATA
    assert all(len(chunk) <= CHUNK for chunk in stream.chunks)
    assert job.job_id == "job-1"
    assert servicer.status_requests == []
    assert pauses == []


# -- progress -----------------------------------------------------------------------------


def test_progress_is_told_the_bytes_sent_after_every_chunk(audio: Path) -> None:
    sent: list[int] = []

    upload(FakeUploads(), audio, progress=sent.append)

    assert sent == [*range(0, len(DATA), CHUNK), len(DATA)]


def test_progress_of_a_continued_stream_goes_on_from_the_committed_bytes(audio: Path) -> None:
    sent: list[int] = []

    upload(FakeUploads([Break()]), audio, progress=sent.append)

    # The continuation reports from the committed offset (no multiple of the chunk size, so
    # the broken stream never reports it). Whether the broken stream's sending thread was
    # asked for one more request, and so reported the bytes before it, before the break
    # reached it is a race.
    restart = sent.index(COMMITTED)
    broken, resumed = sent[:restart], sent[restart:]
    assert broken[:BROKEN_AFTER] == [n * CHUNK for n in range(BROKEN_AFTER)]
    assert broken == sorted(broken) and broken[-1] < len(DATA)
    assert resumed == [*range(COMMITTED, len(DATA), CHUNK), len(DATA)]


# -- resuming -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", RESUMABLE, ids=lambda code: code.name)
def test_a_broken_stream_is_continued_from_the_committed_bytes(
    audio: Path, pauses: list[float], code: grpc.StatusCode
) -> None:
    servicer = FakeUploads([Break(code)])
    job = upload(
        servicer,
        audio,
        language="en",
        labels={"meeting": "standup"},
        audio_retention=timedelta(hours=6),
        request_id=REQUEST_ID,
    )

    broken, resumed = servicer.streams
    assert broken.metadata.offset == 0
    assert broken.data == DATA[: BROKEN_AFTER * CHUNK]
    assert servicer.status_requests == [(REQUEST_ID, f"Bearer {API_KEY}")]
    # The second stream: same request_id and metadata, from the committed offset, carrying
    # exactly the rest of the file.
    assert 0 < COMMITTED < BROKEN_AFTER * CHUNK
    assert COMMITTED % CHUNK != 0
    assert resumed.metadata.offset == COMMITTED
    assert resumed.metadata.request_id == REQUEST_ID
    assert resumed.metadata == resumed_at(broken.metadata, COMMITTED)
    assert resumed.authorization == f"Bearer {API_KEY}"
    assert resumed.data == DATA[COMMITTED:]
    assert bytes(servicer.stored[REQUEST_ID]) == DATA
    assert job.job_id == "job-2"
    assert job == servicer.jobs[REQUEST_ID]
    assert pauses == [uploading.UPLOAD_RESUME_PAUSE]


def test_a_generated_request_id_is_kept_when_resuming(audio: Path) -> None:
    servicer = FakeUploads([Break()])
    upload(servicer, audio)

    broken, resumed = servicer.streams
    request_id = broken.metadata.request_id
    assert str(uuid.UUID(request_id)) == request_id
    assert [rid for rid, _ in servicer.status_requests] == [request_id]
    assert resumed.metadata == resumed_at(broken.metadata, COMMITTED)
    assert resumed.data == DATA[COMMITTED:]


def test_every_resumption_continues_from_the_latest_committed_bytes(
    audio: Path, pauses: list[float]
) -> None:
    # 3000 bytes read, 2048 kept; then 2048 + 4000 = 6048 read, 5120 kept.
    servicer = FakeUploads([Break(), Break(after=4)])
    upload(servicer, audio, request_id=REQUEST_ID)

    first, second, third = servicer.streams
    assert [s.metadata.offset for s in servicer.streams] == [0, 2048, 5120]
    assert second.data == DATA[2048 : 2048 + 4 * CHUNK]
    assert third.data == DATA[5120:]
    assert third.metadata == resumed_at(first.metadata, 5120)
    assert bytes(servicer.stored[REQUEST_ID]) == DATA
    assert len(pauses) == 2


def test_an_upload_that_already_became_a_job_returns_it_without_sending_again(
    audio: Path, pauses: list[float]
) -> None:
    # The server stored the whole file and made the job, but the answer never arrived.
    servicer = FakeUploads([Break(finish=True)])
    job = upload(servicer, audio, request_id=REQUEST_ID)

    assert len(servicer.streams) == 1
    assert servicer.streams[0].data == DATA
    assert [rid for rid, _ in servicer.status_requests] == [REQUEST_ID]
    assert job.job_id == "job-1"
    assert job == servicer.jobs[REQUEST_ID]
    assert pauses == [uploading.UPLOAD_RESUME_PAUSE]


def test_an_upload_the_server_never_recorded_starts_again_from_the_first_byte(
    audio: Path,
) -> None:
    servicer = FakeUploads([Break()], status_errors=[grpc.StatusCode.NOT_FOUND])
    job = upload(servicer, audio, request_id=REQUEST_ID)

    broken, again = servicer.streams
    assert broken.data == DATA[: BROKEN_AFTER * CHUNK]
    assert len(servicer.status_requests) == 1
    assert again.metadata == broken.metadata
    assert again.metadata.offset == 0
    assert again.data == DATA
    assert job.job_id == "job-2"


def test_a_stream_broken_before_its_first_chunk_starts_again(audio: Path) -> None:
    servicer = FakeUploads([Break(after=0)])
    upload(servicer, audio, request_id=REQUEST_ID)

    broken, again = servicer.streams
    assert broken.chunks == []
    assert again.metadata.offset == 0
    assert again.data == DATA


# -- giving up ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", NOT_RESUMABLE, ids=lambda code: code.name)
def test_other_errors_are_raised_at_once(
    audio: Path, pauses: list[float], code: grpc.StatusCode
) -> None:
    servicer = FakeUploads([Break(code)])
    with pytest.raises(grpc.RpcError) as error:
        upload(servicer, audio, request_id=REQUEST_ID)

    assert error.value.code() == code
    assert error.value.details() == "stream 1 broke"
    assert len(servicer.streams) == 1
    assert servicer.status_requests == []
    assert pauses == []


def test_a_failing_status_call_is_raised_unless_it_is_not_found(
    audio: Path, pauses: list[float]
) -> None:
    servicer = FakeUploads([Break()], status_errors=[grpc.StatusCode.PERMISSION_DENIED])
    with pytest.raises(grpc.RpcError) as error:
        upload(servicer, audio, request_id=REQUEST_ID)

    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.value.details() == "status 1 failed"
    assert len(servicer.streams) == 1
    assert len(servicer.status_requests) == 1
    assert pauses == [uploading.UPLOAD_RESUME_PAUSE]


@pytest.mark.parametrize("resume", [0, 1, 3])
def test_after_resume_failures_in_a_row_the_last_error_is_raised(
    audio: Path, pauses: list[float], resume: int
) -> None:
    servicer = FakeUploads([Break(after=0)] * (resume + 5))
    with pytest.raises(grpc.RpcError) as error:
        upload(servicer, audio, request_id=REQUEST_ID, resume=resume)

    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error.value.details() == f"stream {resume + 1} broke"
    assert len(servicer.streams) == resume + 1
    assert len(servicer.status_requests) == resume
    assert pauses == [uploading.UPLOAD_RESUME_PAUSE * 2**i for i in range(resume)]


def test_the_default_is_upload_resumes_with_doubling_pauses(
    audio: Path, pauses: list[float]
) -> None:
    servicer = FakeUploads([Break(after=0)] * (uploading.UPLOAD_RESUMES + 5))
    with pytest.raises(grpc.RpcError) as error:
        upload(servicer, audio, request_id=REQUEST_ID)

    assert error.value.details() == f"stream {uploading.UPLOAD_RESUMES + 1} broke"
    assert len(servicer.streams) == uploading.UPLOAD_RESUMES + 1
    assert len(servicer.status_requests) == uploading.UPLOAD_RESUMES
    assert uploading.UPLOAD_RESUMES == 5
    assert uploading.UPLOAD_RESUME_PAUSE == 0.5
    assert pauses == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_resume_failures_are_allowed_and_the_next_stream_completes(
    audio: Path, pauses: list[float]
) -> None:
    servicer = FakeUploads([Break(after=0), Break(grpc.StatusCode.ABORTED, after=0)])
    job = upload(servicer, audio, request_id=REQUEST_ID, resume=2)

    assert len(servicer.streams) == 3
    assert servicer.streams[-1].data == DATA
    assert job.job_id == "job-3"
    assert pauses == [uploading.UPLOAD_RESUME_PAUSE, 2 * uploading.UPLOAD_RESUME_PAUSE]


def test_a_status_call_that_is_unavailable_counts_as_one_more_failure(
    audio: Path, pauses: list[float]
) -> None:
    servicer = FakeUploads([Break()], status_errors=[grpc.StatusCode.UNAVAILABLE])
    job = upload(servicer, audio, request_id=REQUEST_ID, resume=2)

    broken, resumed = servicer.streams
    assert len(servicer.status_requests) == 2
    assert resumed.metadata == resumed_at(broken.metadata, COMMITTED)
    assert resumed.data == DATA[COMMITTED:]
    assert job.job_id == "job-2"
    assert pauses == [uploading.UPLOAD_RESUME_PAUSE, 2 * uploading.UPLOAD_RESUME_PAUSE]


def test_breaks_that_each_made_progress_do_not_use_up_the_resumes(
    audio: Path, pauses: list[float]
) -> None:
    """A long upload over a flaky link: four breaks with resume=1, each after a part more was
    stored, still finish; the pause starts over after progress."""
    servicer = FakeUploads([Break(after=2), Break(after=2), Break(after=2), Break(after=2)])
    job = upload(servicer, audio, request_id=REQUEST_ID, resume=1)

    offsets = [s.metadata.offset for s in servicer.streams]
    assert len(offsets) == 5 and offsets == sorted(set(offsets))
    assert bytes(servicer.stored[REQUEST_ID]) == DATA
    assert job.job_id
    assert pauses == [uploading.UPLOAD_RESUME_PAUSE] * 4


class LateInFlightPart(FakeUploads):
    """The broken stream's part that was still being stored lands just after the first
    GetUploadStatus answered: the committed bytes the client was told are already behind."""

    def GetUploadStatus(
        self, request: pb.GetUploadStatusRequest, context: grpc.ServicerContext
    ) -> pb.GetUploadStatusResponse:
        response = super().GetUploadStatus(request, context)
        if len(self.status_requests) == 1:
            stored = self.stored[request.request_id]
            stored.extend(DATA[len(stored) : len(stored) + PART])
        return response


def test_a_continuation_refused_for_its_offset_asks_again_and_continues(
    audio: Path, pauses: list[float]
) -> None:
    servicer = LateInFlightPart([Break()])
    job = upload(servicer, audio, request_id=REQUEST_ID)

    assert [s.metadata.offset for s in servicer.streams] == [0, COMMITTED, COMMITTED + PART]
    assert bytes(servicer.stored[REQUEST_ID]) == DATA
    assert job.job_id == "job-3"
    assert len(servicer.status_requests) == 2
