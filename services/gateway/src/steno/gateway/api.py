"""``steno.v1.TranscriptionService``: translates requests to the upload pipeline and the job
repository, and their outcomes to canonical gRPC codes."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import grpc
from prometheus_client import Counter

from steno.common.errors import DependencyUnavailable
from steno.common.jobs import DEFAULT_TENANT, Job, JobRepository
from steno.gateway.convert import job_to_proto, state_from_proto
from steno.gateway.errors import abort, abort_invalid
from steno.gateway.paging import InvalidPageToken, decode_page_token, encode_page_token
from steno.gateway.uploads import (
    InvalidUpload,
    RequestConflict,
    UploadRaced,
    UploadRequest,
    Uploads,
    UploadsBusy,
    UploadStalled,
    UploadTooLarge,
)
from steno.v1 import job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
_Response = TypeVar("_Response")

UPLOADS = Counter("steno_uploads_total", "UploadAudio calls by outcome", ["code"])
UPLOAD_BYTES = Counter("steno_upload_bytes_total", "Bytes of audio accepted")

ENGINES = ("local",)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_RETENTION = timedelta(days=3650)
MAX_FILENAME = 1024
MAX_LABELS = 64
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")
_LEXICON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")


def _internal_on_unexpected(
    method: Callable[[Any, Any, Context], Awaitable[_Response]],
) -> Callable[[Any, Any, Context], Awaitable[_Response]]:
    """Turns a bug into INTERNAL with a safe message: no stack or SQL reaches the client."""

    @functools.wraps(method)
    async def guarded(self: Any, request: Any, context: Context) -> _Response:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unexpected error", extra={"rpc": method.__name__})
            await abort(
                context, grpc.StatusCode.INTERNAL, "internal error; the server log has details"
            )

    return guarded


class TranscriptionApi(transcription_service_pb2_grpc.TranscriptionServiceServicer):
    def __init__(
        self,
        uploads: Uploads,
        jobs: JobRepository,
        *,
        default_engine: str,
        default_retention: timedelta,
        idle_timeout: float,
    ) -> None:
        self._uploads = uploads
        self._jobs = jobs
        self._default_engine = default_engine
        self._default_retention = default_retention
        self._idle_timeout = idle_timeout

    @_internal_on_unexpected
    async def UploadAudio(
        self, request_iterator: AsyncIterator[pb.UploadAudioRequest], context: Context
    ) -> pb.UploadAudioResponse:
        try:
            job = await self._upload(request_iterator, context)
        except InvalidUpload as exc:
            UPLOADS.labels("INVALID_ARGUMENT").inc()
            await abort_invalid(context, exc.field, str(exc))
        except (UploadTooLarge, UploadsBusy) as exc:
            await _reject(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except UploadStalled as exc:
            await _reject(context, grpc.StatusCode.DEADLINE_EXCEEDED, str(exc))
        except RequestConflict as exc:
            await _reject(context, grpc.StatusCode.ALREADY_EXISTS, str(exc))
        except UploadRaced as exc:
            await _reject(context, grpc.StatusCode.ABORTED, str(exc))
        except DependencyUnavailable as exc:
            await _reject(context, grpc.StatusCode.UNAVAILABLE, f"{exc}; retry the upload later")
        UPLOADS.labels("OK").inc()
        UPLOAD_BYTES.inc(job.size_bytes)
        return pb.UploadAudioResponse(job=job_to_proto(job, job_pb2.JOB_VIEW_FULL))

    async def _upload(
        self, request_iterator: AsyncIterator[pb.UploadAudioRequest], context: Context
    ) -> Job:
        messages = _with_idle_timeout(request_iterator, self._idle_timeout)
        first = await anext(messages, None)
        if first is None:
            raise InvalidUpload("metadata", "the stream is empty: send metadata first")
        if first.WhichOneof("payload") != "metadata":
            raise InvalidUpload("metadata", "the first message must carry metadata, not a chunk")
        request = self._upload_request(first.metadata, _tenant(context))
        return await self._uploads.accept(request, _chunks(messages, context))

    @_internal_on_unexpected
    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.GetJobResponse:
        try:
            job_id = uuid.UUID(request.job_id)
        except ValueError:
            await abort_invalid(context, "job_id", f"job_id {request.job_id!r} is not a UUID")
        try:
            job = await self._jobs.get(job_id, tenant=_tenant(context))
        except DependencyUnavailable as exc:
            await abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))
        if job is None:
            await abort(context, grpc.StatusCode.NOT_FOUND, f"no job {job_id}")
        view = request.view or job_pb2.JOB_VIEW_FULL
        return pb.GetJobResponse(job=job_to_proto(job, view))

    @_internal_on_unexpected
    async def ListJobs(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsResponse:
        if request.page_size < 0:
            await abort_invalid(context, "page_size", "page_size must not be negative")
        page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        try:
            states = [state_from_proto(s) for s in request.states]
        except ValueError:
            await abort_invalid(context, "states", "states must be named JobState values")
        try:
            cursor = decode_page_token(request.page_token)
        except InvalidPageToken as exc:
            await abort_invalid(context, "page_token", str(exc))
        try:
            # One extra row tells whether another page follows.
            jobs = await self._jobs.list_jobs(
                _tenant(context), states=states, limit=page_size + 1, after=cursor
            )
        except DependencyUnavailable as exc:
            await abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))
        page = jobs[:page_size]
        view = request.view or job_pb2.JOB_VIEW_BASIC
        return pb.ListJobsResponse(
            jobs=[job_to_proto(job, view) for job in page],
            next_page_token=encode_page_token(page[-1]) if len(jobs) > page_size else "",
        )

    def _upload_request(self, metadata: pb.UploadMetadata, tenant: str) -> UploadRequest:
        """Validates the metadata; raises InvalidUpload naming the first field that is wrong."""
        if len(metadata.filename) > MAX_FILENAME or "\x00" in metadata.filename:
            raise InvalidUpload(
                "metadata.filename",
                f"filename must be at most {MAX_FILENAME} characters, without NUL",
            )
        if metadata.language and not _LANGUAGE.match(metadata.language):
            raise InvalidUpload(
                "metadata.language", "language must be a BCP-47 code such as en or pt-BR"
            )
        if metadata.lexicon_id and not _LEXICON_ID.match(metadata.lexicon_id):
            raise InvalidUpload(
                "metadata.lexicon_id",
                "lexicon_id is at most 64 letters, digits, '_', '.' or '-'",
            )
        if metadata.request_id and not _REQUEST_ID.match(metadata.request_id):
            raise InvalidUpload(
                "metadata.request_id",
                "request_id is at most 128 letters, digits, '_', '.', ':' or '-' (a UUID is good)",
            )
        engine = metadata.engine or self._default_engine
        if engine not in ENGINES:
            raise InvalidUpload("metadata.engine", f"engine must be one of: {', '.join(ENGINES)}")
        if len(metadata.labels) > MAX_LABELS:
            raise InvalidUpload("metadata.labels", f"at most {MAX_LABELS} labels")
        for key, value in metadata.labels.items():
            if not _LABEL_KEY.match(key) or len(value) > 256 or "\x00" in value:
                raise InvalidUpload(
                    f"metadata.labels[{key}]",
                    "label keys are lowercase letters, digits, '_', '.', '-' (at most 63, "
                    "starting with a letter); values at most 256 characters",
                )
        retention = self._default_retention
        if metadata.HasField("audio_retention"):
            retention = metadata.audio_retention.ToTimedelta()
            if not timedelta(0) <= retention <= MAX_RETENTION:
                raise InvalidUpload(
                    "metadata.audio_retention",
                    "audio_retention must be between 0s and 3650 days",
                )
        return UploadRequest(
            tenant=tenant,
            filename=metadata.filename,
            language=metadata.language,
            lexicon_id=metadata.lexicon_id,
            engine=engine,
            audio_retention=retention,
            labels=dict(metadata.labels),
            request_id=metadata.request_id,
        )


async def _reject(context: Context, code: grpc.StatusCode, message: str) -> None:
    UPLOADS.labels(code.name).inc()
    await abort(context, code, message)


def _tenant(context: Context) -> str:
    """The caller's tenant. Until API keys map callers to tenants, everyone shares one."""
    return DEFAULT_TENANT


async def _with_idle_timeout(
    requests: AsyncIterator[pb.UploadAudioRequest], seconds: float
) -> AsyncIterator[pb.UploadAudioRequest]:
    """The request stream, ended with UploadStalled if the client goes quiet for ``seconds``:
    a stalled client must not hold an upload slot forever."""
    iterator = aiter(requests)
    while True:
        try:
            async with asyncio.timeout(seconds):
                message = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UploadStalled(
                f"the client sent nothing for {seconds:g} s; the upload was abandoned"
            ) from None
        yield message


async def _chunks(
    requests: AsyncIterator[pb.UploadAudioRequest], context: Context
) -> AsyncIterator[bytes]:
    """The chunk bytes of the messages after the metadata, ending only at a real end of
    stream: gRPC reports a client that cancelled as an end of stream too."""
    async for message in requests:
        payload = message.WhichOneof("payload")
        if payload == "metadata":
            raise InvalidUpload("metadata", "metadata may only be sent once, in the first message")
        if payload is None:
            raise InvalidUpload("chunk", "every message after the metadata must carry a chunk")
        yield message.chunk
    await _confirm_client_still_there(context)


async def _confirm_client_still_there(context: Context) -> None:
    """Sends the response headers, which fails on a stream the client has reset; the upload
    is then abandoned as cancelled instead of being recorded with part of its audio."""
    try:
        await context.send_initial_metadata(())
    except Exception as exc:
        raise asyncio.CancelledError("the client cancelled the upload") from exc
