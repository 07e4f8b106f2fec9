"""The HTTP API's routes: a facade over the gateway's own parts. A transcription is an
upload through the same pipeline as UploadAudio, then a wait on the same job watch as
WatchJob; health is the gRPC server's, and metrics are the process's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

import grpc
from prometheus_client import make_asgi_app
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from steno.common.grpc_server import GrpcServer
from steno.common.jobs import Job, JobState
from steno.gateway.authentication import Authenticator, identify
from steno.gateway.http.answers import JOB_ID_HEADER, transcription
from steno.gateway.http.errors import answering, error_response, http_status, refusal
from steno.gateway.http.form import StreamingForm
from steno.gateway.http.transcriptions import (
    FILE_FIELD,
    answer_options,
    refuse_late_job_fields,
    upload_metadata,
)
from steno.gateway.transcription_service import (
    UPLOAD_BYTES,
    TranscriptionApi,
    with_idle_timeout,
)
from steno.gateway.watch import Watches


@dataclass(frozen=True)
class HttpApi:
    """The routes over the gRPC API's servicer (its validation and upload pipeline), its job
    watches, its server's health and its authenticator (None: authentication is off)."""

    api: TranscriptionApi
    watches: Watches
    server: GrpcServer
    authenticator: Authenticator | None
    models: list[str]

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/audio/transcriptions", answering(self.transcriptions), methods=["POST"]),
                Route("/v1/models", answering(self.list_models), methods=["GET"]),
                Route("/healthz", self.health, methods=["GET"]),
                Route("/metrics", _Metrics(), methods=["GET"]),
            ],
            exception_handlers={HTTPException: _routing_error},
        )

    async def transcriptions(self, request: Request) -> Response:
        """Uploads the form's file as a job, waits for the job to end, answers its transcript.
        A client that leaves during the wait leaves its job running."""
        caller = await identify(self.authenticator, request.headers.get("authorization"))
        body = with_idle_timeout(request.stream(), self.api.idle_timeout)
        form = StreamingForm(request.headers.get("content-type", ""), body, FILE_FIELD)
        before = await form.fields_before_file()
        options = answer_options(before, form.after)  # refused before any byte is stored
        upload = await self.api.new_upload(upload_metadata(before, form.filename), caller.tenant)

        async def audio() -> AsyncIterator[bytes]:
            """The file, then a check of the fields after it, before the job is recorded."""
            nonlocal options
            async for chunk in form.file_chunks():
                yield chunk
            refuse_late_job_fields(form.after, upload)
            options = answer_options(before, form.after)

        job = await self.api.uploads.accept(upload, audio())
        UPLOAD_BYTES.inc(job.size_bytes)
        try:
            ended = await _unless_disconnected(request, self._end_of(job))
        except Exception as exc:
            # The job is recorded: its id tells the client where to look (GetJob) later.
            refused = refusal(exc)
            refused.headers[JOB_ID_HEADER] = str(job.job_id)
            return refused
        if ended is None:  # nobody reads this answer: the client has gone
            return Response(status_code=499)
        if ended.state is not JobState.COMPLETED:
            return _unfinished(ended)
        return transcription(ended, options)

    async def _end_of(self, job: Job) -> Job:
        """The job once it has reached a terminal state."""
        latest = job
        changes = self.watches.follow(job.job_id, job.tenant)
        async with contextlib.aclosing(changes):
            async for latest in changes:  # noqa: B007 -- the last one is the end
                pass
        return latest

    async def list_models(self, request: Request) -> Response:
        await identify(self.authenticator, request.headers.get("authorization"))
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": model, "object": "model", "created": 0, "owned_by": "steno"}
                    for model in self.models
                ],
            }
        )

    async def health(self, request: Request) -> Response:
        """SERVING while the gRPC API is, 503 from the moment the gateway begins to stop."""
        if self.server.serving:
            return PlainTextResponse("SERVING\n")
        return PlainTextResponse("NOT_SERVING\n", status_code=503)


async def _routing_error(request: Request, exc: Exception) -> Response:
    """No such route, or not by that method, in OpenAI's error shape like every refusal."""
    assert isinstance(exc, HTTPException)
    code = "not_found" if exc.status_code == 404 else "method_not_allowed"
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return error_response(exc.status_code, message, code)


class _Metrics:
    """prometheus_client's ASGI app on ``/metrics`` itself: mounted, it would answer that
    path with a redirect to ``/metrics/``."""

    def __init__(self) -> None:
        self._app = make_asgi_app()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def _unfinished(job: Job) -> Response:
    """A job that ended without a transcript, answered as the refusal it met."""
    if job.state is JobState.CANCELLED:
        response = error_response(409, f"job {job.job_id} was cancelled", "job_cancelled")
    else:
        code = job.error.code if job.error else "INTERNAL"
        message = job.error.message if job.error else "the job failed"
        status = http_status(grpc.StatusCode[code]) if code in grpc.StatusCode.__members__ else 500
        response = error_response(status, f"job {job.job_id} failed: {message}", "job_failed")
    response.headers[JOB_ID_HEADER] = str(job.job_id)
    return response


async def _unless_disconnected(request: Request, waiting: Awaitable[Job]) -> Job | None:
    """``waiting``'s job, or None if the client disconnects first (the job goes on)."""
    wait = asyncio.ensure_future(waiting)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({wait, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not wait.done():
            wait.cancel()
    return wait.result() if wait.done() and not wait.cancelled() else None


async def _disconnect(request: Request) -> None:
    """Returns when the client closes the connection (its body has all been read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
