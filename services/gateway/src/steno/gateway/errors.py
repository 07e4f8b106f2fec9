"""Canonical gRPC errors with ``google.rpc.Status`` details a client can act on."""

from __future__ import annotations

from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status


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
