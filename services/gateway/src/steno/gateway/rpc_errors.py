"""Every RPC's errors through one table: what a handler (or the authentication interceptor)
raises becomes a canonical gRPC status with a message a person can act on, and rich status
details a program can act on, as Google's AIP-193 describes:

- always a ``google.rpc.ErrorInfo``: a ``reason`` (UPPER_SNAKE_CASE, stable: clients may
  branch on it) in :data:`DOMAIN`, and ``metadata`` with the facts of the case (the job, the
  field, the limit);
- a ``google.rpc.RetryInfo`` where waiting can lift the refusal (every UNAVAILABLE, and
  RESOURCE_EXHAUSTED but for an upload over the size limit, which no wait lifts), with the
  same delay in the ``grpc-retry-pushback-ms`` trailer that gRPC's own retries honour;
- a ``google.rpc.BadRequest`` naming a bad field, a ``google.rpc.QuotaFailure`` naming a
  quota.

An unreachable dependency is UNAVAILABLE; anything else is a bug, INTERNAL with a safe
message, so no stack or SQL reaches the client.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from prometheus_client import Counter

from steno.common.disk_space import StorageFull
from steno.common.errors import DependencyUnavailable
from steno.common.quotas import QuotaExceeded
from steno.gateway import refusals as gateway
from steno.gateway.control import CancelRaced, JobNotFound, NothingToCancel
from steno.gateway.request_fields import InvalidField
from steno.gateway.uploads import refusals as uploads
from steno.gateway.watch import GatewayStopping

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
_Handler = TypeVar("_Handler", bound=Callable[..., Any])

# ErrorInfo's domain: what Steno's reasons are unique within.
DOMAIN = "steno.dev"
# The trailer gRPC's client retries wait on instead of their own backoff (gRFC A6).
RETRY_PUSHBACK = "grpc-retry-pushback-ms"
# Dependencies come back, or the call reaches another replica, within seconds.
SOON = timedelta(seconds=1)


def _bad_request(exc: InvalidField | uploads.InvalidUpload) -> Message:
    violation = error_details_pb2.BadRequest.FieldViolation(field=exc.field, description=str(exc))
    bad_request: Message = error_details_pb2.BadRequest(field_violations=[violation])
    return bad_request


def _quota_failure(exc: QuotaExceeded) -> Message:
    violation = error_details_pb2.QuotaFailure.Violation(
        subject=f"tenant:{exc.tenant}",
        description=f"{exc.quota} limit {exc.limit:g}",
        quota_id=exc.quota,
        quota_dimensions={"tenant": exc.tenant},
    )
    if float(exc.limit).is_integer():
        violation.quota_value = int(exc.limit)
    failure: Message = error_details_pb2.QuotaFailure(violations=[violation])
    return failure


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """How the API answers one kind of exception."""

    code: grpc.StatusCode
    reason: str
    # The exception's attributes that become the ErrorInfo's metadata, by the same names.
    facts: Sequence[str] = ()
    # How long to wait before trying again (RetryInfo), where waiting can help.
    retry_delay: timedelta | None = None
    # A further detail made from the exception, for the clients that know its type.
    detail: Callable[[Any], Message] | None = None


Code = grpc.StatusCode
ERRORS: dict[type[Exception], ErrorKind] = {
    InvalidField: ErrorKind(Code.INVALID_ARGUMENT, "INVALID_FIELD", ["field"], detail=_bad_request),
    uploads.InvalidUpload: ErrorKind(
        Code.INVALID_ARGUMENT, "INVALID_FIELD", ["field"], detail=_bad_request
    ),
    uploads.WebhookUrlRefused: ErrorKind(
        Code.INVALID_ARGUMENT, "WEBHOOK_URL_REFUSED", ["field"], detail=_bad_request
    ),
    gateway.MissingApiKey: ErrorKind(Code.UNAUTHENTICATED, "API_KEY_MISSING"),
    gateway.UnknownApiKey: ErrorKind(Code.UNAUTHENTICATED, "API_KEY_INVALID"),
    gateway.RevokedApiKey: ErrorKind(Code.UNAUTHENTICATED, "API_KEY_REVOKED", ["key_id"]),
    gateway.AdminKeyRequired: ErrorKind(
        Code.PERMISSION_DENIED, "ADMIN_KEY_REQUIRED", ["service", "key_id"]
    ),
    JobNotFound: ErrorKind(Code.NOT_FOUND, "JOB_NOT_FOUND", ["job_id"]),
    gateway.LexiconNotFound: ErrorKind(Code.NOT_FOUND, "LEXICON_NOT_FOUND", ["lexicon_id"]),
    gateway.ApiKeyNotFound: ErrorKind(Code.NOT_FOUND, "API_KEY_NOT_FOUND", ["key_id"]),
    uploads.UploadNotFound: ErrorKind(Code.NOT_FOUND, "UPLOAD_NOT_FOUND", ["request_id"]),
    gateway.TranscriptNotReady: ErrorKind(
        Code.FAILED_PRECONDITION, "TRANSCRIPT_NOT_READY", ["job_id", "state"]
    ),
    NothingToCancel: ErrorKind(Code.FAILED_PRECONDITION, "JOB_ALREADY_ENDED", ["job_id", "state"]),
    uploads.UploadFinished: ErrorKind(
        Code.FAILED_PRECONDITION, "UPLOAD_ALREADY_COMPLETE", ["request_id", "job_id"]
    ),
    uploads.WrongOffset: ErrorKind(
        Code.FAILED_PRECONDITION, "WRONG_OFFSET", ["request_id", "committed_bytes"]
    ),
    gateway.LexiconChanged: ErrorKind(Code.ABORTED, "LEXICON_CHANGED", ["lexicon_id"]),
    CancelRaced: ErrorKind(Code.ABORTED, "JOB_KEPT_CHANGING", ["job_id"]),
    uploads.UploadRaced: ErrorKind(Code.ABORTED, "UPLOAD_RACED", ["request_id"]),
    uploads.UploadTakenOver: ErrorKind(Code.ABORTED, "UPLOAD_TAKEN_OVER", ["request_id"]),
    uploads.RequestConflict: ErrorKind(
        Code.ALREADY_EXISTS, "REQUEST_ID_REUSED", ["request_id", "job_id"]
    ),
    # No RetryInfo: the same file is as large after any wait.
    uploads.UploadTooLarge: ErrorKind(Code.RESOURCE_EXHAUSTED, "UPLOAD_TOO_LARGE", ["limit"]),
    # A quota frees up as jobs finish and audio expires: not within a second or two.
    QuotaExceeded: ErrorKind(
        Code.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
        ["tenant", "quota", "limit"],
        retry_delay=timedelta(seconds=30),
        detail=_quota_failure,
    ),
    # Space comes back when the janitor deletes expired audio.
    StorageFull: ErrorKind(
        Code.RESOURCE_EXHAUSTED, "STORAGE_FULL", ["disk"], retry_delay=timedelta(seconds=60)
    ),
    uploads.UploadsBusy: ErrorKind(
        Code.RESOURCE_EXHAUSTED, "UPLOADS_BUSY", ["limit"], retry_delay=SOON
    ),
    uploads.UploadStalled: ErrorKind(Code.DEADLINE_EXCEEDED, "UPLOAD_STALLED"),
    GatewayStopping: ErrorKind(Code.UNAVAILABLE, "GATEWAY_STOPPING", retry_delay=SOON),
    DependencyUnavailable: ErrorKind(
        Code.UNAVAILABLE, "DEPENDENCY_UNAVAILABLE", ["dependency"], retry_delay=SOON
    ),
}
INTERNAL = ErrorKind(Code.INTERNAL, "INTERNAL")
INTERNAL_MESSAGE = "internal error; the server log has details"


def error_kind(exc: Exception) -> ErrorKind:
    """The table's entry for ``exc``'s class or its nearest base; INTERNAL for none."""
    for kind in type(exc).__mro__:
        if kind in ERRORS:
            return ERRORS[kind]
    return INTERNAL


def rpc(
    *, retry: str = "try again later", outcomes: Counter | None = None
) -> Callable[[_Handler], _Handler]:
    """Makes a servicer method (unary, client-streaming or server-streaming) answer what it
    raises with :func:`refuse`. ``retry`` tells the caller of an unreachable dependency
    what to do; ``outcomes``, if given, counts each call by code."""

    def decorate(method: _Handler) -> _Handler:
        name = method.__name__

        async def fail(context: Context, exc: Exception) -> NoReturn:
            if outcomes is not None:
                outcomes.labels(error_kind(exc).code.name).inc()
            await refuse(context, exc, retry=retry, rpc=name)

        if inspect.isasyncgenfunction(method):

            @functools.wraps(method)
            async def stream(self: Any, request: Any, context: Context) -> AsyncIterator[Any]:
                try:
                    async for response in method(self, request, context):
                        yield response
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await fail(context, exc)

            return stream  # type: ignore[return-value]

        @functools.wraps(method)
        async def call(self: Any, request: Any, context: Context) -> Any:
            try:
                response = await method(self, request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await fail(context, exc)
            if outcomes is not None:
                outcomes.labels("OK").inc()
            return response

        return call  # type: ignore[return-value]

    return decorate


async def refuse(
    context: Context, exc: Exception, *, retry: str = "try again later", rpc: str = ""
) -> NoReturn:
    """Ends the call with the status :data:`ERRORS` gives ``exc`` (logged, if it is a bug:
    ``rpc`` names the call in the log)."""
    kind = error_kind(exc)
    if kind is INTERNAL:
        log.error("unexpected error", extra={"rpc": rpc}, exc_info=exc)
        message = INTERNAL_MESSAGE
    elif isinstance(exc, DependencyUnavailable):
        message = f"{exc}; {retry}"
    else:
        message = str(exc)
    status = rpc_status.to_status(
        status_pb2.Status(code=kind.code.value[0], message=message, details=_details(kind, exc))
    )
    trailing = tuple(status.trailing_metadata)
    if kind.retry_delay is not None:
        pushback_ms = int(kind.retry_delay / timedelta(milliseconds=1))
        trailing += ((RETRY_PUSHBACK, str(pushback_ms)),)
    await context.abort(status.code, status.details, trailing)
    raise AssertionError("unreachable: abort raises")


def _details(kind: ErrorKind, exc: Exception) -> list[any_pb2.Any]:
    info = error_details_pb2.ErrorInfo(
        reason=kind.reason,
        domain=DOMAIN,
        metadata={fact: _text(getattr(exc, fact)) for fact in kind.facts},
    )
    details: list[Message] = [info]
    if kind.retry_delay is not None:
        delay = duration_pb2.Duration()
        delay.FromTimedelta(kind.retry_delay)
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    if kind.detail is not None:
        details.append(kind.detail(exc))
    return [_packed(detail) for detail in details]


def _packed(detail: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(detail)
    return packed


def _text(value: object) -> str:
    """A metadata value: a whole number without a decimal point (a limit read as a float)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
