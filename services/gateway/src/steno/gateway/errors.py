"""Canonical gRPC errors with ``google.rpc.Status`` details a client can act on."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from steno.common.errors import DependencyUnavailable

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
_Response = TypeVar("_Response")


async def abort(
    context: grpc.aio.ServicerContext[object, object], code: grpc.StatusCode, message: str
) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("unreachable: abort raises")


async def abort_invalid(
    context: grpc.aio.ServicerContext[object, object], field: str, message: str
) -> NoReturn:
    """INVALID_ARGUMENT with a ``BadRequest`` field violation naming ``field``."""
    violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=message)
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    status = rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=[detail])
    )
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("unreachable: abort raises")


def guarded(
    method: Callable[[Any, Any, Context], Awaitable[_Response]],
) -> Callable[[Any, Any, Context], Awaitable[_Response]]:
    """Maps what every RPC can run into: an unreachable dependency becomes UNAVAILABLE, and a
    bug INTERNAL with a safe message, so no stack or SQL reaches the client."""

    @functools.wraps(method)
    async def call(self: Any, request: Any, context: Context) -> _Response:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except DependencyUnavailable as exc:
            await abort(context, grpc.StatusCode.UNAVAILABLE, f"{exc}; try again later")
        except Exception:
            log.exception("unexpected error", extra={"rpc": method.__name__})
            await abort(
                context, grpc.StatusCode.INTERNAL, "internal error; the server log has details"
            )

    return call


async def parse_id(context: Context, field: str, value: str) -> uuid.UUID:
    """The UUID in a request's id field, or INVALID_ARGUMENT naming the field."""
    try:
        return uuid.UUID(value)
    except ValueError:
        await abort_invalid(context, field, f"{field} {value!r} is not a UUID")


async def page_size(context: Context, requested: int, *, default: int, maximum: int) -> int:
    """AIP-158 page size: 0 means the default, larger than ``maximum`` is capped, negative
    is INVALID_ARGUMENT."""
    if requested < 0:
        await abort_invalid(context, "page_size", "page_size must not be negative")
    return min(requested or default, maximum)
