"""``steno.v1.TranscriptionService``: translates requests to the upload pipeline and the job
repository, and their outcomes to canonical gRPC codes."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
from prometheus_client import Counter

from steno.common.errors import DependencyUnavailable
from steno.common.jobs import DEFAULT_TENANT, JobRepository
from steno.gateway.convert import job_to_proto, state_from_proto
from steno.gateway.errors import abort, abort_invalid
from steno.gateway.paging import InvalidPageToken, decode_page_token, encode_page_token
from steno.gateway.uploads import InvalidUpload, UploadRequest, Uploads, UploadTooLarge
from steno.v1 import job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb

Context = grpc.aio.ServicerContext[object, object]

UPLOADS = Counter("steno_uploads_total", "UploadAudio calls by outcome", ["code"])
UPLOAD_BYTES = Counter("steno_upload_bytes_total", "Bytes of audio accepted")

ENGINES = ("local", "openai")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_RETENTION = timedelta(days=3650)
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
MAX_LABELS = 64


class TranscriptionApi(transcription_service_pb2_grpc.TranscriptionServiceServicer):
    def __init__(
        self,
        uploads: Uploads,
        jobs: JobRepository,
        *,
        default_engine: str,
        default_retention: timedelta,
    ) -> None:
        self._uploads = uploads
        self._jobs = jobs
        self._default_engine = default_engine
        self._default_retention = default_retention

    async def UploadAudio(
        self, request_iterator: AsyncIterator[pb.UploadAudioRequest], context: Context
    ) -> pb.UploadAudioResponse:
        first = await anext(request_iterator, None)
        if first is None:
            await abort_invalid(context, "metadata", "the stream is empty: send metadata first")
        if first.WhichOneof("payload") != "metadata":
            await abort_invalid(
                context, "metadata", "the first message must carry metadata, not a chunk"
            )
        request = await self._upload_request(first.metadata, context)
        try:
            job = await self._uploads.accept(request, _chunks(request_iterator))
        except InvalidUpload as exc:
            UPLOADS.labels("INVALID_ARGUMENT").inc()
            await abort_invalid(context, exc.field, str(exc))
        except UploadTooLarge as exc:
            UPLOADS.labels("RESOURCE_EXHAUSTED").inc()
            await abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except DependencyUnavailable as exc:
            UPLOADS.labels("UNAVAILABLE").inc()
            await abort(context, grpc.StatusCode.UNAVAILABLE, f"{exc}; retry the upload later")
        UPLOADS.labels("OK").inc()
        UPLOAD_BYTES.inc(job.size_bytes)
        return pb.UploadAudioResponse(job=job_to_proto(job, job_pb2.JOB_VIEW_FULL))

    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.GetJobResponse:
        job_id = await _parse_job_id(request.job_id, context)
        try:
            job = await self._jobs.get(job_id, tenant=_tenant(context))
        except DependencyUnavailable as exc:
            await abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))
        if job is None:
            await abort(context, grpc.StatusCode.NOT_FOUND, f"no job {job_id}")
        view = request.view or job_pb2.JOB_VIEW_FULL
        return pb.GetJobResponse(job=job_to_proto(job, view))

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

    async def _upload_request(self, metadata: pb.UploadMetadata, context: Context) -> UploadRequest:
        """Validates the metadata; aborts with the first field that is wrong."""
        if len(metadata.filename) > 1024:
            await abort_invalid(context, "metadata.filename", "filename is over 1024 characters")
        if metadata.language and not _LANGUAGE.match(metadata.language):
            await abort_invalid(
                context, "metadata.language", "language must be a BCP-47 code such as en or pt-BR"
            )
        engine = metadata.engine or self._default_engine
        if engine not in ENGINES:
            await abort_invalid(
                context, "metadata.engine", f"engine must be one of {', '.join(ENGINES)}"
            )
        if len(metadata.labels) > MAX_LABELS:
            await abort_invalid(context, "metadata.labels", f"at most {MAX_LABELS} labels")
        for key, value in metadata.labels.items():
            if not _LABEL_KEY.match(key) or len(value) > 256:
                await abort_invalid(
                    context,
                    f"metadata.labels[{key}]",
                    "label keys are lowercase letters, digits, '_', '.', '-' (at most 63, "
                    "starting with a letter); values at most 256 characters",
                )
        retention = self._default_retention
        if metadata.HasField("audio_retention"):
            retention = metadata.audio_retention.ToTimedelta()
            if not timedelta(0) <= retention <= MAX_RETENTION:
                await abort_invalid(
                    context,
                    "metadata.audio_retention",
                    "audio_retention must be between 0s and 3650 days",
                )
        return UploadRequest(
            tenant=_tenant(context),
            filename=metadata.filename,
            language=metadata.language,
            lexicon_id=metadata.lexicon_id,
            engine=engine,
            audio_retention=retention,
            labels=dict(metadata.labels),
        )


def _tenant(context: Context) -> str:
    """The caller's tenant. Until API keys map callers to tenants, everyone shares one."""
    return DEFAULT_TENANT


async def _chunks(requests: AsyncIterator[pb.UploadAudioRequest]) -> AsyncIterator[bytes]:
    """The chunk bytes of the messages after the metadata."""
    async for message in requests:
        if message.WhichOneof("payload") != "chunk":
            raise InvalidUpload("metadata", "metadata may only be sent once, in the first message")
        yield message.chunk


async def _parse_job_id(raw: str, context: Context) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        await abort_invalid(context, "job_id", f"job_id {raw!r} is not a UUID")
