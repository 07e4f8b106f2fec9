"""Refusals in OpenAI's error shape, ``{"error": {"message", "type", "param", "code"}}``,
from the same table the gRPC API answers with (:data:`steno.gateway.rpc_errors.ERRORS`):
its code becomes the HTTP status, its reason the ``code``, its retry delay ``Retry-After``."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta

import grpc
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from steno.common.errors import DependencyUnavailable
from steno.gateway.rpc_errors import INTERNAL, INTERNAL_MESSAGE, error_kind
from steno.gateway.uploads import UploadTooLarge

log = logging.getLogger(__name__)

Code = grpc.StatusCode
STATUS: dict[grpc.StatusCode, int] = {
    Code.INVALID_ARGUMENT: 400,
    Code.FAILED_PRECONDITION: 400,
    Code.UNAUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.NOT_FOUND: 404,
    Code.DEADLINE_EXCEEDED: 408,
    Code.ABORTED: 409,
    Code.ALREADY_EXISTS: 409,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.UNAVAILABLE: 503,
}

Endpoint = Callable[[Request], Awaitable[Response]]


def http_status(code: grpc.StatusCode) -> int:
    return STATUS.get(code, 500)


def error_response(
    status: int,
    message: str,
    code: str,
    *,
    param: str | None = None,
    retry_after: timedelta | None = None,
) -> JSONResponse:
    """An OpenAI error body; ``type`` is OpenAI's coarse class of the error."""
    error_type = "invalid_request_error" if status < 500 else "server_error"
    if status == 401:
        error_type = "authentication_error"
    elif status == 429:
        error_type = "rate_limit_error"
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(math.ceil(retry_after.total_seconds()))
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def refusal(exc: Exception) -> JSONResponse:
    """The answer to what a request's handling raised. An upload over the size limit is 413,
    not the 429 of the quotas it shares RESOURCE_EXHAUSTED with."""
    kind = error_kind(exc)
    if kind is INTERNAL:
        log.error("unexpected error", extra={"rpc": "http"}, exc_info=exc)
        return error_response(500, INTERNAL_MESSAGE, kind.reason.lower())
    message = str(exc)
    if isinstance(exc, DependencyUnavailable):
        message = f"{exc}; try again later"
    status = 413 if isinstance(exc, UploadTooLarge) else http_status(kind.code)
    field = getattr(exc, "field", None)
    return error_response(
        status,
        message,
        kind.reason.lower(),
        param=field.removeprefix("metadata.") if isinstance(field, str) else None,
        retry_after=kind.retry_delay,
    )


def answering(endpoint: Endpoint) -> Endpoint:
    """``endpoint``, answering what it raises with :func:`refusal`."""

    @functools.wraps(endpoint)
    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ClientDisconnect:
            # Gone before its body was whole: nothing was recorded, and nobody reads this.
            log.info("client left during its upload", extra={"path": request.url.path})
            return Response(status_code=400)
        except Exception as exc:
            return refusal(exc)

    return answer
