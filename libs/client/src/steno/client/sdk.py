"""A small synchronous client over the generated ``steno.v1`` stubs.

It speaks protobuf in and out (the responses are the generated messages), and takes plain
Python values where building a message by hand would be tedious: a transcript format by name,
lexicon entries as a mapping.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, TypeAlias, TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask

from steno.client.channels import ClientTls, client_tls, open_channel
from steno.client.credentials import find_api_key
from steno.client.uploading import (
    DEFAULT_CHUNK_SIZE,
    UPLOAD_RESUMES,
    SentBytes,
    send_file,
    upload_status,
)
from steno.v1 import job_pb2, lexicon_pb2, lexicon_pb2_grpc, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb

DEFAULT_SERVER = "127.0.0.1:50051"
TERMINAL_STATES = frozenset(
    {job_pb2.JOB_STATE_COMPLETED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED}
)

# How often, and after how long a first pause (doubling), a watch ended by an unavailable
# server is resumed.
WATCH_RESUMES = 3
WATCH_RESUME_PAUSE = 0.5

TranscriptFormatName: TypeAlias = Literal["text", "srt", "vtt", "json"]
TRANSCRIPT_FORMATS: dict[str, pb.TranscriptFormat] = {
    "text": pb.TRANSCRIPT_FORMAT_TEXT,
    "srt": pb.TRANSCRIPT_FORMAT_SRT,
    "vtt": pb.TRANSCRIPT_FORMAT_VTT,
    "json": pb.TRANSCRIPT_FORMAT_JSON,
}

# Lexicon entries as the SDK takes them: each phrase (the display form, e.g. "Kubernetes")
# mapped to what an engine may write instead (e.g. ["cooper netties"]). A mapping, because a
# phrase appears once; dicts keep their order, and so does the stored lexicon.
Entries: TypeAlias = Mapping[str, Sequence[str]]


class StenoClient:
    """One connection to a Steno gateway; every method is one blocking RPC (or a few, for
    the ``iter_*`` and ``wait`` helpers) and raises ``grpc.RpcError`` as the server answers.

    Use it as a context manager, or call :meth:`close`, to release the channel.
    """

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        *,
        api_key: str | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        """``api_key`` unset means the one :func:`steno.client.credentials.find_api_key`
        finds: ``STENO_API_KEY``, or the key file of a local ``steno dev``. ``tls`` unset
        means what the environment says (:func:`steno.client.channels.client_tls`)."""
        api_key = find_api_key(api_key)
        self._channel = open_channel(server, tls or client_tls())
        self._stub = transcription_service_pb2_grpc.TranscriptionServiceStub(self._channel)
        self._lexicons = lexicon_pb2_grpc.LexiconServiceStub(self._channel)
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
        webhook_url: str = "",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        resume: int = UPLOAD_RESUMES,
        progress: SentBytes | None = None,
    ) -> job_pb2.Job:
        """Streams the file in ``chunk_size`` pieces (never all in memory); returns the job.

        Every upload has a ``request_id`` (a new UUID unless one is given): retrying it
        gives back the same job, and a stream that breaks (the connection drops, the gateway
        restarts, the server answers UNAVAILABLE) is continued from the last byte the server
        stored instead of being sent again, up to ``resume`` times in a row without progress.

        ``progress``, if given, is called with the bytes of the file sent so far, after every
        chunk (from gRPC's sending thread): what a progress bar needs.

        ``webhook_url``, if given, is POSTed a signed event when the job ends (README,
        "Webhooks").
        """
        metadata = pb.UploadMetadata(
            filename=Path(path).name,
            language=language,
            engine=engine,
            lexicon_id=lexicon_id,
            labels=dict(labels or {}),
            request_id=request_id or str(uuid.uuid4()),
            webhook_url=webhook_url,
        )
        if audio_retention is not None:
            metadata.audio_retention.CopyFrom(_duration(audio_retention))
        return send_file(
            self._stub,
            self._metadata,
            Path(path),
            metadata,
            chunk_size=chunk_size,
            resume=resume,
            progress=progress,
        )

    def upload_status(self, request_id: str) -> pb.GetUploadStatusResponse:
        """How much of the upload with ``request_id`` the server has stored, or its job."""
        return upload_status(self._stub, self._metadata, request_id)

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
        for page in _pages(
            lambda token: self.list_jobs(states=states, page_size=page_size, page_token=token)
        ):
            yield from page.jobs

    def get_transcript(
        self, job_id: str, format: TranscriptFormatName = "text"
    ) -> pb.GetTranscriptResponse:
        """The transcript of a COMPLETED job as ``text``, ``srt``, ``vtt`` or ``json``;
        FAILED_PRECONDITION while the job is still running."""
        try:
            proto_format = TRANSCRIPT_FORMATS[format]
        except KeyError:
            known = ", ".join(TRANSCRIPT_FORMATS)
            raise ValueError(f"unknown transcript format {format!r}; use one of {known}") from None
        request = pb.GetTranscriptRequest(job_id=job_id, format=proto_format)
        response: pb.GetTranscriptResponse = self._stub.GetTranscript(
            request, metadata=self._metadata
        )
        return response

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

    def watch(
        self, job_id: str, *, timeout: float | None = None, resume: int = WATCH_RESUMES
    ) -> Iterator[job_pb2.Job]:
        """The job as it is now, then again on every change of state or progress, ending
        after it is COMPLETED, FAILED or CANCELLED; TimeoutError after ``timeout`` seconds.

        A watch the server ends as UNAVAILABLE (a gateway restarting, a database blip) is
        resumed, up to ``resume`` times in a row, without repeating what was already seen.
        The last job carries the transcript.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: tuple[int, float] | None = None
        failures = 0
        while True:
            call = self._stub.WatchJob(
                pb.WatchJobRequest(job_id=job_id),
                metadata=self._metadata,
                timeout=None if deadline is None else max(0.0, deadline - time.monotonic()),
            )
            try:
                for response in call:
                    failures = 0
                    job = response.job
                    if (job.state, job.progress) != seen:
                        seen = (job.state, job.progress)
                        yield job
                return
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and timeout is not None:
                    raise TimeoutError(
                        f"job {job_id} had not ended after {timeout:g} s of watching"
                    ) from exc
                if exc.code() != grpc.StatusCode.UNAVAILABLE or failures >= resume:
                    raise
            finally:
                # Also when the caller stops iterating early: the server stops watching too.
                call.cancel()
            time.sleep(WATCH_RESUME_PAUSE * 2**failures)
            failures += 1

    def cancel_job(self, job_id: str) -> job_pb2.Job:
        """Cancels a QUEUED or PROCESSING job and returns it, CANCELLED; FAILED_PRECONDITION
        if it has already ended. Its audio is kept until its retention runs out."""
        request = pb.CancelJobRequest(job_id=job_id)
        response: pb.CancelJobResponse = self._stub.CancelJob(request, metadata=self._metadata)
        return response.job

    def delete_job(self, job_id: str) -> None:
        """Deletes the job now: its audio and its record, transcript included."""
        self._stub.DeleteJob(pb.DeleteJobRequest(job_id=job_id), metadata=self._metadata)

    # -- lexicons ---------------------------------------------------------------------------

    def create_lexicon(
        self, name: str, entries: Entries, *, language: str = ""
    ) -> lexicon_pb2.Lexicon:
        """A new lexicon (version 1). ``language`` is a BCP-47 code; empty means any."""
        lexicon = lexicon_pb2.Lexicon(name=name, language=language, entries=_entries(entries))
        request = lexicon_pb2.CreateLexiconRequest(lexicon=lexicon)
        response: lexicon_pb2.CreateLexiconResponse = self._lexicons.CreateLexicon(
            request, metadata=self._metadata
        )
        return response.lexicon

    def get_lexicon(self, lexicon_id: str) -> lexicon_pb2.Lexicon:
        request = lexicon_pb2.GetLexiconRequest(lexicon_id=lexicon_id)
        response: lexicon_pb2.GetLexiconResponse = self._lexicons.GetLexicon(
            request, metadata=self._metadata
        )
        return response.lexicon

    def list_lexicons(
        self, *, page_size: int = 0, page_token: str = ""
    ) -> lexicon_pb2.ListLexiconsResponse:
        """One page of lexicons, newest first; ``page_size`` 0 means the server's default."""
        request = lexicon_pb2.ListLexiconsRequest(page_size=page_size, page_token=page_token)
        response: lexicon_pb2.ListLexiconsResponse = self._lexicons.ListLexicons(
            request, metadata=self._metadata
        )
        return response

    def iter_lexicons(self, *, page_size: int = 0) -> Iterator[lexicon_pb2.Lexicon]:
        """Every lexicon, newest first, following page tokens."""
        for page in _pages(lambda token: self.list_lexicons(page_size=page_size, page_token=token)):
            yield from page.lexicons

    def update_lexicon(
        self,
        lexicon_id: str,
        *,
        name: str | None = None,
        language: str | None = None,
        entries: Entries | None = None,
        version: int = 0,
    ) -> lexicon_pb2.Lexicon:
        """Replaces the fields given (``language=""`` clears the language; ``entries``
        replaces them all) and returns the lexicon with its bumped version.

        With ``version``, the update applies only if the lexicon is still at that version,
        else ABORTED: read, change, write back without losing someone else's update.
        """
        lexicon = lexicon_pb2.Lexicon(lexicon_id=lexicon_id, version=version)
        paths = []
        if name is not None:
            lexicon.name = name
            paths.append("name")
        if language is not None:
            lexicon.language = language
            paths.append("language")
        if entries is not None:
            lexicon.entries.extend(_entries(entries))
            paths.append("entries")
        if not paths:
            # An empty mask means "every field" to the server: never send one by accident.
            raise ValueError("nothing to update: give name, language or entries")
        request = lexicon_pb2.UpdateLexiconRequest(
            lexicon=lexicon, update_mask=FieldMask(paths=paths)
        )
        response: lexicon_pb2.UpdateLexiconResponse = self._lexicons.UpdateLexicon(
            request, metadata=self._metadata
        )
        return response.lexicon

    def delete_lexicon(self, lexicon_id: str) -> None:
        """Deletes the lexicon; jobs that already used it keep their transcripts."""
        request = lexicon_pb2.DeleteLexiconRequest(lexicon_id=lexicon_id)
        self._lexicons.DeleteLexicon(request, metadata=self._metadata)


def _entries(entries: Entries) -> list[lexicon_pb2.LexiconEntry]:
    result = []
    for phrase, sounds_like in entries.items():
        # A bare string is a Sequence[str] too, and would become one variant per letter.
        if isinstance(sounds_like, str):
            raise TypeError(f"the variants of {phrase!r} must be a list of strings, not a string")
        result.append(lexicon_pb2.LexiconEntry(phrase=phrase, sounds_like=list(sounds_like)))
    return result


def _duration(value: timedelta) -> Duration:
    duration = Duration()
    duration.FromTimedelta(value)
    return duration


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


_P = TypeVar("_P", bound=_Page)


def _pages(list_page: Callable[[str], _P]) -> Iterator[_P]:
    """Every page of a listing, ``list_page`` called with each page's token in turn."""
    token = ""
    while True:
        page = list_page(token)
        yield page
        token = page.next_page_token
        if not token:
            return
