"""``steno.v1.TranscriptionService``: translates requests to the upload pipeline and the job
repository, and their outcomes to canonical gRPC codes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from prometheus_client import Counter

from steno.common.jobs import Job, JobRepository, JobState
from steno.common.lexicons import LexiconRepository
from steno.common.messages import job_to_proto, segment_to_proto, state_from_proto
from steno.common.paging import PageCursor
from steno.common.partial_uploads import UploadRequest
from steno.common.settings import ENGINE_NAMES, LocalModel
from steno.common.storage import ObjectStore
from steno.common.webhooks.addresses import AddressPolicy, WebhookRefused
from steno.gateway.control import JobNotFound, cancel_job, delete_job
from steno.gateway.language_tags import is_language_tag
from steno.gateway.page_tokens import decode_page_token, encode_page_token
from steno.gateway.refusals import LexiconNotFound, TranscriptNotReady
from steno.gateway.request_fields import InvalidField, known_enum, page_size, parse_id
from steno.gateway.rpc_errors import Context, rpc
from steno.gateway.tenancy import tenant_of
from steno.gateway.transcripts import TranscriptFormat, render
from steno.gateway.uploads import InvalidUpload, Uploads, UploadStalled, WebhookUrlRefused
from steno.gateway.watch import Watches
from steno.v1 import job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb

log = logging.getLogger(__name__)

UPLOADS = Counter("steno_uploads_total", "UploadAudio calls by outcome", ["code"])
UPLOAD_BYTES = Counter("steno_upload_bytes_total", "Bytes of audio accepted")


DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_RETENTION = timedelta(days=3650)
MAX_FILENAME = 1024
MAX_LABELS = 64
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
_Item = TypeVar("_Item")


@dataclass(frozen=True)
class TranscriptionApi(transcription_service_pb2_grpc.TranscriptionServiceServicer):
    uploads: Uploads
    jobs: JobRepository
    lexicons: LexiconRepository
    store: ObjectStore = field(kw_only=True)
    watches: Watches = field(kw_only=True)
    # What an upload gets when its metadata names none, and how long its client may pause.
    default_engine: str = field(kw_only=True)
    local_model: LocalModel = field(kw_only=True)
    default_retention: timedelta = field(kw_only=True)
    idle_timeout: float = field(kw_only=True)
    # Where an upload's webhook may point; None when webhooks are off (no signing secret).
    webhook_policy: AddressPolicy | None = field(kw_only=True, default=None)

    @rpc(retry="retry the upload later", outcomes=UPLOADS)
    async def UploadAudio(
        self, request_iterator: AsyncIterator[pb.UploadAudioRequest], context: Context
    ) -> pb.UploadAudioResponse:
        job = await self._upload(request_iterator, context)
        UPLOAD_BYTES.inc(job.size_bytes)
        return pb.UploadAudioResponse(job=job_to_proto(job, job_pb2.JOB_VIEW_FULL))

    async def _upload(
        self, request_iterator: AsyncIterator[pb.UploadAudioRequest], context: Context
    ) -> Job:
        messages = with_idle_timeout(request_iterator, self.idle_timeout)
        first = await anext(messages, None)
        if first is None:
            raise InvalidUpload("metadata", "the stream is empty: send metadata first")
        if first.WhichOneof("payload") != "metadata":
            raise InvalidUpload("metadata", "the first message must carry metadata, not a chunk")
        request = self._upload_request(first.metadata, tenant_of(context))
        offset = first.metadata.offset
        if offset < 0:
            raise InvalidUpload("metadata.offset", "offset must not be negative")
        if offset and not request.request_id:
            raise InvalidUpload(
                "metadata.offset",
                "only an upload with a request_id can be continued: send the whole file, "
                "from offset 0",
            )
        if not offset:  # a continuing stream keeps the metadata its upload started with
            await self._require_lexicon(request)
        return await self.uploads.accept(request, _chunks(messages, context), offset=offset)

    async def new_upload(self, metadata: pb.UploadMetadata, tenant: str) -> UploadRequest:
        """The validated request of an upload that starts from its first byte, naming a
        lexicon the tenant has: what the HTTP API checks its form against, as UploadAudio
        checks its metadata."""
        request = self._upload_request(metadata, tenant)
        await self._require_lexicon(request)
        return request

    async def _require_lexicon(self, request: UploadRequest) -> None:
        """A job may only name a lexicon its tenant has; the worker uses whatever version
        the lexicon has when it runs (and warns if it was deleted meanwhile)."""
        if request.lexicon_id and not await self.lexicons.get(
            uuid.UUID(request.lexicon_id), request.tenant
        ):
            raise LexiconNotFound(
                request.lexicon_id, "create one with LexiconService.CreateLexicon"
            )

    @rpc()
    async def GetUploadStatus(
        self, request: pb.GetUploadStatusRequest, context: Context
    ) -> pb.GetUploadStatusResponse:
        if not request.request_id:
            raise InvalidField("request_id", "request_id is required")
        status = await self.uploads.status(tenant_of(context), request.request_id)
        response = pb.GetUploadStatusResponse(committed_bytes=status.committed_bytes)
        if status.job is not None:
            response.job.CopyFrom(job_to_proto(status.job, job_pb2.JOB_VIEW_BASIC))
        if status.expire_time is not None:
            response.expire_time.FromDatetime(status.expire_time)
        return response

    @rpc()
    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.GetJobResponse:
        view = known_enum("view", request.view, job_pb2.JobView) or job_pb2.JOB_VIEW_FULL
        job = await self._job(request.job_id, context)
        deliveries = await self.jobs.webhook_deliveries(job.job_id) if job.webhook_url else []
        return pb.GetJobResponse(job=job_to_proto(job, view, deliveries))

    @rpc()
    async def ListJobs(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsResponse:
        size = page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        view = known_enum("view", request.view, job_pb2.JobView) or job_pb2.JOB_VIEW_BASIC
        try:
            states = [state_from_proto(s) for s in request.states]
        except ValueError:
            raise InvalidField("states", "states must be named JobState values") from None
        tenant = tenant_of(context)
        listing = f"jobs/{tenant}"
        cursor = decode_page_token(request.page_token, listing)
        # One extra row tells whether another page follows.
        jobs = await self.jobs.list_jobs(tenant, states=states, limit=size + 1, after=cursor)
        page = jobs[:size]
        next_token = ""
        if len(jobs) > size:
            next_token = encode_page_token(
                PageCursor(page[-1].create_time, page[-1].job_id), listing
            )
        return pb.ListJobsResponse(
            jobs=[job_to_proto(job, view) for job in page], next_page_token=next_token
        )

    @rpc()
    async def GetTranscript(
        self, request: pb.GetTranscriptRequest, context: Context
    ) -> pb.GetTranscriptResponse:
        number = known_enum("format", request.format, pb.TranscriptFormat)
        name = pb.TranscriptFormat.Name(number).removeprefix("TRANSCRIPT_FORMAT_")
        fmt = TranscriptFormat.TEXT if name == "UNSPECIFIED" else TranscriptFormat[name]
        job = await self._job(request.job_id, context)
        if job.state is not JobState.COMPLETED:
            raise TranscriptNotReady(job)
        rendered = render(
            fmt, job.processed_text or job.original_text, job.segments, language=job.language
        )
        return pb.GetTranscriptResponse(
            content=rendered.content,
            content_type=rendered.content_type,
            segments=[segment_to_proto(s) for s in job.segments],
        )

    @rpc(retry="watch the job again later")
    async def WatchJob(
        self, request: pb.WatchJobRequest, context: Context
    ) -> AsyncIterator[pb.WatchJobResponse]:
        job_id = parse_id("job_id", request.job_id)
        changes = self.watches.follow(job_id, tenant_of(context))
        async with contextlib.aclosing(changes):
            async for job in changes:
                yield pb.WatchJobResponse(job=job_to_proto(job, _watch_view(job)))

    @rpc()
    async def CancelJob(
        self, request: pb.CancelJobRequest, context: Context
    ) -> pb.CancelJobResponse:
        job = await cancel_job(self.jobs, await self._job(request.job_id, context))
        return pb.CancelJobResponse(job=job_to_proto(job, job_pb2.JOB_VIEW_FULL))

    @rpc()
    async def DeleteJob(
        self, request: pb.DeleteJobRequest, context: Context
    ) -> pb.DeleteJobResponse:
        job = await self._job(request.job_id, context)
        await delete_job(self.jobs, self.store, job)
        return pb.DeleteJobResponse()

    async def _job(self, job_id: str, context: Context) -> Job:
        """The caller's job, or NOT_FOUND."""
        parsed = parse_id("job_id", job_id)
        job = await self.jobs.get(parsed, tenant=tenant_of(context))
        if job is None:
            raise JobNotFound(parsed)
        return job

    def _upload_request(self, metadata: pb.UploadMetadata, tenant: str) -> UploadRequest:
        """Validates the metadata; raises InvalidUpload naming the first field that is wrong."""
        if len(metadata.filename) > MAX_FILENAME or "\x00" in metadata.filename:
            raise InvalidUpload(
                "metadata.filename",
                f"filename must be at most {MAX_FILENAME} characters, without NUL",
            )
        if metadata.language and not is_language_tag(metadata.language):
            raise InvalidUpload(
                "metadata.language", "language must be a BCP-47 code such as en or pt-BR"
            )
        if metadata.lexicon_id and not _is_uuid(metadata.lexicon_id):
            raise InvalidUpload(
                "metadata.lexicon_id", "lexicon_id must be the UUID of one of your lexicons"
            )
        if metadata.request_id and not _REQUEST_ID.match(metadata.request_id):
            raise InvalidUpload(
                "metadata.request_id",
                "request_id is at most 128 letters, digits, '_', '.', ':' or '-' (a UUID is good)",
            )
        engine = metadata.engine or self.default_engine
        if engine not in ENGINE_NAMES:
            raise InvalidUpload(
                "metadata.engine", f"engine must be one of: {', '.join(ENGINE_NAMES)}"
            )
        if engine == "local" and not self._local_model_speaks(metadata.language):
            raise InvalidUpload(
                "metadata.language",
                f"the local model {self.local_model.name} transcribes English only, not "
                f"{metadata.language!r}: leave the language empty, choose the openai engine, "
                "or have the operator configure a multilingual STENO_WHISPER_MODEL",
            )
        if len(metadata.labels) > MAX_LABELS:
            raise InvalidUpload("metadata.labels", f"at most {MAX_LABELS} labels")
        for key, value in metadata.labels.items():
            if not _LABEL_KEY.match(key) or len(value) > 256 or "\x00" in value:
                raise InvalidUpload(
                    f"metadata.labels[{key}]",
                    "label keys are lowercase letters, digits, '_', '.', '-' (at most 63, "
                    "starting with a letter); values at most 256 characters",
                )
        retention = self.default_retention
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
            # The canonical form, so the job's lexicon_id is the lexicon's own.
            lexicon_id=str(uuid.UUID(metadata.lexicon_id)) if metadata.lexicon_id else "",
            engine=engine,
            audio_retention=retention,
            labels=dict(metadata.labels),
            request_id=metadata.request_id,
            webhook_url=self._webhook_url(metadata.webhook_url),
        )

    def _webhook_url(self, url: str) -> str:
        """The URL if Steno may call it, as far as the URL alone tells (its addresses are
        checked again when the event is sent); raises WebhookUrlRefused."""
        if not url:
            return ""
        if self.webhook_policy is None:
            raise WebhookUrlRefused(
                "webhooks are off on this server: the operator has not set STENO_WEBHOOK_SECRET"
            )
        try:
            return self.webhook_policy.check_url(url).url
        except WebhookRefused as refused:
            raise WebhookUrlRefused(f"webhook_url refused: {refused}") from None

    def _local_model_speaks(self, language: str) -> bool:
        primary = language.split("-")[0].lower()
        return not language or primary == "en" or not self.local_model.english_only


def _watch_view(job: Job) -> job_pb2.JobView:
    """The transcript once, in the last message, rather than with every progress step."""
    return job_pb2.JOB_VIEW_FULL if job.state.is_terminal else job_pb2.JOB_VIEW_BASIC


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def with_idle_timeout(items: AsyncIterator[_Item], seconds: float) -> AsyncIterator[_Item]:
    """The request stream (messages, or an HTTP body's chunks), ended with UploadStalled if
    the client goes quiet for ``seconds``: a stalled client must not hold an upload slot
    forever."""
    iterator = aiter(items)
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
