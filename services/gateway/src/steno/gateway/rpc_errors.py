"""Every RPC's errors through one table: what a handler raises becomes a canonical gRPC
status with a message a person can act on (and, for a bad field, a ``google.rpc.BadRequest``
naming it). An unreachable dependency is UNAVAILABLE; anything else is a bug, INTERNAL with
a safe message, so no stack or SQL reaches the client."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from prometheus_client import Counter

from steno.common.disk_space import StorageFull
from steno.common.errors import DependencyUnavailable
from steno.common.quotas import QuotaExceeded
from steno.gateway.control import CancelRaced, JobNotFound, NothingToCancel
from steno.gateway.request_fields import InvalidField
from steno.gateway.uploads import refusals
from steno.gateway.watch import GatewayStopping

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
_Handler = TypeVar("_Handler", bound=Callable[..., Any])


class NotFound(LookupError):
    """The caller has no such resource (another tenant's is not found either)."""


class FailedPrecondition(Exception):
    """The resource is not in a state the request can apply to."""


class Aborted(Exception):
    """A concurrent change got in the way; reading again and retrying can succeed."""


class Unimplemented(Exception):
    """This server does not offer the method."""


STATUS_CODES: dict[type[Exception], grpc.StatusCode] = {
    InvalidField: grpc.StatusCode.INVALID_ARGUMENT,
    refusals.InvalidUpload: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    JobNotFound: grpc.StatusCode.NOT_FOUND,
    refusals.UploadNotFound: grpc.StatusCode.NOT_FOUND,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    NothingToCancel: grpc.StatusCode.FAILED_PRECONDITION,
    refusals.UploadFinished: grpc.StatusCode.FAILED_PRECONDITION,
    refusals.WrongOffset: grpc.StatusCode.FAILED_PRECONDITION,
    Aborted: grpc.StatusCode.ABORTED,
    Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
    CancelRaced: grpc.StatusCode.ABORTED,
    refusals.UploadRaced: grpc.StatusCode.ABORTED,
    refusals.UploadTakenOver: grpc.StatusCode.ABORTED,
    refusals.RequestConflict: grpc.StatusCode.ALREADY_EXISTS,
    refusals.UploadTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    QuotaExceeded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    StorageFull: grpc.StatusCode.RESOURCE_EXHAUSTED,
    refusals.UploadsBusy: grpc.StatusCode.RESOURCE_EXHAUSTED,
    refusals.UploadStalled: grpc.StatusCode.DEADLINE_EXCEEDED,
    GatewayStopping: grpc.StatusCode.UNAVAILABLE,
    DependencyUnavailable: grpc.StatusCode.UNAVAILABLE,
}


def rpc(
    *, retry: str = "try again later", outcomes: Counter | None = None
) -> Callable[[_Handler], _Handler]:
    """Makes a servicer method (unary, client-streaming or server-streaming) answer what it
    raises with the status :data:`STATUS_CODES` gives. ``retry`` tells the caller of an
    unreachable dependency what to do; ``outcomes``, if given, counts each call by code."""

    def decorate(method: _Handler) -> _Handler:
        name = method.__name__

        async def fail(context: Context, exc: Exception) -> NoReturn:
            code = _status_code(exc)
            if outcomes is not None:
                outcomes.labels(code.name).inc()
            if code is grpc.StatusCode.INTERNAL:
                log.exception("unexpected error", extra={"rpc": name})
                await abort(context, code, "internal error; the server log has details")
            if isinstance(exc, InvalidField | refusals.InvalidUpload):
                await abort_invalid(context, exc.field, str(exc))
            if isinstance(exc, QuotaExceeded):
                await abort_over_quota(context, exc)
            if isinstance(exc, DependencyUnavailable):
                await abort(context, code, f"{exc}; {retry}")
            await abort(context, code, str(exc))

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


async def abort(context: Context, code: grpc.StatusCode, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("unreachable: abort raises")


async def abort_invalid(context: Context, field: str, message: str) -> NoReturn:
    """INVALID_ARGUMENT with a ``BadRequest`` field violation naming ``field``."""
    violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=message)
    await _abort_with(
        context,
        code_pb2.INVALID_ARGUMENT,
        message,
        error_details_pb2.BadRequest(field_violations=[violation]),
    )


async def abort_over_quota(context: Context, exc: QuotaExceeded) -> NoReturn:
    """RESOURCE_EXHAUSTED with a ``QuotaFailure`` naming the tenant, the quota and its
    limit."""
    violation = error_details_pb2.QuotaFailure.Violation(
        subject=f"tenant:{exc.tenant}",
        description=f"{exc.quota} limit {exc.limit:g}",
        quota_id=exc.quota,
        quota_dimensions={"tenant": exc.tenant},
    )
    if float(exc.limit).is_integer():
        violation.quota_value = int(exc.limit)
    await _abort_with(
        context,
        code_pb2.RESOURCE_EXHAUSTED,
        str(exc),
        error_details_pb2.QuotaFailure(violations=[violation]),
    )


async def _abort_with(context: Context, code: int, message: str, detail: Message) -> NoReturn:
    """Aborts with a rich status: ``code``, ``message`` and one ``google.rpc`` detail."""
    packed = any_pb2.Any()
    packed.Pack(detail)
    status = rpc_status.to_status(status_pb2.Status(code=code, message=message, details=[packed]))
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("unreachable: abort raises")


def _status_code(exc: Exception) -> grpc.StatusCode:
    for kind in type(exc).__mro__:
        if kind in STATUS_CODES:
            return STATUS_CODES[kind]
    return grpc.StatusCode.INTERNAL
